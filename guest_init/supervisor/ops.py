"""The supervisor's ops: apply, logs, signal (status gets its apps from `status_fields`)."""

import signal

from guest_init import protocol
from guest_init.ops import Arg
from guest_init.protocol import ProtocolError
from guest_init.supervisor import spec as specs

MAX_TAIL = 5000
MAX_LOG_REPLY_CHARS = 768 * 1024  # keeps a reply well under the 1 MiB line limit
DEFAULT_TAIL = 100


class SupervisorOps:
    def __init__(self, registry, supervisor, cgroup_info):
        """cgroup_info: {root, controllers} shown in status (what limits can be enforced)."""
        self._supervisor = supervisor
        self._cgroup_info = cgroup_info
        registry.add("apply", self.apply, generation=Arg(int, required=True), apps=Arg(list, required=True),
                     force=Arg(bool, default=False))
        registry.add("logs", self.logs, app=Arg(str, required=True), replica=Arg(int), tail=Arg(int, default=DEFAULT_TAIL))
        registry.add("signal", self.signal, app=Arg(str, required=True), replica=Arg(int), signal=Arg(str, required=True))

    def status_fields(self):
        return {
            "generation": self._supervisor.generation,
            "converged": self._supervisor.converged,
            "cgroup": self._cgroup_info,
            "apps": self._supervisor.status(),
        }

    def apply(self, args):
        if self._supervisor.stopping:
            raise ProtocolError(protocol.NOT_READY, "shutting down: apply refused")
        try:
            desired = specs.parse_apply(args["generation"], args["apps"])
        except specs.SpecError as exc:
            raise ProtocolError(protocol.BAD_REQUEST, str(exc)) from None
        current = self._supervisor.generation
        if current is not None and desired.generation < current and not args["force"]:
            raise ProtocolError(protocol.BAD_REQUEST, "generation: %d is older than the applied generation %d (force: true overrides)"
                                % (desired.generation, current))
        try:
            changes = self._supervisor.apply(desired)
        except OSError as exc:  # persisting failed: nothing was changed
            raise ProtocolError(protocol.INTERNAL, "saving the spec failed: %s" % exc) from None
        return {"accepted": True, "generation": desired.generation, "changes": changes}

    def logs(self, args):
        self._app(args["app"])
        tail = args["tail"]
        if not 0 <= tail <= MAX_TAIL:
            raise ProtocolError(protocol.BAD_REQUEST, "tail: must be from 0 to %d" % MAX_TAIL)
        lines = self._supervisor.logs(args["app"], args["replica"], tail)
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
        signalled = self._supervisor.signal(args["app"], args["replica"], signum)
        return {"signal": signum.name, "signalled": signalled}

    def _app(self, name):
        app = self._supervisor.apps.get(name)
        if app is None:
            raise ProtocolError(protocol.BAD_REQUEST, "app: no app named %r" % name)
        return app
