"""The `process` runtime: a replica is a process tree in its own process group and cgroup.

The image is a directory used as the root (chroot) or "/" for the guest's own root.

Starting uses os.fork() + execve rather than posix_spawn: posix_spawn (3.11) has no hook to
enter a cgroup, and writing the pid to cgroup.procs from the parent after the spawn races
with the child (whatever it forks before the move would escape the limits). guest_init is
single-threaded, so the forked child may run a few lines of Python: it blocks signals it
inherited handlers for, joins its cgroup, makes its own process group, chroots, drops
privileges, wires stdio and execs. Failures before exec come back over a CLOEXEC pipe, as
in subprocess.
"""

import os
import signal

from guest_init.runtimes.base import Runtime
from guest_init.supervisor import cgroups

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# signals guest_init handles or ignores; the child resets them before exec
_RESET_SIGNALS = (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGIO, signal.SIGXFSZ, signal.SIGHUP)
_ALL_SIGNALS = signal.valid_signals()


class ProcessRuntime(Runtime):
    name = "process"

    def start(self, launch):
        leaf = None
        if self.cgroup_root is not None:
            leaf = cgroups.create_leaf(self.cgroup_root, launch.cgroup, launch.limits)
        env = dict(launch.env)
        env.setdefault("PATH", DEFAULT_PATH)
        error_r, error_w = os.pipe()
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _ALL_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                _child(launch, leaf, env, error_w)  # never returns
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            os.close(error_w)
        try:
            failure = _read_all(error_r)
        finally:
            os.close(error_r)
        if failure:
            raise OSError(failure.decode("utf-8", "replace"))
        return pid

    def signal(self, launch, pid, signum):
        if signum == signal.SIGKILL and self.cgroup_root is not None:
            if cgroups.kill_all(self.cgroup_dir(launch)):
                return
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass

    def cleanup(self, launch):
        if self.cgroup_root is not None:
            if not cgroups.remove_leaf(self.cgroup_root, launch.cgroup):
                raise OSError("cgroup %s still has processes" % launch.cgroup)

    def exec_argv(self, launch, argv):
        """Checks run in the replica's root, as root (the guest has busybox's chroot only,
        which cannot change the user)."""
        if launch.image == "/":
            return list(argv)
        chroot = ["/usr/sbin/chroot"] if os.path.exists("/usr/sbin/chroot") else ["busybox", "chroot"]
        return [*chroot, launch.image, *argv]

    def cgroup_dir(self, launch):
        return "" if self.cgroup_root is None else os.path.join(self.cgroup_root, launch.cgroup)


def _read_all(fd):
    data = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return data
        data += chunk


def _child(launch, leaf, env, error_w):
    """In the forked child: set everything up and exec; report a failure and _exit otherwise."""
    step = "setup"
    try:
        signal.set_wakeup_fd(-1)  # never wake guest_init's loop from here
        for signum in _RESET_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        step = "joining cgroup"
        if leaf is not None:
            cgroups.write_text(os.path.join(leaf, "cgroup.procs"), "0")
        os.setpgid(0, 0)
        step = "stdio"
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(launch.stdout_fd, 1)
        os.dup2(launch.stderr_fd, 2)
        step = "chroot"
        if launch.image != "/":
            os.chroot(launch.image)
        step = "workdir"
        os.chdir(launch.workdir or "/")
        step = "user"
        if launch.user:
            uid, _sep, gid = launch.user.partition(":")
            os.setgroups([])
            os.setgid(int(gid or uid))
            os.setuid(int(uid))
        step = "exec %s" % launch.argv[0]
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        os.execvpe(launch.argv[0], list(launch.argv), env)
    except BaseException as exc:  # pylint: disable=broad-except
        message = "%s: %s" % (step, exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)
        try:
            os.write(error_w, message.encode("utf-8", "replace"))
        finally:
            os._exit(127)
