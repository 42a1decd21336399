"""The one place that calls wait(): reaps every child and hands exit statuses to their owners.

Whoever starts a process registers its pid with watch(); nobody else may call waitpid
(not even subprocess.Popen.wait), or statuses would be stolen. Children nobody watches
(orphans re-parented to PID 1 or to the subreaper) are reaped and logged.
"""

import os
import signal

from guest_init import log


class Reaper:
    def __init__(self, loop):
        self._watchers = {}
        self.has_children = True
        loop.add_signal(signal.SIGCHLD, lambda signum: self.reap())

    def watch(self, pid, callback):
        """callback(pid, wait_status) is called once, from the loop, when pid exits."""
        self._watchers[pid] = callback
        self.has_children = True

    def reap(self):
        """Collect every exited child now; safe to call at any time."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.has_children = False
                return
            if pid == 0:
                self.has_children = True
                return
            callback = self._watchers.pop(pid, None)
            if callback is None:
                log.info("reaped pid %d (%s)" % (pid, describe_status(status)))
            else:
                try:
                    callback(pid, status)
                except Exception:  # pylint: disable=broad-except
                    log.exception("exit callback for pid %d failed" % pid)


def describe_status(status):
    if os.WIFSIGNALED(status):
        return "killed by signal %d" % os.WTERMSIG(status)
    return "exit %d" % os.waitstatus_to_exitcode(status)
