"""Wires the parts together: loop, reaper, op registry, session, channel, shutdown.

Two modes. As PID 1 (in the VM): set the machine up, serve the virtio port, power off at
the end. As an ordinary process (tests, or a service under another init): a child subreaper
serving a Unix socket (--socket) or the virtio port, that touches nothing machine-wide.
"""

import os
import signal

from guest_init import libc, log
from guest_init.core_ops import CoreOps
from guest_init.loop import EventLoop
from guest_init.ops import OpRegistry
from guest_init.reaper import Reaper, describe_status
from guest_init.session import Session
from guest_init.shutdown import Shutdown

MODPROBE_TIMEOUT_S = 60.0


class GuestInit:
    def __init__(self, is_pid1, socket_path=None, paths=None):
        """paths: supervisor Paths for an ordinary process (PID 1 uses the VM's fixed ones)."""
        self.is_pid1 = is_pid1
        self.exit_code = 0
        self.loop = EventLoop()
        self.reaper = Reaper(self.loop)
        self.ops = OpRegistry()
        self.session = Session(self.ops)
        self.channel = None
        self._socket_path = socket_path
        self.shutdown = Shutdown(
            self.loop, self.reaper,
            pending_output=lambda: self.channel.pending_output() if self.channel else 0,
            finish=self._finish, kill_everyone=is_pid1)
        self._paths = paths
        self._cmdline = {}
        self.apps = None  # the SupervisorService, made at boot (PID 1 needs the kernel command line)
        self._core_ops = CoreOps(self.ops, self.shutdown.start, self._status_fields, self._hello_fields)
        self.ops.gate = self._gate
        self.loop.add_signal(signal.SIGTERM, lambda signum: self.shutdown.start(False, "SIGTERM"))
        self.loop.add_signal(signal.SIGINT, lambda signum: self.shutdown.start(False, "SIGINT"))

    def boot(self):
        """Everything before serving; the channel opens once the modules are in."""
        if self.is_pid1:
            self._boot_machine()
        else:
            libc.set_child_subreaper()
            self._start_apps(self._paths)
            self._open_channel()

    def _start_apps(self, paths):
        from guest_init.supervisor.service import Paths, SupervisorService
        self.apps = SupervisorService(self.loop, self.reaper, self.ops, paths or Paths())
        self.shutdown.stop_apps = self.apps.stop_all
        try:
            self.apps.start(self.is_pid1)
        except Exception:  # pylint: disable=broad-except
            log.exception("starting the supervisor failed")

    def _status_fields(self):
        return {} if self.apps is None else self.apps.status_fields()

    def _hello_fields(self):
        return {} if self.apps is None else self.apps.guard.hello_fields()

    def _gate(self, op, args):
        """The boot policy (guest_init/measured.py) decides before any op runs."""
        if self.apps is not None:
            self.apps.guard.check(op, args)

    def _boot_machine(self):
        from guest_init import IMPORTED_AT, __version__, pid1
        log.info("guest_init %s starting as PID 1 (interpreter ready at %.3f s)" % (__version__, IMPORTED_AT))
        pid1.mount_api_filesystems()
        pid1.ensure_console_fds()
        options = pid1.kernel_cmdline()
        log.set_debug(log.debug_enabled() or options.get("goship.debug") == "1")
        if "goship.hostname" in options:
            pid1.set_hostname(options["goship.hostname"])
        self._cmdline = options
        pid1.loopback_up()
        os.environ["PATH"] = pid1.SEARCH_PATH
        pid1.disable_ctrl_alt_del()
        self.reaper.reap()  # zombies inherited from stage0, if any
        try:
            pid = pid1.spawn_modprobe()
        except OSError as exc:
            log.info("starting modprobe failed: %s" % exc)
            pid = None
        if pid is None:
            self._after_modules()
            return
        timeout = self.loop.call_later(MODPROBE_TIMEOUT_S, self._modprobe_timed_out)

        def modprobe_done(_pid, status):
            timeout.cancel()
            log.info("modprobe finished (%s)" % describe_status(status))
            self._after_modules()
        self.reaper.watch(pid, modprobe_done)

    def _modprobe_timed_out(self):
        log.info("modprobe still running after %.0f s: going on without it" % MODPROBE_TIMEOUT_S)
        self._after_modules()

    def _after_modules(self):
        if self.channel is not None:
            return
        from guest_init.supervisor.service import pid1_paths
        self._start_apps(pid1_paths(self._cmdline))
        from guest_init.powerbutton import PowerButtons
        PowerButtons(self.loop, lambda: self.shutdown.start(False, "ACPI power button")).start()
        self._open_channel()

    def _open_channel(self):
        from guest_init import channel
        if self._socket_path is not None:
            self.channel = channel.SocketServer(self.loop, self.session, self._socket_path)
        else:
            self.channel = channel.VirtioPort(self.loop, self.session)
            self.channel.start()
        self.session.transport = self.channel

    def _finish(self, reboot):
        if self.is_pid1:
            from guest_init import pid1
            pid1.power_off(reboot)
        log.info("exiting")
        if self._socket_path is not None:
            self.channel.close()
        self.loop.stop()
