"""Single-threaded event loop: fd readiness (selectors), timers, and signals via a wakeup pipe.

Signals are never handled inside a Python signal handler: the C-level handler writes the
signal number into a pipe (signal.set_wakeup_fd) and the loop dispatches it like any other
event, so callbacks never run re-entrantly.
"""

import heapq
import os
import selectors
import signal
import time

from guest_init import log


class Timer:
    """Handle returned by call_later; cancel() makes it a no-op."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when, callback):
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self):
        self.cancelled = True

    def __lt__(self, other):
        return self.when < other.when


class EventLoop:
    def __init__(self):
        self._selector = selectors.DefaultSelector()
        self._timers = []
        self._signal_callbacks = {}
        self._running = False
        self._wakeup_r, self._wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._wakeup_w, warn_on_full_buffer=False)
        self.add_reader(self._wakeup_r, self._on_wakeup)

    # -- file descriptors -------------------------------------------------
    def add_reader(self, fd, callback):
        self._set_callback(fd, 0, callback)

    def remove_reader(self, fd):
        self._set_callback(fd, 0, None)

    def add_writer(self, fd, callback):
        self._set_callback(fd, 1, callback)

    def remove_writer(self, fd):
        self._set_callback(fd, 1, None)

    def _set_callback(self, fd, slot, callback):
        try:
            key = self._selector.get_key(fd)
            callbacks = list(key.data)
        except KeyError:
            key = None
            callbacks = [None, None]
        callbacks[slot] = callback
        events = (selectors.EVENT_READ if callbacks[0] else 0) | (selectors.EVENT_WRITE if callbacks[1] else 0)
        if key is None:
            if events:
                self._selector.register(fd, events, callbacks)
        elif events:
            self._selector.modify(fd, events, callbacks)
        else:
            self._selector.unregister(fd)

    # -- timers -----------------------------------------------------------
    def call_later(self, delay, callback):
        timer = Timer(time.monotonic() + max(0.0, delay), callback)
        heapq.heappush(self._timers, timer)
        return timer

    def call_soon(self, callback):
        return self.call_later(0.0, callback)

    # -- signals ----------------------------------------------------------
    def add_signal(self, signum, callback):
        """Dispatch signum to callback(signum) from the loop; replaces the default action."""
        self._signal_callbacks[signum] = callback
        signal.signal(signum, _ignore_in_handler)

    def _on_wakeup(self):
        try:
            data = os.read(self._wakeup_r, 4096)
        except BlockingIOError:
            return
        for signum in dict.fromkeys(data):  # each signal once per batch, in arrival order
            callback = self._signal_callbacks.get(signum)
            if callback is not None:
                self._run_callback(callback, signum)

    # -- running ----------------------------------------------------------
    def stop(self):
        self._running = False

    def run(self):
        """Run until stop(). A failing callback is logged and the loop goes on."""
        self._running = True
        while self._running:
            self.run_once()

    def run_once(self):
        timeout = None
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        if self._timers:
            timeout = max(0.0, self._timers[0].when - time.monotonic())
        for key, events in self._selector.select(timeout):
            reader, writer = key.data
            if events & selectors.EVENT_READ and reader is not None:
                self._run_callback(reader)
            # the reader may have unregistered the fd: look the writer up again
            if events & selectors.EVENT_WRITE and writer is not None and self._writer_of(key.fd) is writer:
                self._run_callback(writer)
        now = time.monotonic()
        while self._timers and self._timers[0].when <= now:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.cancelled = True
                self._run_callback(timer.callback)

    def _writer_of(self, fd):
        try:
            return self._selector.get_key(fd).data[1]
        except KeyError:
            return None

    @staticmethod
    def _run_callback(callback, *args):
        try:
            callback(*args)
        except Exception:  # pylint: disable=broad-except
            log.exception("callback %r failed" % (callback,))


def _ignore_in_handler(signum, frame):
    """The work happens in the loop; see EventLoop._on_wakeup."""
