"""One replica: a process started by a runtime, restarted by policy, health-checked.

States: starting (alive, readiness not passed yet), ready (readiness passing, or no readiness
check), running (alive but not ready: readiness failing, or startup grace over), backoff
(waiting to restart), stopping (SIGTERM sent, waiting for the exit), stopped (exited, not to be
restarted, or stopped on purpose), failed (given up, or a failure under `never`).
"""

import os
import signal
import time

from guest_init import log
from guest_init.runtimes.base import Launch, Limits
from guest_init.supervisor import cgroups
from guest_init.supervisor.backoff import Backoff
from guest_init.supervisor.health import HealthCheck
from guest_init.supervisor.logbuf import OutputPipe

CLEANUP_RETRY_S = 0.05
CLEANUP_ATTEMPTS = 100


class Replica:
    def __init__(self, app, index, spec):
        """app: the owning App (loop, reaper, runtime, logs, current policy, changed())."""
        self.app = app
        self.index = index
        self.spec = spec
        self.launch = None
        self.pid = None
        self.state = "stopped"
        self.restarts = 0
        self.exit_code = None
        self.exit_signal = None
        self.oom_killed = False
        self.started_at = None
        self.last_error = None
        self.stop_requested = False
        self._started_mono = None
        self._final_stats = None
        self._backoff = Backoff()
        self._timers = []
        self._checks = {}
        self._oom_baseline = 0
        self._cleaning = False
        self._liveness_kill = False

    @property
    def container_id(self):
        return "%s-%d-%s" % (self.spec.name, self.index, self.spec.spec_hash[:8])

    @property
    def alive(self):
        return self.pid is not None

    # -- starting -----------------------------------------------------------
    def start(self):
        self._cancel_timers()
        if self.stop_requested:
            return
        pipes = [OutputPipe(self.app.loop, self.app.logs(self.index), stream) for stream in ("stdout", "stderr")]
        try:
            runtime = self.app.runtime(self.spec.runtime)
            argv = runtime.resolve_argv(self.spec.image, self.spec.command, self.spec.args)
            if not argv:
                raise ValueError("no command: neither the spec nor the image gives one")
            self.launch = self._make_launch(argv, pipes[0].write_fd, pipes[1].write_fd)
            self.pid = runtime.start(self.launch)
        except Exception as exc:  # pylint: disable=broad-except  # a runtime's failure is this replica's, not the loop's
            for pipe in pipes:
                pipe.close()
            if not isinstance(exc, (OSError, ValueError)):
                log.exception("%s: runtime %s failed" % (self.container_id, self.spec.runtime))
            self._start_failed(str(exc) or type(exc).__name__)
            return
        for pipe in pipes:
            pipe.close_write_end()
        self.started_at = time.time()
        self._started_mono = time.monotonic()
        self._final_stats = None
        self._oom_baseline = (self._cgroup_stats() or {}).get("oom_kills") or 0
        self.app.reaper.watch(self.pid, self._exited)
        self.app.logs(self.index).note("started %s pid %d" % (self.container_id, self.pid))
        log.info("%s: started pid %d" % (self.container_id, self.pid))
        self._start_checks()
        self._set_state("starting" if self.spec.readiness else "ready")

    def _make_launch(self, argv, stdout_fd, stderr_fd):
        spec = self.spec
        env = {name: value for name, value, secret in spec.env}
        env["GOSHIP_APP"] = spec.name
        env["GOSHIP_REPLICA"] = str(self.index)
        if spec.ports:
            env["PORT"] = str(spec.port_of(self.index))
        memory = None if spec.memory_mib is None else spec.memory_mib * 1024 * 1024
        return Launch(
            app=spec.name, index=self.index, container_id=self.container_id, image=spec.image,
            argv=tuple(argv), env=env, workdir=spec.workdir, user=spec.user,
            limits=Limits(cpu_millis=spec.cpu_millis, memory_bytes=memory, pids=spec.pids),
            cgroup="%s/%s/%d" % (cgroups.SUBTREE, spec.name, self.index),
            stdout_fd=stdout_fd, stderr_fd=stderr_fd)

    def _cgroup_stats(self):
        cgroup_dir = self.app.runtime(self.spec.runtime).cgroup_dir(self.launch)
        return cgroups.stats(cgroup_dir) if cgroup_dir else None

    def _start_failed(self, message):
        self.last_error = "start failed: %s" % message
        self.app.logs(self.index).note(self.last_error)
        log.info("%s: %s" % (self.container_id, self.last_error))
        self._after_failure(0.0)

    # -- health -----------------------------------------------------------
    def _start_checks(self):
        port = self.spec.port_of(self.index)
        if self.spec.readiness:
            check = HealthCheck(self.app.loop, self.app.reaper, self.spec.readiness, port, self._exec_argv, self._readiness_result)
            self._checks["readiness"] = check
            check.start()
        if self.spec.liveness:
            check = HealthCheck(self.app.loop, self.app.reaper, self.spec.liveness, port, self._exec_argv, self._liveness_result)
            self._checks["liveness"] = check
            self._later(self.spec.startup_grace_s, check.start)
        if self.spec.readiness:
            self._later(self.spec.startup_grace_s, self._grace_over)

    def _exec_argv(self, argv):
        return self.app.runtime(self.spec.runtime).exec_argv(self.launch, argv)

    def _stop_checks(self):
        for check in self._checks.values():
            check.stop()
        self._checks.clear()

    def _grace_over(self):
        if self.state == "starting":
            self._set_state("running")

    def _readiness_result(self, ok, detail):
        if ok and self.state in ("starting", "running"):
            self._set_state("ready")
        elif not ok and self.state == "ready" and self._checks["readiness"].failures >= self.spec.readiness.failure_threshold:
            self._set_state("running")

    def _liveness_result(self, ok, detail):
        check = self._checks["liveness"]
        if ok or check.failures < self.spec.liveness.failure_threshold or self.state == "stopping":
            return
        self.last_error = "liveness: %s" % detail
        self.app.logs(self.index).note("liveness check failed %d times (%s): restarting" % (check.failures, detail))
        log.info("%s: liveness failed: restarting" % self.container_id)
        self._liveness_kill = True
        self._terminate(self.spec.stop_grace_s)

    def health(self):
        return {name: check.status() for name, check in self._checks.items()} or None

    # -- stopping -----------------------------------------------------------
    def stop(self, grace_s):
        """Stop for good: SIGTERM, then SIGKILL after grace_s; app.changed() once stopped."""
        if self.stop_requested:
            return
        self.stop_requested = True
        if self.alive:
            self._terminate(grace_s)
        elif not self._cleaning:  # else _after_exit reports "stopped" once cleaned up
            self._cancel_timers()
            self._set_state("stopped")

    def _terminate(self, grace_s):
        self._stop_checks()
        self.send_signal(signal.SIGTERM)
        self._set_state("stopping")
        self._later(grace_s, self._kill)

    def _kill(self):
        if self.alive:
            log.info("%s: still running after the grace period: SIGKILL" % self.container_id)
            self.send_signal(signal.SIGKILL)

    def send_signal(self, signum):
        if self.alive:
            self.app.runtime(self.spec.runtime).signal(self.launch, self.pid, signum)

    # -- exits --------------------------------------------------------------
    def _exited(self, pid, status):
        runtime = self.app.runtime(self.spec.runtime)
        self._final_stats = self._cgroup_stats()
        self.pid = None
        self._stop_checks()
        self._cancel_timers()
        self.exit_code = self.exit_signal = None
        if os.WIFSIGNALED(status):
            self.exit_signal = signal.Signals(os.WTERMSIG(status)).name
        else:
            self.exit_code = os.waitstatus_to_exitcode(status)
        self.oom_killed = ((self._final_stats or {}).get("oom_kills") or 0) > self._oom_baseline
        run_s = time.monotonic() - self._started_mono
        what = "killed by %s" % self.exit_signal if self.exit_signal else "exit %d" % self.exit_code
        if self.oom_killed:
            what += " (OOM kill)"
        self.app.logs(self.index).note("exited: %s after %.3f s" % (what, run_s))
        log.info("%s: pid %d %s" % (self.container_id, pid, what))
        # whatever the replica left behind in its group or cgroup goes with it
        runtime.signal(self.launch, pid, signal.SIGKILL)
        liveness_kill, self._liveness_kill = self._liveness_kill, False
        self._cleanup(runtime, self.launch, CLEANUP_ATTEMPTS, lambda: self._after_exit(what, run_s, liveness_kill))

    def _after_exit(self, what, run_s, liveness_kill):
        """Once the runtime cleaned up (the cgroup and the index's port are free again)."""
        if self.stop_requested:
            self._set_state("stopped")
        elif self.exit_code != 0 or liveness_kill:
            if self.oom_killed:
                self.last_error = "killed by the kernel OOM killer (memory limit)"
            elif not liveness_kill:
                self.last_error = "exited: %s" % what
            self._after_failure(run_s)
        elif self.app.spec.restart == "always":
            self._after_failure(run_s)
        else:
            self._set_state("stopped")

    def _after_failure(self, run_s):
        delay = self._backoff.record_exit(run_s)
        policy = self.app.spec.restart
        if policy == "never" or (policy == "on-failure" and self._backoff.exhausted()):
            if policy == "on-failure":
                self.last_error = "gave up after %d fast failures; last: %s" % (self._backoff.fast_failures, self.last_error)
            self._set_state("failed")
            return
        self._set_state("backoff")
        self._later(delay, self._restart)

    def _restart(self):
        self.restarts += 1
        self.start()

    def _cleanup(self, runtime, launch, attempts, then):
        self._cleaning = True
        try:
            runtime.cleanup(launch)
        except Exception as exc:  # pylint: disable=broad-except  # retried; a runtime bug must not wedge the replica
            if attempts > 1:
                self.app.loop.call_later(CLEANUP_RETRY_S, lambda: self._cleanup(runtime, launch, attempts - 1, then))
                return
            log.info("%s: cleanup failed: %s" % (launch.container_id, exc))
        self._cleaning = False
        then()

    # -- helpers ------------------------------------------------------------
    def _later(self, delay, callback):
        self._timers.append(self.app.loop.call_later(delay, callback))

    def _cancel_timers(self):
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _set_state(self, state):
        if state != self.state:
            self.state = state
            self.app.changed()

    def status(self):
        stats = self._cgroup_stats() if self.alive else self._final_stats
        return {
            "index": self.index,
            "container_id": self.container_id,
            "spec_hash": self.spec.spec_hash,
            "state": self.state,
            "pid": self.pid,
            "restarts": self.restarts,
            "exit_code": self.exit_code,
            "exit_signal": self.exit_signal,
            "oom_killed": self.oom_killed,
            "health": self.health(),
            "started_at": None if self.started_at is None else round(self.started_at, 3),
            "last_error": self.last_error,
            "cpu_usec": stats["cpu_usec"] if stats else None,
            "memory_bytes": stats["memory_bytes"] if stats and self.alive else None,
        }
