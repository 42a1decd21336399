"""The supervisor's ops: apply, logs, signal (status gets its apps from `status_fields`)."""

import signal

from guest_init import protocol
from guest_init.ops import Arg
from guest_init.protocol import ProtocolError

MAX_TAIL = 5000
MAX_LOG_REPLY_CHARS = 768 * 1024  # keeps a reply well under the 1 MiB line limit
DEFAULT_TAIL = 100


class SupervisorOps:
    def __init__(self, registry, supervisor, existing_supervisor, cgroup_info):
        """supervisor() makes the Supervisor on first need, existing_supervisor() -> it or None;
        cgroup_info: {root, controllers} shown in status (what limits can be enforced)."""
        self._supervisor = supervisor
        self._existing = existing_supervisor
        self._cgroup_info = cgroup_info
        registry.add("apply", self.apply, generation=Arg(int, required=True), apps=Arg(list, required=True),
                     force=Arg(bool, default=False), dry_run=Arg(bool, default=False))
        registry.add("logs", self.logs, app=Arg(str, required=True), replica=Arg(int), tail=Arg(int, default=DEFAULT_TAIL))
        registry.add("signal", self.signal, app=Arg(str, required=True), replica=Arg(int), signal=Arg(str, required=True))

    def status_fields(self):
        supervisor = self._existing()
        return {
            "generation": None if supervisor is None else supervisor.generation,
            "converged": True if supervisor is None else supervisor.converged,
            "cgroup": self._cgroup_info,
            "apps": {} if supervisor is None else supervisor.status(),
        }

    def apply(self, args):
        from guest_init.supervisor import spec as specs
        supervisor = self._supervisor()
        if supervisor.stopping:
            raise ProtocolError(protocol.NOT_READY, "shutting down: apply refused")
        try:
            desired = specs.parse_apply(args["generation"], args["apps"])
        except specs.SpecError as exc:
            raise ProtocolError(protocol.BAD_REQUEST, str(exc)) from None
        current = supervisor.generation
        if current is not None and desired.generation < current and not args["force"]:
            raise ProtocolError(protocol.BAD_REQUEST, "generation: %d is older than the applied generation %d (force: true overrides)"
                                % (desired.generation, current))
        if args["dry_run"]:
            return {"accepted": False, "generation": desired.generation, "changes": supervisor.plan(desired)}
        try:
            changes = supervisor.apply(desired)
        except OSError as exc:  # persisting failed: nothing was changed
            raise ProtocolError(protocol.INTERNAL, "saving the spec failed: %s" % exc) from None
        return {"accepted": True, "generation": desired.generation, "changes": changes}

    def logs(self, args):
        self._app(args["app"])
        tail = args["tail"]
        if not 0 <= tail <= MAX_TAIL:
            raise ProtocolError(protocol.BAD_REQUEST, "tail: must be from 0 to %d" % MAX_TAIL)
        lines = self._existing().logs(args["app"], args["replica"], tail)
        size, kept = 0, []
        for line in reversed(lines):
            size += len(line["text"]) + 64
            if size > MAX_LOG_REPLY_CHARS:
                break
            kept.append(line)
        kept.reverse()
        return {"app": args["app"], "lines": kept, "truncated": len(kept) < len(lines)}

    def signal(self, args):
        app = self._app(args["app"])
        name = args["signal"].upper()
        name = name if name.startswith("SIG") else "SIG" + name
        try:
            signum = signal.Signals[name]
        except KeyError:
            raise ProtocolError(protocol.BAD_REQUEST, "signal: unknown signal %r" % args["signal"]) from None
        if args["replica"] is not None and args["replica"] not in app.replicas:
            raise ProtocolError(protocol.BAD_REQUEST, "replica: app %r has no replica %d" % (args["app"], args["replica"]))
        signalled = self._existing().signal(args["app"], args["replica"], signum)
        return {"signal": signum.name, "signalled": signalled}

    def _app(self, name):
        supervisor = self._existing()
        app = None if supervisor is None else supervisor.apps.get(name)
        if app is None:
            raise ProtocolError(protocol.BAD_REQUEST, "app: no app named %r" % name)
        return app
