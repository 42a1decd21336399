"""One app: its replicas by index, scaling, and the one-at-a-time replacement of a changed spec.

A changed spec is rolled out stop-then-start per index, lowest index first: replica k of the
old spec is stopped (SIGTERM, grace, SIGKILL) and only then replica k of the new spec starts,
because replica k's PORT (first port + k) is the same in both. The next index is replaced
once every replica of the new spec is ready; a new spec that never gets ready stalls the
rollout (the remaining old replicas keep serving) until a newer apply.
"""

from guest_init.supervisor.logbuf import LogBuffer
from guest_init.supervisor.replica import Replica

LOG_BYTES_PER_REPLICA = 64 * 1024


class App:
    def __init__(self, supervisor, spec):
        self.supervisor = supervisor
        self.loop = supervisor.loop
        self.reaper = supervisor.reaper
        self.spec = spec  # the target: the latest applied spec of this app
        self.removed = False
        self.replicas = {}  # index -> Replica of the slot
        self.retiring = []  # Replicas being stopped (scaled away, replaced, removed)
        self._logs = {}
        self._reconciling = False
        self._again = False
        self._shutdown_grace_s = None
        self._scheduled = None

    def runtime(self, name):
        return self.supervisor.runtime(name)

    def logs(self, index):
        buffer = self._logs.get(index)
        if buffer is None:
            buffer = self._logs[index] = LogBuffer(LOG_BYTES_PER_REPLICA)
        buffer.secrets = self.spec.secrets()
        return buffer

    @property
    def desired_replicas(self):
        return 0 if self.removed else self.spec.replicas

    def set_target(self, spec):
        """A new apply: spec None removes the app. Replicas move from the loop, after the reply."""
        if spec is None:
            self.removed = True
        else:
            self.removed = False
            self.spec = spec
            for buffer in self._logs.values():
                buffer.secrets = spec.secrets()
        if self._scheduled is None:
            self._scheduled = self.loop.call_soon(self._scheduled_change)

    def _scheduled_change(self):
        self._scheduled = None
        self.changed()

    @property
    def finished(self):
        """Removed and nothing left running."""
        return self.removed and not self.replicas and not self.retiring

    @property
    def converged(self):
        current = all(r.spec.spec_hash == self.spec.spec_hash and r.state != "starting" for r in self.replicas.values())
        return not self.retiring and len(self.replicas) == self.desired_replicas and current

    def changed(self):
        """Something happened to a replica or to the target: bring reality closer to it."""
        if self._reconciling:
            self._again = True
            return
        self._reconciling = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self._reconcile()
        finally:
            self._reconciling = False
        self.supervisor.app_changed(self)

    def _reconcile(self):
        for replica in [r for r in self.retiring if r.state == "stopped"]:
            self.retiring.remove(replica)
        count = self.desired_replicas
        for index in sorted(self.replicas, reverse=True):  # scale down: highest index first
            if index >= count:
                self._retire(index)
        for index in list(self._logs):
            if index >= count and not self._occupied(index):
                del self._logs[index]
        for index in range(count):
            if index not in self.replicas and not self._occupied(index):
                replica = self.replicas[index] = Replica(self, index, self.spec)
                replica.start()
        self._roll()

    def _roll(self):
        target = self.spec.spec_hash
        outdated = sorted(i for i, r in self.replicas.items() if r.spec.spec_hash != target)
        for index in outdated:
            if not self.replicas[index].alive:  # crashed, backing off, failed: replace now
                self._retire(index)
        outdated = [i for i in outdated if i in self.replicas]
        if not outdated or self.retiring or len(self.replicas) < self.desired_replicas:
            return
        if all(r.state == "ready" for r in self.replicas.values() if r.spec.spec_hash == target):
            self._retire(outdated[0])

    def _retire(self, index):
        replica = self.replicas.pop(index)
        self.retiring.append(replica)
        replica.stop(self.spec.stop_grace_s if self._shutdown_grace_s is None else self._shutdown_grace_s)
        if replica.state == "stopped":  # was not running: gone at once
            self.retiring.remove(replica)

    def _occupied(self, index):
        return any(r.index == index for r in self.retiring)

    def stop_all(self, grace_s):
        """For shutdown: stop every replica now, keep the spec."""
        self.removed = True
        self._shutdown_grace_s = min(grace_s, self.spec.stop_grace_s)
        self.changed()

    def status(self):
        replicas = sorted(list(self.replicas.values()) + self.retiring, key=lambda r: (r.index, r in self.retiring))
        return {
            "runtime": self.spec.runtime,
            "spec_hash": self.spec.spec_hash,
            "desired_replicas": self.desired_replicas,
            "removed": self.removed,
            "converged": self.converged,
            "ready_replicas": sum(1 for r in self.replicas.values() if r.state == "ready" and r.spec.spec_hash == self.spec.spec_hash),
            "replicas": [replica.status() for replica in replicas],
        }

    def tail(self, index, count):
        """[(ts, stream, replica, text)] of one replica slot or all, oldest first."""
        indices = [index] if index is not None else sorted(self._logs)
        lines = []
        for i in indices:
            buffer = self._logs.get(i)
            if buffer is not None:
                lines.extend((ts, stream, i, text) for ts, stream, text in buffer.tail(count))
        lines.sort(key=lambda line: line[0])
        return lines[-count:] if count > 0 else []
