"""guest_init's VirtioPort against a model of the guest kernel's port (virtio_console) and a
stepped fake loop: the host's connects and disconnects reach the port late (a kernel worker
handles them), so a new client's request can be read while the port still says "no host".
Replies and partial requests must survive that; see docs/guest_init.md, "Channel reconnects"."""

import json
import os
import signal

import pytest

from guest_init import channel, protocol
from guest_init.session import Session

MAX_STEPS = 100


class ModelPort:
    """The guest kernel's view of the port: what read(), write() and poll() see."""

    def __init__(self):
        self.host_connected = True
        self.inbuf = bytearray()  # from the host, not read yet
        self.to_host = bytearray()  # written by the guest and taken by the host

    def read(self):
        if self.inbuf:
            data = bytes(self.inbuf)
            self.inbuf.clear()
            return data
        if not self.host_connected:
            return b""
        raise BlockingIOError()

    def write(self, data):
        if not self.host_connected:
            raise BlockingIOError()  # will_write_block() while no host
        self.to_host += data
        return len(data)

    def readable(self):
        return bool(self.inbuf) or not self.host_connected

    def writable(self):
        return self.host_connected


class SteppedLoop:
    """Records what the port polls; step() runs what the model says is ready, timers on demand."""

    def __init__(self, model):
        self.model = model
        self.readers = {}
        self.writers = {}
        self.timers = []
        self.signals = {}

    def add_reader(self, fd, callback):
        self.readers[fd] = callback

    def remove_reader(self, fd):
        self.readers.pop(fd, None)

    def add_writer(self, fd, callback):
        self.writers[fd] = callback

    def remove_writer(self, fd):
        self.writers.pop(fd, None)

    def add_signal(self, signum, callback):
        self.signals[signum] = callback

    def call_later(self, delay, callback):
        timer = Timer(delay, callback)
        self.timers.append(timer)
        return timer

    def sigio(self):
        self.signals[signal.SIGIO](signal.SIGIO)

    def step(self):
        """Run ready callbacks, one at a time, until nothing is ready."""
        for attempt in range(MAX_STEPS):
            ready = [cb for cb in self.readers.values() if self.model.readable()]
            ready += [cb for cb in self.writers.values() if self.model.writable()]
            if not ready:
                return
            ready[0]()
        raise AssertionError("still busy after %d callbacks: the port spins" % MAX_STEPS)

    def fire_timers(self):
        due, self.timers = self.timers, []
        for timer in due:
            if not timer.cancelled:
                timer.callback()


class Timer:
    def __init__(self, delay, callback):
        self.delay = delay
        self.callback = callback
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


class Ops:
    def call(self, op, args):
        if op in ("sync", "ping"):
            return {}
        raise protocol.ProtocolError(protocol.UNKNOWN_OP, "unknown op %r" % op)


class ModelVirtioPort(channel.VirtioPort):
    """The real VirtioPort, its reads and writes going to the model."""

    def __init__(self, loop, session, model):
        super().__init__(loop, session)
        self.model = model

    def _read(self, fd):
        return self.model.read()

    def _write(self, fd, data):
        return self.model.write(data)


@pytest.fixture
def port(tmp_path):
    """An open ModelVirtioPort: its fd is a FIFO nobody writes to, so it never raises SIGIO itself."""
    fifo = tmp_path / "vport0p1"
    os.mkfifo(fifo)
    model = ModelPort()
    loop = SteppedLoop(model)
    session = Session(Ops())
    virtio_port = ModelVirtioPort(loop, session, model)
    session.transport = virtio_port
    virtio_port._open(str(fifo))  # pylint: disable=protected-access
    yield virtio_port
    if virtio_port._port_fd is not None:  # pylint: disable=protected-access
        os.close(virtio_port._port_fd)  # pylint: disable=protected-access


def sync_request(sync_id):
    return b"\xff" + json.dumps({"id": sync_id, "op": "sync"}).encode() + b"\n"


def replies(data):
    return [json.loads(line) for line in data.replace(b"\xff", b"").splitlines() if line]


def client_leaves_and_the_port_learns_it(port):
    port.model.host_connected = False
    port.loop.sigio()
    port.loop.step()
    assert not port.loop.readers, "no host: the port must not be polled (POLLIN|POLLHUP without end)"


def test_reply_to_a_request_read_while_the_port_still_says_no_host_is_delivered(port):
    loop, model = port.loop, port.model
    model.inbuf += sync_request("a")
    loop.step()
    assert replies(model.to_host) == [{"id": "a", "result": {}}]
    model.to_host.clear()
    client_leaves_and_the_port_learns_it(port)
    # the next client connected and sent its sync; its data arrives (SIGIO) before the
    # kernel worker has handled the host's "connected" message
    model.inbuf += sync_request("b")
    loop.sigio()
    loop.step()
    assert model.to_host == b"" and port.pending_output() > 0
    model.host_connected = True  # the worker gets to it, SIGIO
    loop.sigio()
    loop.step()
    assert model.to_host.startswith(b"\xff") and replies(model.to_host) == [{"id": "b", "result": {}}]
    assert port.pending_output() == 0


def test_pending_reply_goes_out_on_the_recheck_when_sigio_is_lost(port):
    loop, model = port.loop, port.model
    client_leaves_and_the_port_learns_it(port)
    model.inbuf += sync_request("b")
    loop.sigio()
    loop.step()
    model.host_connected = True  # no SIGIO this time
    loop.step()
    assert model.to_host == b""
    assert [timer.delay for timer in loop.timers if not timer.cancelled] == [channel.RECHECK_HOST_S]
    loop.fire_timers()
    loop.step()
    assert replies(model.to_host) == [{"id": "b", "result": {}}]


def test_request_split_across_a_stale_no_host_is_served(port):
    loop, model = port.loop, port.model
    client_leaves_and_the_port_learns_it(port)
    model.inbuf += sync_request("b") + b'{"id":"p","op":"pi'
    loop.sigio()
    loop.step()  # reads it all, then sees "no host" again: the partial line must stay
    model.host_connected = True
    model.inbuf += b'ng"}\n'
    loop.sigio()
    loop.step()
    assert replies(model.to_host) == [{"id": "b", "result": {}}, {"id": "p", "result": {}}]


def test_output_of_a_client_that_left_goes_to_the_next_one_before_its_sync_reply(port):
    """The next client drops everything before the 0xFF of its own sync reply."""
    loop, model = port.loop, port.model
    model.host_connected = False  # the client sent ping and left before the reply was written
    model.inbuf += b'{"id":"old","op":"ping"}\n'
    loop.step()
    assert model.to_host == b"" and port.pending_output() > 0
    model.host_connected = True
    model.inbuf += sync_request("new")
    loop.sigio()
    loop.step()
    stale, fresh = bytes(model.to_host).split(b"\xff")
    assert replies(stale) == [{"id": "old", "result": {}}]
    assert replies(fresh) == [{"id": "new", "result": {}}]


def test_port_failure_drops_pending_output_and_reopens_later(port):
    loop, model = port.loop, port.model
    client_leaves_and_the_port_learns_it(port)
    model.inbuf += b'{"id":"x","op":"ping"}\n'
    loop.sigio()
    loop.step()
    assert port.pending_output() > 0

    def failing_read():
        raise OSError(5, "Input/output error")
    model.read = failing_read
    model.inbuf += b"."
    loop.sigio()
    fd = port.fd
    loop.step()
    assert port.pending_output() == 0 and port.fd is None
    assert [timer.delay for timer in loop.timers if not timer.cancelled][-1] == channel.DISCOVERY_SLOW_S
    with pytest.raises(OSError):
        os.fstat(fd)  # closed
