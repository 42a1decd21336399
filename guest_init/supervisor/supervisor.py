"""The supervisor: applies desired app sets as diffs and answers for all apps.

`apply` validates, persists and records the new target of every app, then returns; the
replicas converge from the event loop (progress in `status`). An app whose process-defining
fields are unchanged keeps its replicas untouched; see app.py for scaling and replacement.
"""

import time

from guest_init import log
from guest_init.runtimes import get_runtime
from guest_init.supervisor.app import App

STOP_CHECK_S = 0.05


class Supervisor:
    def __init__(self, loop, reaper, store, runtime_options):
        """store: a SpecStore (or None: nothing persisted); runtime_options go to get_runtime."""
        self.loop = loop
        self.reaper = reaper
        self.store = store
        self._runtime_options = runtime_options
        self._runtimes = {}
        self.apps = {}  # name -> App, in the declaration order of the last apply
        self.desired = None
        self.stopping = False

    @property
    def generation(self):
        return None if self.desired is None else self.desired.generation

    def disable_cgroups(self):
        """No usable cgroup tree: runtimes run replicas without limits (before the first start)."""
        self._runtime_options = {**self._runtime_options, "cgroup_root": None}

    def runtime(self, name):
        runtime = self._runtimes.get(name)
        if runtime is None:
            runtime = self._runtimes[name] = get_runtime(name, **self._runtime_options)
        return runtime

    def plan(self, desired):
        """What applying `desired` would change, by kind: {kind: [app names]}; changes nothing."""
        changes = {"added": [], "changed": [], "scaled": [], "removed": [], "unchanged": []}
        wanted = {app.name for app in desired.apps}
        changes["removed"] = [name for name, app in self.apps.items() if name not in wanted and not app.removed]
        for app_spec in desired.apps:
            app = self.apps.get(app_spec.name)
            if app is None or app.removed:  # new, or back while its old replicas still stop
                kind = "added" if app is None else "changed"
            elif app.spec.spec_hash != app_spec.spec_hash:
                kind = "changed"
            elif app.spec.replicas != app_spec.replicas:
                kind = "scaled"
            else:
                kind = "unchanged"
            changes[kind].append(app_spec.name)
        return changes

    def apply(self, desired, persist=True):
        """Make `desired` (a validated DesiredState) the target; return what changes."""
        changes = self.plan(desired)
        if persist and self.store is not None:
            self.store.save(desired)
        self.desired = desired
        for name in changes["removed"]:
            self.apps[name].set_target(None)
        for app_spec in desired.apps:
            app = self.apps.pop(app_spec.name, None)
            unchanged = app_spec.name in changes["unchanged"]
            if app is None:
                app = App(self, app_spec)
            self.apps[app_spec.name] = app  # declaration order
            if not unchanged or app.spec != app_spec:
                app.set_target(app_spec)
        log.info("applied generation %d: %s" % (desired.generation, ", ".join(
            "%s %s" % (kind, ",".join(names)) for kind, names in changes.items() if names) or "no apps"))
        return changes

    def app_changed(self, app):
        if app.finished and self.apps.get(app.spec.name) is app:
            del self.apps[app.spec.name]

    def status(self):
        return {name: app.status() for name, app in self.apps.items()}

    @property
    def converged(self):
        return all(app.converged for app in self.apps.values())

    def shutdown_order(self):
        """Waves of app names: an app stops only after every app that depends on it."""
        remaining = list(self.apps)
        waves = []
        while remaining:
            needed = {dep for name in remaining for dep in self.apps[name].spec.depends_on}
            wave = [name for name in reversed(remaining) if name not in needed] or list(reversed(remaining))
            waves.append(wave)
            remaining = [name for name in remaining if name not in wave]
        return waves

    def stop_all(self, deadline_s, then):
        """Stop every app in shutdown order within deadline_s, then call then()."""
        self.stopping = True
        deadline = time.monotonic() + deadline_s
        waves = self.shutdown_order()
        if waves:
            log.info("stopping apps: %s" % " then ".join(",".join(wave) for wave in waves))

        def next_wave():
            while waves and all(self.apps[name].finished for name in waves[0] if name in self.apps):
                waves.pop(0)
                if waves:
                    stop_wave(waves[0])
            if not waves or time.monotonic() >= deadline:
                if waves:
                    log.info("apps still stopping at the deadline: %s" % ", ".join(self.apps))
                then()
                return
            self.loop.call_later(STOP_CHECK_S, next_wave)

        def stop_wave(wave):
            for name in wave:
                if name in self.apps:
                    self.apps[name].stop_all(max(0.0, deadline - time.monotonic()))

        if waves:
            stop_wave(waves[0])
        next_wave()

    def logs(self, name, index, count):
        app = self.apps[name]
        return [{"ts": round(ts, 3), "stream": stream, "replica": replica, "text": text}
                for ts, stream, replica, text in app.tail(index, count)]

    def signal(self, name, index, signum):
        app = self.apps[name]
        targets = [r for i, r in sorted(app.replicas.items()) if index is None or i == index]
        signalled = []
        for replica in targets:
            if replica.alive:
                signalled.append({"replica": replica.index, "pid": replica.pid})
                replica.send_signal(signum)
        return signalled
