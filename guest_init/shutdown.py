"""Orderly shutdown, driven by loop timers so guest_init keeps reaping and answering meanwhile.

First the supervisor stops the apps in dependency order (stop_apps, bounded by
APPS_DEADLINE_S). Then, as PID 1: SIGTERM to every process, a grace period, SIGKILL to the rest, flush the reply,
then pid1.power_off (sync, unmount, remount / read-only, reboot(2)). As an ordinary process
it only flushes its output and stops the loop: it never signals processes it did not start.
"""

import os
import signal
import time

from guest_init import log

TERM_GRACE_S = 5.0
KILL_GRACE_S = 2.0
FLUSH_GRACE_S = 2.0
APPS_DEADLINE_S = 15.0
CHECK_EVERY_S = 0.05


class Shutdown:
    def __init__(self, loop, reaper, pending_output, finish, kill_everyone):
        """pending_output() -> bytes not yet sent to the host; finish(reboot) ends it all.
        stop_apps(deadline_s, then), set later by the machine, stops the apps and calls then()."""
        self._loop = loop
        self._reaper = reaper
        self._pending_output = pending_output
        self._finish = finish
        self._kill_everyone = kill_everyone
        self.reboot = False
        self.started = False
        self.stop_apps = None

    def start(self, reboot, reason):
        if self.started:
            log.info("shutdown already under way (%s)" % reason)
            return
        self.started = True
        self.reboot = reboot
        log.info("%s requested (%s)" % ("reboot" if reboot else "shutdown", reason))
        after_apps = self._terminate if self._kill_everyone else self._flush
        if self.stop_apps is not None:
            self._loop.call_soon(lambda: self.stop_apps(APPS_DEADLINE_S, after_apps))
        else:
            self._loop.call_soon(after_apps)

    def _terminate(self):
        self._signal_all(signal.SIGTERM)
        self._wait(self._no_children, TERM_GRACE_S, self._kill)

    def _kill(self):
        if self._reaper.has_children:
            self._signal_all(signal.SIGKILL)
        self._wait(self._no_children, KILL_GRACE_S, self._flush)

    def _flush(self):
        self._wait(lambda: self._pending_output() == 0, FLUSH_GRACE_S, lambda: self._finish(self.reboot))

    def _no_children(self):
        self._reaper.reap()
        return not self._reaper.has_children

    @staticmethod
    def _signal_all(signum):
        try:
            os.kill(-1, signum)
            log.info("sent %s to all processes" % signal.Signals(signum).name)
        except ProcessLookupError:
            pass  # nobody left

    def _wait(self, condition, timeout, then):
        deadline = time.monotonic() + timeout

        def check():
            if condition() or time.monotonic() >= deadline:
                then()
            else:
                self._loop.call_later(CHECK_EVERY_S, check)
        check()
