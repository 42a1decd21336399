"""The crun runtime: each replica is an OCI container made from an image layout.

start: resolve the image (images_dir/<image>, every blob verified), unpack it once per
manifest digest (oci/store.py), mount a fresh per-replica overlay on it (oci/overlay.py),
write config.json (oci/bundle.py), then `crun create` + `crun start`. The container's
init is re-parented to guest_init (PID 1 or a child subreaper) when `crun create` exits,
so the pid we return is the container's own init and the reaper sees its exact wait
status (exit code or signal). `crun run` in the foreground would only report 128+N for a
signal, and killing that crun leaves the container running; `crun run --detach` reaps an
init that exits before crun does, and the status is lost.

crun's own short commands (create, start, kill, delete) are waited for synchronously by
pid, bounded by CRUN_TIMEOUT_S: the loop is blocked meanwhile, so the reaper's
waitpid(-1) cannot race us, and no other process's status is touched.
"""

import json
import os
import select
import shutil
import signal as signals
import time

from guest_init import log
from guest_init.oci import bundle as bundles
from guest_init.oci import overlay, process
from guest_init.oci.layout import ImageLayout, LayoutError
from guest_init.oci.store import RootfsStore
from guest_init.runtimes.base import Runtime

CRUN_PATHS = ("/usr/bin/crun", "/usr/local/bin/crun")
CRUN_TIMEOUT_S = 30.0
CGROUP2_MOUNT = "/sys/fs/cgroup"
SPAWN_DEFAULT_SIGNALS = (signals.SIGPIPE, signals.SIGINT, signals.SIGTERM, signals.SIGCHLD,
                         signals.SIGIO, signals.SIGXFSZ)


class CrunError(OSError):
    """A replica could not be started or a crun command failed; the message says why.

    An OSError, so the supervisor records it as a failed start like any other."""


def image_name_ok(name):
    return bool(name) and "/" not in name and name not in (".", "..") and not name.startswith(".")


class CrunRuntime(Runtime):
    name = "crun"

    def __init__(self, *, cgroup_root, state_dir, images_dir):
        super().__init__(cgroup_root=cgroup_root, state_dir=state_dir, images_dir=images_dir)
        if cgroup_root is not None and os.path.commonpath([cgroup_root, CGROUP2_MOUNT]) != CGROUP2_MOUNT:
            raise ValueError("crun manages cgroups under %s, not %s" % (CGROUP2_MOUNT, cgroup_root))
        self.crun = next((path for path in CRUN_PATHS if os.access(path, os.X_OK)), CRUN_PATHS[0])
        self.crun_root = os.path.join(state_dir, "crun")
        self.bundles_dir = os.path.join(state_dir, "bundles")
        self.store = RootfsStore(state_dir)
        self._bundles_ready = False

    # -- Runtime interface --------------------------------------------------
    def start(self, launch):
        began = time.monotonic()
        layout, image = self._image(launch.image)
        try:
            lower = self.store.ensure(layout, image)
        except (LayoutError, ValueError, OSError) as exc:
            raise CrunError("image %s: cannot unpack: %s" % (launch.image, exc)) from None
        unpacked = time.monotonic()
        bundle_dir = self._fresh_bundle(launch)
        try:
            overlay.mount(lower, bundle_dir)
            bundles.write_config(bundle_dir, self._config(launch, image, lower))
            prepared = time.monotonic()
            pid = self._create_and_start(launch, bundle_dir)
            log.debug("%s: image %.0f ms, bundle + overlay %.0f ms, crun create + start %.0f ms" % (
                launch.container_id, (unpacked - began) * 1000, (prepared - unpacked) * 1000,
                (time.monotonic() - prepared) * 1000))
            return pid
        except CrunError:
            self.cleanup(launch)
            raise
        except (ValueError, OSError) as exc:
            self.cleanup(launch)
            raise CrunError("%s: %s" % (launch.container_id, exc)) from None

    def signal(self, launch, pid, signum):
        """`crun kill --all`: every process in the replica's cgroup (none left: nothing to do).
        Without cgroups only the container's init can be reached; it is the init of the
        container's pid namespace, so SIGKILL still ends every process in it."""
        if self.cgroup_root is None:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
            return
        if not _cgroup_has_processes(self.cgroup_dir(launch)):
            return
        status, output = self._crun(["kill", "--all", launch.container_id, str(int(signum))])
        if status != 0:
            log.info("crun kill %s: %s" % (launch.container_id, output or "status %d" % status))

    def cleanup(self, launch):
        if os.path.isdir(os.path.join(self.crun_root, launch.container_id)):
            status, output = self._crun(["delete", "--force", launch.container_id])
            if status != 0:
                log.info("crun delete %s: %s" % (launch.container_id, output or "status %d" % status))
        bundle_dir = self._bundle_dir(launch)
        overlay.unmount(bundle_dir)
        shutil.rmtree(bundle_dir, ignore_errors=True)
        if self.cgroup_root is not None:
            top = launch.cgroup.strip("/").split("/")[0]  # goship/: the supervisor's
            _remove_empty_dirs(self.cgroup_dir(launch), stop_at=os.path.join(self.cgroup_root, top))

    def exec_argv(self, launch, argv):
        """`crun exec` with the replica's user and working directory (env comes from its config)."""
        config = self._read_config(launch)
        user = config.get("user", {})
        extra = ["--user", "%d:%d" % (user.get("uid", 0), user.get("gid", 0)), "--cwd", config.get("cwd", "/")]
        return [self.crun, *self._global_options(), "exec", *extra, launch.container_id, *argv]

    def cgroup_dir(self, launch):
        """The replica's cgroup; empty without cgroups (crun runs with --cgroup-manager=disabled)."""
        return "" if self.cgroup_root is None else os.path.join(self.cgroup_root, launch.cgroup)

    # -- image and process ----------------------------------------------------
    def resolve_argv(self, image, command, args):
        """argv for an app's command/args (None = unset) against the image's Entrypoint/Cmd."""
        _layout, resolved = self._image(image)
        try:
            return tuple(process.resolve_argv(resolved.config, command, args))
        except process.ProcessError as exc:
            raise CrunError("image %s: %s" % (image, exc)) from None

    def _image(self, name):
        if not image_name_ok(name):
            raise CrunError("image %r: not an image layout name" % (name,))
        layout = ImageLayout(os.path.join(self.images_dir, name))
        try:
            return layout, layout.resolve()
        except LayoutError as exc:
            raise CrunError("image %s: %s" % (name, exc)) from None

    def _config(self, launch, image, lower):
        """config.json for the replica (launch.argv comes from resolve_argv)."""
        user = process.resolve_user(lower, image.config, launch.user)
        return bundles.runtime_config(
            argv=launch.argv,
            env=process.merge_env(image.config, launch.env, user.home),
            cwd=process.workdir(image.config, launch.workdir),
            user=user,
            hostname=os.uname().nodename,
            cgroups_path=self._cgroups_path(launch),
            limits=launch.limits,
        )

    def _cgroups_path(self, launch):
        """cgroupsPath as crun's cgroupfs manager wants it: absolute within the cgroup2 mount."""
        if self.cgroup_root is None:
            return None
        return "/" + os.path.relpath(self.cgroup_dir(launch), CGROUP2_MOUNT)

    def _read_config(self, launch):
        try:
            with open(os.path.join(self._bundle_dir(launch), "config.json"), encoding="utf-8") as handle:
                return json.load(handle).get("process", {})
        except (OSError, ValueError):
            return {}

    # -- bundle and crun ------------------------------------------------------
    def _bundle_dir(self, launch):
        return os.path.join(self.bundles_dir, launch.container_id)

    def _fresh_bundle(self, launch):
        """An empty bundle directory; leftovers of an earlier run (crash, reboot) are removed."""
        if not self._bundles_ready:
            overlay.ensure_upper_capable(self.bundles_dir)
            self._bundles_ready = True
        self.cleanup(launch)
        bundle_dir = self._bundle_dir(launch)
        os.makedirs(bundle_dir, mode=0o700)
        return bundle_dir

    def _global_options(self):
        options = ["--root", self.crun_root]
        if self.cgroup_root is None:
            options.append("--cgroup-manager=disabled")
        return options

    def _create_and_start(self, launch, bundle_dir):
        """`crun create` leaves the container's init waiting for `crun start`, re-parented to
        us: unlike `run --detach`, crun never gets to reap an init that exits at once."""
        pid_file = os.path.join(bundle_dir, "container.pid")
        log_file = os.path.join(bundle_dir, "crun.log")
        create = [self.crun, *self._global_options(), "--log=file:" + log_file,
                  "create", "--bundle", bundle_dir, "--pid-file", pid_file, launch.container_id]
        status = _wait_bounded(_spawn(create, launch.stdout_fd, launch.stderr_fd), "crun create")
        if status != 0:
            raise CrunError("crun create %s: %s" % (launch.container_id, _last_line(log_file) or "status %d" % status))
        with open(pid_file, encoding="ascii") as handle:
            pid = int(handle.read().strip())
        status, output = self._crun(["start", launch.container_id])
        if status != 0:
            raise CrunError("crun start %s: %s" % (launch.container_id, output or "status %d" % status))
        return pid

    def _crun(self, args):
        """Run a short crun command; return (exit status, its stderr's last line)."""
        argv = [self.crun, *self._global_options(), *args]
        read_end, write_end = os.pipe()
        try:
            pid = _spawn(argv, None, write_end)
        finally:
            os.close(write_end)
        with open(read_end, "rb") as output:
            status = _wait_bounded(pid, argv[0])
            os.set_blocking(read_end, False)
            text = (output.read(65536) or b"").decode("utf-8", "replace").strip()
        return status, text.splitlines()[-1] if text else ""


def _spawn(argv, stdout_fd, stderr_fd):
    """posix_spawn with default signal dispositions; stdin /dev/null, output as given."""
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
    for target, source in ((1, stdout_fd), (2, stderr_fd)):
        if source is None:
            actions.append((os.POSIX_SPAWN_OPEN, target, os.devnull, os.O_WRONLY, 0))
        else:
            actions.append((os.POSIX_SPAWN_DUP2, source, target))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return os.posix_spawn(argv[0], argv, env, file_actions=actions, setsigdef=SPAWN_DEFAULT_SIGNALS, setsigmask=())


def _wait_bounded(pid, what):
    """Exit status of our child pid, killing it after CRUN_TIMEOUT_S."""
    pidfd = os.pidfd_open(pid)
    try:
        if not select.select([pidfd], [], [], CRUN_TIMEOUT_S)[0]:
            log.info("%s (pid %d) did not finish in %.0f s: killing it" % (what, pid, CRUN_TIMEOUT_S))
            os.kill(pid, signals.SIGKILL)
        _pid, status = os.waitpid(pid, 0)
    finally:
        os.close(pidfd)
    return os.waitstatus_to_exitcode(status)


def _cgroup_has_processes(directory):
    try:
        with open(os.path.join(directory, "cgroup.procs"), encoding="ascii") as procs:
            return bool(procs.read().strip())
    except OSError:
        return False


def _last_line(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _remove_empty_dirs(path, stop_at):
    """rmdir path and its parents up to (not including) stop_at while they are empty."""
    stop_at = os.path.normpath(stop_at)
    path = os.path.normpath(path)
    while path.startswith(stop_at + os.sep):
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError:
            return
        path = os.path.dirname(path)
