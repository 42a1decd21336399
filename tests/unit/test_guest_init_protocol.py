"""Protocol v1 pieces in-process: line framing with 0xFF resync, request parsing, argument checks."""

import json

import pytest

from guest_init import protocol
from guest_init.ops import Arg, OpRegistry
from guest_init.protocol import SYNC_MARK, TOO_LONG, LineFramer, ProtocolError


def feed_all(framer, *chunks):
    return [item for chunk in chunks for item in framer.feed(chunk)]


def test_lines_split_across_chunks_and_several_per_chunk():
    framer = LineFramer()
    assert feed_all(framer, b'{"a"', b':1}\n{"b":2}\n{"c"', b":3}\n") == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_sync_byte_drops_partial_line_only():
    framer = LineFramer()
    assert feed_all(framer, b"complete\nstale part", b"ial\xffnext\n") == [b"complete", SYNC_MARK, b"next"]


def test_sync_byte_right_after_newline_and_twice():
    framer = LineFramer()
    assert feed_all(framer, b"one\n\xff\xfftwo\n") == [b"one", SYNC_MARK, SYNC_MARK, b"two"]


def test_exact_max_line_passes_one_more_is_too_long_once():
    framer = LineFramer(max_line=10)
    assert feed_all(framer, b"0123456789\n") == [b"0123456789"]
    assert feed_all(framer, b"01234", b"56789", b"A", b"BCDEF" * 4, b"G\nok\n") == [TOO_LONG, b"ok"]


def test_too_long_reported_as_soon_as_known_then_skipped_to_newline():
    framer = LineFramer(max_line=4)
    assert feed_all(framer, b"123456") == [TOO_LONG]
    assert feed_all(framer, b"789") == []
    assert feed_all(framer, b"0\nfine\n") == [b"fine"]


def test_sync_byte_ends_skipping_a_too_long_line():
    framer = LineFramer(max_line=4)
    assert feed_all(framer, b"123456789\xffabc\n") == [TOO_LONG, SYNC_MARK, b"abc"]


def test_reset_drops_partial_line():
    framer = LineFramer()
    feed_all(framer, b"half a li")
    framer.reset()
    assert feed_all(framer, b"ne\n") == [b"ne"]


def test_parse_request_full_and_minimal():
    assert protocol.parse_request(b'{"id":"a","op":"x","args":{"k":1}}') == ("a", "x", {"k": 1})
    assert protocol.parse_request(b'{"id":7,"op":"ping"}') == (7, "ping", {})


@pytest.mark.parametrize("line, code, request_id", [
    (b"{", protocol.BAD_JSON, None),
    (b"\xfe\xfe", protocol.BAD_JSON, None),
    (b"null", protocol.BAD_REQUEST, None),
    (b"42", protocol.BAD_REQUEST, None),
    (b'{"op":"ping"}', protocol.BAD_REQUEST, None),
    (b'{"id":false,"op":"ping"}', protocol.BAD_REQUEST, None),
    (b'{"id":{},"op":"ping"}', protocol.BAD_REQUEST, None),
    (b'{"id":1}', protocol.BAD_REQUEST, 1),
    (b'{"id":1,"op":null}', protocol.BAD_REQUEST, 1),
    (b'{"id":1,"op":"ping","args":"x"}', protocol.BAD_REQUEST, 1),
    (b'{"id":"q","op":"ping","arg":{}}', protocol.BAD_REQUEST, "q"),
])
def test_parse_request_errors(line, code, request_id):
    with pytest.raises(ProtocolError) as caught:
        protocol.parse_request(line)
    assert caught.value.code == code
    assert caught.value.request_id == request_id


def test_encoded_lines_are_ascii_single_lines():
    line = protocol.result_line("i", {"text": "\u00ff\n\u2603", "n": None})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert b"\xff" not in line
    assert json.loads(line) == {"id": "i", "result": {"text": "\u00ff\n\u2603", "n": None}}
    assert json.loads(protocol.error_line(None, "bad_json", "m")) == {"id": None, "error": {"code": "bad_json", "message": "m"}}
    assert json.loads(protocol.event_line("e", {})) == {"event": "e", "data": {}}


@pytest.fixture
def registry():
    ops = OpRegistry()
    ops.add("echo", lambda args: args, count=Arg(int, required=True), label=Arg(str, default="x"), flag=Arg(bool, default=False))
    return ops


def test_registry_fills_defaults(registry):
    assert registry.call("echo", {"count": 2}) == {"count": 2, "label": "x", "flag": False}


@pytest.mark.parametrize("args, named", [
    ({}, "count"),
    ({"count": "2"}, "count"),
    ({"count": True}, "count"),
    ({"count": 2.0}, "count"),
    ({"count": 2, "flag": 0}, "flag"),
    ({"count": 2, "colour": "red"}, "colour"),
])
def test_registry_bad_arguments_name_the_field(registry, args, named):
    with pytest.raises(ProtocolError) as caught:
        registry.call("echo", args)
    assert caught.value.code == protocol.BAD_REQUEST
    assert repr(named) in caught.value.message


def test_registry_unknown_op(registry):
    with pytest.raises(ProtocolError) as caught:
        registry.call("nope", {})
    assert caught.value.code == protocol.UNKNOWN_OP
