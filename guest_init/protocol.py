"""Protocol v1 wire format: line framing with 0xFF resync, request parsing, reply encoding.

See docs/architecture.md ("Host <-> guest protocol, version 1") and docs/guest_init.md.
"""

import json

MAX_LINE = 1024 * 1024  # bytes, without the newline
SYNC_BYTE = 0xFF
REQUEST_KEYS = frozenset(("id", "op", "args"))

BAD_JSON = "bad_json"
LINE_TOO_LONG = "line_too_long"
BAD_REQUEST = "bad_request"
UNKNOWN_OP = "unknown_op"
UNSUPPORTED_VERSION = "unsupported_version"
NOT_READY = "not_ready"
INTERNAL = "internal"
POLICY_DENIED = "policy_denied"            # the boot policy forbids the op (guest_init/measured.py)
MEASUREMENT_FAILED = "measurement_failed"  # the boot spec does not match the measured digest
UNSUPPORTED = "unsupported"                # the guest cannot do it (e.g. attestation without a platform)

# what LineFramer.feed yields besides complete lines (bytes)
TOO_LONG = "too_long"
SYNC_MARK = "sync_mark"


class ProtocolError(Exception):
    """An error reply: code is one of the codes above, request_id echoes the request's id."""

    def __init__(self, code, message, request_id=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


class LineFramer:
    """Splits a byte stream into lines of at most max_line bytes.

    0xFF anywhere drops the partial line (a client resyncing). A line that grows past
    max_line is reported once as TOO_LONG, then skipped up to its newline.
    """

    def __init__(self, max_line=MAX_LINE):
        self.max_line = max_line
        self._buffer = bytearray()
        self._skipping = False

    def reset(self):
        self._buffer.clear()
        self._skipping = False

    def feed(self, data):
        """Yield complete lines (bytes, without newline), TOO_LONG or SYNC_MARK, in order."""
        start = 0
        end = len(data)
        while start < end:
            newline = data.find(b"\n", start)
            stop = end if newline < 0 else newline
            sync = data.find(b"\xff", start, stop)
            if sync >= 0:
                stop = sync
            if not self._skipping:
                if len(self._buffer) + (stop - start) > self.max_line:
                    self._buffer.clear()
                    self._skipping = True
                    yield TOO_LONG
                else:
                    self._buffer += data[start:stop]
            if sync >= 0:
                self.reset()
                start = sync + 1
                yield SYNC_MARK
            elif newline < 0:
                return
            else:
                start = newline + 1
                if self._skipping:
                    self._skipping = False
                else:
                    line = bytes(self._buffer)
                    self._buffer.clear()
                    yield line


def parse_request(line):
    """Return (id, op, args) from one line, or raise ProtocolError."""
    try:
        request = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(BAD_JSON, "line is not UTF-8 JSON: %s" % exc) from None
    except RecursionError:  # json's decoder recurses per nesting level: [[[[...]]]] must not be `internal`
        raise ProtocolError(BAD_JSON, "line is not JSON this guest accepts: nested too deeply") from None
    if not isinstance(request, dict):
        raise ProtocolError(BAD_REQUEST, "request must be a JSON object, not %s" % json_type(request))
    request_id = request.get("id")
    if not _is_valid_id(request_id):
        raise ProtocolError(BAD_REQUEST, "'id' must be a string or an integer")
    for key in request:
        if key not in REQUEST_KEYS:
            raise ProtocolError(BAD_REQUEST, "unknown key %r in request" % key, request_id)
    op = request.get("op")
    if not isinstance(op, str):
        raise ProtocolError(BAD_REQUEST, "'op' must be a string", request_id)
    args = request.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError(BAD_REQUEST, "'args' must be an object", request_id)
    return request_id, op, args


def _is_valid_id(value):
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def json_type(value):
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def encode(message):
    """One compact JSON line; ASCII only, so it can never contain a 0xFF or a raw newline."""
    return json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n"


def result_line(request_id, result):
    return encode({"id": request_id, "result": result})


def error_line(request_id, code, message):
    return encode({"id": request_id, "error": {"code": code, "message": message}})


def event_line(name, data):
    return encode({"event": name, "data": data})
