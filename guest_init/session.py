"""Turns bytes from the host into op calls and replies: framing -> parsing -> registry -> encoding."""

from guest_init import log, protocol
from guest_init.protocol import ProtocolError

SYNC_OP = "sync"


class Session:
    """One per channel; outlives host connections (a serial port is one endless stream)."""

    def __init__(self, ops):
        self._ops = ops
        self._framer = protocol.LineFramer()
        self.transport = None  # set by the channel: has send(bytes)

    def on_data(self, data):
        for item in self._framer.feed(data):
            if item is protocol.SYNC_MARK:
                log.debug("sync byte: partial input dropped")
            elif item is protocol.TOO_LONG:
                self._send(protocol.error_line(
                    None, protocol.LINE_TOO_LONG, "line longer than %d bytes: skipped up to its newline" % self._framer.max_line))
            elif item.strip():
                self._handle_line(item)

    def on_disconnect(self):
        """The host went away: whatever it was in the middle of sending is void."""
        self._framer.reset()

    def send_event(self, name, data):
        self._send(protocol.event_line(name, data))

    def _handle_line(self, line):
        request_id = None
        try:
            request_id, op, args = protocol.parse_request(line)
            log.debug("request %r op %s" % (request_id, op))
            result = self._ops.call(op, args)
        except ProtocolError as exc:
            self._send(protocol.error_line(exc.request_id if request_id is None else request_id, exc.code, exc.message))
            return
        except Exception:  # pylint: disable=broad-except
            log.exception("op failed")
            self._send(protocol.error_line(request_id, protocol.INTERNAL, "internal error; see the guest console"))
            return
        reply = protocol.result_line(request_id, result)
        self._send(b"\xff" + reply if op == SYNC_OP else reply)

    def _send(self, data):
        if self.transport is not None:
            self.transport.send(data)
