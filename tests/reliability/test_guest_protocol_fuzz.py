"""Protocol fuzzing of guest_init, run as a host process over its Unix socket (the same code as
in the VM; only the transport differs): random bytes, truncated and giant lines, wrong types,
deep nesting, 0xFF bytes, unknown ops and fields, and random app specs through `apply`.

After every case guest_init must still be alive and answer a resync (0xFF + sync) and a ping;
every reply must be well formed, and no case may end in an `internal` error (that would be an
exception escaping an op). Runs are bounded: see FUZZ_SETTINGS.
"""

import json
import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from guest_fuzz import FuzzClient, check_reply
from supervisor_helpers import SupervisedGuestInit

MAX_LINE = 1024 * 1024
# database=None: no .hypothesis directory in the work tree (the sanity tier copies untracked files)
FUZZ_SETTINGS = settings(max_examples=150, deadline=5000, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KNOWN_OPS = ("hello", "sync", "ping", "status", "apply", "logs", "signal")  # never `shutdown`: it ends the process
KNOWN_ARGS = ("protocol_version", "generation", "apps", "force", "dry_run", "app", "replica", "tail", "signal")


@pytest.fixture(scope="module")
def guest():
    """One guest_init for the whole module: faults must not accumulate into a death either."""
    workdir = tempfile.mkdtemp(prefix="gf-", dir="/tmp")
    process = SupervisedGuestInit(workdir).start()
    yield process
    alive = process.proc.poll() is None
    process.stop()
    log = process.log()
    shutil.rmtree(workdir, ignore_errors=True)
    assert alive, "guest_init died during fuzzing:\n" + log[-4000:]
    assert "op failed" not in log and "Traceback" not in log, log[-4000:]


@pytest.fixture(scope="module")
def client(guest):
    fuzz = FuzzClient(guest.socket_path)
    yield fuzz
    fuzz.close()


def exchange(client, guest, payload):
    replies = client.exchange(payload)
    for reply in replies:
        check_reply(reply)
    assert guest.proc.poll() is None, "guest_init exited:\n" + guest.log()[-4000:]
    return replies


# -- strategies -----------------------------------------------------------------------
texts = st.text(max_size=12) | st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)  # lone surrogates too
scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10 ** 300), max_value=10 ** 300)
           | st.floats() | texts)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
                           max_leaves=16)
ids = st.integers() | st.text(max_size=16) | json_values
ops = st.sampled_from(KNOWN_OPS) | texts.filter(lambda op: op != "shutdown") | json_values.filter(lambda op: op != "shutdown")
args = st.dictionaries(st.sampled_from(KNOWN_ARGS) | texts, json_values, max_size=4) | json_values


@st.composite
def requests(draw):
    request = {}
    if draw(st.integers(0, 9)):
        request["id"] = draw(ids)
    if draw(st.integers(0, 9)):
        request["op"] = draw(ops)
    if draw(st.booleans()):
        request["args"] = draw(args)
    if not draw(st.integers(0, 5)):
        request[draw(texts)] = draw(json_values)
    return request


def encode(value, ascii_only):
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def expected_id(line):
    """The id a reply must echo, as the guest decodes it: null when the line is not UTF-8 (a lone
    surrogate sent raw) or the id is not a string or an integer."""
    try:
        value = json.loads(line.decode("utf-8")).get("id")
    except UnicodeDecodeError:
        return None
    return value if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)) else None


# -- tests ----------------------------------------------------------------------------
@FUZZ_SETTINGS
@given(payload=st.binary(max_size=4096))
def test_random_bytes(client, guest, payload):
    exchange(client, guest, payload)


@FUZZ_SETTINGS
@given(lines=st.lists(st.binary(max_size=200).map(lambda data: data.replace(b"\n", b"").replace(b"\xff", b"")), max_size=8),
       cut=st.integers(min_value=0, max_value=200))
def test_random_lines_and_a_truncated_tail(client, guest, lines, cut):
    """Complete garbage lines each get one reply; a truncated last line (no newline) gets none."""
    tail = b'{"id":"t","op":"status","args":{}}'[:cut]
    payload = b"".join(line + b"\n" for line in lines) + tail
    replies = exchange(client, guest, payload)
    assert len(replies) == len([line for line in lines if line.strip()]), (lines, replies)


@FUZZ_SETTINGS
@given(batch=st.lists(st.tuples(requests(), st.booleans()), min_size=1, max_size=6))
def test_requests_with_wrong_types_and_unknown_ops_and_fields(client, guest, batch):
    """Every line gets exactly one reply, in order, echoing a valid id."""
    lines = [encode(request, ascii_only) for request, ascii_only in batch]
    replies = exchange(client, guest, b"".join(line + b"\n" for line in lines))
    assert len(replies) == len(batch), replies
    for line, reply in zip(lines, replies):
        assert reply["id"] == expected_id(line), ascii((line, reply))


@FUZZ_SETTINGS
@given(depth=st.integers(min_value=2, max_value=400_000), kind=st.sampled_from(["[", "{", "args", "id", "apps"]))
def test_deep_nesting(client, guest, depth, kind):
    if kind == "[":
        line = b"[" * depth + b"]" * depth
    elif kind == "{":
        line = b'{"a":' * depth + b"1" + b"}" * depth
    else:
        nested = b"[" * depth + b"]" * depth
        line = {"args": b'{"id":1,"op":"status","args":{"x":%s}}',
                "id": b'{"id":%s,"op":"ping"}',
                "apps": b'{"id":1,"op":"apply","args":{"generation":1,"apps":%s,"dry_run":true}}'}[kind] % nested
    if len(line) > MAX_LINE:
        line = line[:MAX_LINE]  # deep and cut: both faults in one line
    replies = exchange(client, guest, line + b"\n")
    assert len(replies) == 1 and "error" in replies[0], replies


@pytest.mark.parametrize("size", [MAX_LINE - 1, MAX_LINE, MAX_LINE + 1, 3 * MAX_LINE + 7])
@pytest.mark.parametrize("filler", [b"x", b"\xfe", b"\x00", b"{"])
def test_giant_lines(client, guest, size, filler):
    """Long garbage: one bad_json (or line_too_long past the limit), and serving goes on."""
    replies = exchange(client, guest, filler * size + b"\n")
    want = "line_too_long" if size > MAX_LINE else "bad_json"
    assert [reply["error"]["code"] for reply in replies] == [want], replies


@FUZZ_SETTINGS
@given(chunks=st.lists(st.sampled_from([b"\xff", b"\n", b'{"id":1,"op":"ping"}', b'{"id":', b"\xff\xff", b"\r\n", b" "]),
                       max_size=20))
def test_sync_bytes_anywhere(client, guest, chunks):
    exchange(client, guest, b"".join(chunks))


@FUZZ_SETTINGS
@given(fragment=st.sampled_from([
    b'{"id":1,"op":"ping","args":{"x":NaN}}', b'{"id":1,"op":"ping","args":{"x":-Infinity}}',
    b'{"id":1e999,"op":"ping"}', b'{"id":' + b"9" * 4301 + b',"op":"ping"}', b'{"id":' + b"9" * 4300 + b',"op":"ping"}',
    b'{"id":"\\ud800","op":"\\udfff"}', b'{"id":1,"op":"ping","op":"status"}', b'{"id":1,"op":"hello","args":{"protocol_version":1e400}}',
    b'{"id":1,"op":"logs","args":{"app":"\\u0000","tail":-1}}', b'{"id":1,"op":"signal","args":{"app":"x","signal":"KILL"}}',
    b'{"id":1,"op":"apply","args":{"generation":-1,"apps":[]},"dry_run":true}', b"\xef\xbb\xbf{}", b"\x00\x00\x00\x00",
    b'{"id":1,"op":"hello","args":{"protocol_version":' + b"9" * 4000 + b"}}",
]), repeat=st.integers(min_value=1, max_value=3))
def test_hostile_json_values(client, guest, fragment, repeat):
    replies = exchange(client, guest, (fragment + b"\n") * repeat)
    assert len(replies) == repeat, replies


# -- random app specs ------------------------------------------------------------------
def mostly(valid, invalid):
    """Nine in ten draws valid, so cases get past the first fields into the later checks
    (one_of would not do: it picks among distinct branches evenly)."""
    return st.sampled_from([False] * 9 + [True]).flatmap(lambda bad: invalid if bad else valid)


env_values = mostly(st.text(max_size=20) | st.fixed_dictionaries({"value": st.text(max_size=20)}, optional={"secret": st.booleans()}),
                    json_values)
checks = st.fixed_dictionaries({}, optional={
    "exec": st.lists(st.text(max_size=8), max_size=3), "tcp": st.fixed_dictionaries({}, optional={"port": st.integers(-5, 70000)}),
    "http": st.fixed_dictionaries({}, optional={"port": st.integers(0, 70000), "path": st.text(max_size=10)}),
    "interval_s": mostly(st.floats(0.05, 10), st.floats(allow_nan=True)), "timeout_s": st.floats(),
    "failure_threshold": st.integers(-2, 2000)})
app_specs = st.fixed_dictionaries({
    "name": mostly(st.sampled_from(["a", "b", "web"]), st.sampled_from(["A", "-x", "x" * 64, "", "a\n"]) | json_values),
    "runtime": st.just("process"),
    "image": mostly(st.just("/"), st.sampled_from(["relative", "/nonexistent", ""]) | json_values),
    "command": mostly(st.sampled_from([["true"], ["sleep", "0.2"], ["false"], ["/nonexistent/bin"]]), st.just([]) | json_values),
}, optional={
    "args": mostly(st.lists(texts, max_size=3), json_values),
    "env": mostly(st.dictionaries(st.sampled_from(["A", "SECRET"]), env_values, max_size=2),
                  st.dictionaries(st.sampled_from(["PORT", "GOSHIP_APP", "1X", "A=B"]) | texts, env_values, max_size=2)),
    "workdir": mostly(st.sampled_from(["/", "/tmp"]), st.just("rel") | json_values),
    "user": mostly(st.sampled_from(["0", "0:0"]), st.sampled_from(["root", "1:2:3", "99999999999"]) | json_values),
    "replicas": mostly(st.integers(0, 3), st.integers(-3, -1) | st.integers(257, 10 ** 20) | json_values),
    "restart": mostly(st.sampled_from(["always", "on-failure", "never"]), st.just("sometimes") | json_values),
    "health": mostly(st.fixed_dictionaries({}, optional={"liveness": checks, "readiness": checks,
                                                         "startup_grace_s": st.floats() | st.integers()}), json_values),
    "resources": mostly(st.fixed_dictionaries({}, optional={"cpu_millis": st.integers(-1, 2 ** 40), "memory_mib": st.integers(-1, 2 ** 40),
                                                            "pids": st.integers(-1, 2 ** 40) | json_values}), json_values),
    "ports": mostly(st.lists(st.integers(1, 65535), max_size=2, unique=True), st.lists(st.integers(-1, 70000), max_size=3) | json_values),
    "depends_on": mostly(st.lists(st.sampled_from(["a", "b", "web"]), max_size=2), st.lists(st.just("zz") | json_values, max_size=2)),
    "stop_grace_s": mostly(st.floats(0, 1), st.floats() | st.integers(-10, 10 ** 6)),
})
app_sets = mostly(st.lists(app_specs, max_size=3), st.lists(app_specs.map(lambda app: dict(app, bogus=1)), min_size=1, max_size=1))


@settings(FUZZ_SETTINGS, max_examples=150)
@given(apps=app_sets, generation=mostly(st.integers(0, 10 ** 12), st.integers(max_value=-1) | json_values),
       dry_run=st.booleans(), force=mostly(st.just(True), st.just(False)))
def test_apply_with_random_app_specs(client, guest, apps, generation, dry_run, force):
    """Real applies too: the commands are harmless (true, sleep, false, a missing binary), so
    whatever gets through validation may run; a refusal names a field path."""
    request = {"id": 1, "op": "apply", "args": {"generation": generation, "apps": apps, "dry_run": dry_run, "force": force}}
    (reply,) = exchange(client, guest, encode(request, True) + b"\n")
    if "error" in reply:
        assert reply["error"]["code"] == "bad_request", reply
        message = reply["error"]["message"]
        assert message.startswith(("apps[", "generation", "argument ")), message
        field = message.split(":")[0].split(".")[-1].split(" ")[0]
        event("refused: " + field.encode("ascii", "backslashreplace").decode())  # hypothesis' statistics must be UTF-8
    else:
        assert reply["result"]["accepted"] is not dry_run
        event("validated" if dry_run else "applied")


def test_still_serving_status_after_the_fuzzing(client, guest):
    (reply,) = exchange(client, guest, b'{"id":"end","op":"status"}\n')
    assert reply["id"] == "end" and reply["result"]["pid"] == guest.proc.pid
    assert os.path.isdir(guest.state_dir)
