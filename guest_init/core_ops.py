"""The ops every guest_init has: hello, sync, ping, status, shutdown."""

import os

from guest_init import PROTOCOL_VERSION, __version__, protocol, sysinfo
from guest_init.ops import Arg
from guest_init.protocol import ProtocolError


class CoreOps:
    def __init__(self, registry, request_shutdown, status_fields=None, hello_fields=None):
        """request_shutdown(reboot: bool, reason: str) starts the shutdown after the reply is sent;
        status_fields() -> dict adds to `status` (the supervisor's generation and apps);
        hello_fields() -> dict adds to `hello` (the boot spec's measurement and policy)."""
        self._registry = registry
        self._request_shutdown = request_shutdown
        self._status_fields = status_fields
        self._hello_fields = hello_fields
        registry.add("hello", self.hello, protocol_version=Arg(int, required=True))
        registry.add("sync", self.sync)
        registry.add("ping", self.ping)
        registry.add("status", self.status)
        registry.add("shutdown", self.shutdown, reboot=Arg(bool, default=False))

    def hello(self, args):
        if args["protocol_version"] != PROTOCOL_VERSION:
            raise ProtocolError(
                protocol.UNSUPPORTED_VERSION,
                "guest_init speaks protocol version %d, not %d" % (PROTOCOL_VERSION, args["protocol_version"]))
        result = {
            "protocol_version": PROTOCOL_VERSION,
            "guest_init_version": __version__,
            "ops": self._registry.names(),
            "hostname": sysinfo.hostname(),
            "boot_id": sysinfo.boot_id(),
        }
        if self._hello_fields is not None:
            result.update(self._hello_fields())
        return result

    @staticmethod
    def sync(args):
        return {}

    @staticmethod
    def ping(args):
        return {}

    def status(self, args):
        status = {
            "uptime_s": sysinfo.uptime_s(),
            "rss_kib": sysinfo.rss_kib(),
            "kernel": sysinfo.kernel_release(),
            "protocol_version": PROTOCOL_VERSION,
            "hostname": sysinfo.hostname(),
            "pid": os.getpid(),
            "generation": None,
            "apps": {},
            "guest": sysinfo.guest_facts(),
        }
        if self._status_fields is not None:
            status.update(self._status_fields())
        return status

    def shutdown(self, args):
        self._request_shutdown(args["reboot"], "shutdown op")
        return {"accepted": True}
