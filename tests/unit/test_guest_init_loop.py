"""The event loop in-process: timers, fd callbacks, signals through the wakeup pipe, failing callbacks."""

import os
import signal

import pytest

from guest_init.loop import EventLoop


@pytest.fixture
def loop():
    old_handler = signal.getsignal(signal.SIGUSR1)
    event_loop = EventLoop()
    event_loop.call_later(5.0, event_loop.stop)  # bound every test
    yield event_loop
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGUSR1, old_handler)


def test_timers_fire_in_order_and_cancelled_ones_never(loop):
    fired = []
    loop.call_later(0.03, lambda: fired.append("late"))
    loop.call_later(0.01, lambda: fired.append("early")).cancel()
    loop.call_soon(lambda: fired.append("soon"))
    loop.call_later(0.05, loop.stop)
    loop.run()
    assert fired == ["soon", "late"]


def test_reader_and_writer_callbacks(loop):
    read_end, write_end = os.pipe()
    got = []

    def on_writable():
        os.write(write_end, b"hi")
        loop.remove_writer(write_end)

    def on_readable():
        got.append(os.read(read_end, 10))
        loop.remove_reader(read_end)
        loop.stop()
    loop.add_reader(read_end, on_readable)
    loop.add_writer(write_end, on_writable)
    loop.run()
    os.close(read_end)
    os.close(write_end)
    assert got == [b"hi"]


def test_signal_dispatched_from_the_loop(loop):
    got = []
    loop.add_signal(signal.SIGUSR1, lambda signum: (got.append(signum), loop.stop()))
    loop.call_soon(lambda: os.kill(os.getpid(), signal.SIGUSR1))
    loop.run()
    assert got == [signal.SIGUSR1]


def test_failing_callback_is_logged_and_loop_goes_on(loop, capfd):
    fired = []

    def broken():
        raise RuntimeError("boom")
    loop.call_soon(broken)
    loop.call_later(0.01, lambda: (fired.append(1), loop.stop()))
    loop.run()
    assert fired == [1]
    assert "RuntimeError: boom" in capfd.readouterr().err
