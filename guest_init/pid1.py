"""What only PID 1 does: mount the API filesystems, set the hostname, load modules, power off."""

import os

from guest_init import libc, log

_NOSUID_NODEV_NOEXEC = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC

# (target, fstype, flags, data), in mount order; stage0 may already have mounted some
API_MOUNTS = (
    ("/proc", "proc", _NOSUID_NODEV_NOEXEC, None),
    ("/sys", "sysfs", _NOSUID_NODEV_NOEXEC, None),
    ("/dev", "devtmpfs", libc.MS_NOSUID, "mode=0755"),
    ("/dev/pts", "devpts", libc.MS_NOSUID | libc.MS_NOEXEC, "mode=0620,ptmxmode=0666"),
    ("/run", "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "mode=0755"),
    ("/sys/fs/cgroup", "cgroup2", _NOSUID_NODEV_NOEXEC, None),
)

# virtio_console carries our channel; button + evdev turn the ACPI power button into an
# input device we can read (see powerbutton.py); ext4 is for the state disk (supervisor/disks.py);
# modprobe skips built-in or loaded ones.
MODULES = ("virtio_console", "virtio_net", "virtio_rng", "vsock", "vmw_vsock_virtio_transport", "button", "evdev", "ext4")
# sev-guest gives /dev/sev-guest (the SNP attestation report, guest_init/measured.py); loaded
# only when the kernel registered its platform device, i.e. in an SEV-SNP guest.
SNP_GUEST_MODULE = "sev-guest"
SNP_GUEST_PLATFORM_DEVICE = "/sys/bus/platform/devices/sev-guest"
MODPROBE_PATHS = ("/usr/sbin/modprobe", "/sbin/modprobe")
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def mount_points(mountinfo_path="/proc/self/mountinfo"):
    """Mount points from mountinfo, in mount order ([] if /proc is not mounted)."""
    try:
        with open(mountinfo_path, "rb") as mountinfo:
            lines = mountinfo.read().decode("utf-8", "surrogateescape").splitlines()
    except FileNotFoundError:
        return []
    return [_unescape(line.split(" ")[4]) for line in lines]


def _unescape(field):
    """mountinfo writes space, tab, newline and backslash as \\ooo octal escapes."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_api_filesystems():
    """Mount whatever of API_MOUNTS is not mounted yet; log and go on on failure."""
    for target, fstype, flags, data in API_MOUNTS:
        if target in mount_points():
            log.debug("%s already mounted" % target)
            continue
        try:
            os.makedirs(target, mode=0o755, exist_ok=True)
            libc.mount(fstype, target, fstype, flags, data)
            log.info("mounted %s on %s" % (fstype, target))
        except OSError as exc:
            log.info("mounting %s on %s failed: %s" % (fstype, target, exc))


def ensure_console_fds():
    """The kernel gives init /dev/console as fds 0-2 only if it could open it: make sure."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                console = os.open("/dev/console", os.O_RDWR | os.O_NOCTTY)
            except OSError:
                return
            if console != fd:
                os.dup2(console, fd)
                os.close(console)


def kernel_cmdline(path="/proc/cmdline"):
    """goship.* keys of the kernel command line, as a dict of strings."""
    try:
        with open(path, encoding="utf-8", errors="replace") as cmdline:
            words = cmdline.read().split()
    except OSError:
        return {}
    options = {}
    for word in words:
        key, value = word.split("=", 1) if "=" in word else (word, "")
        if key.startswith("goship."):
            options[key] = value
    return options


def set_hostname(name):
    if not name or len(name) > 64 or not all((c.isascii() and c.isalnum()) or c in "-." for c in name):
        log.info("ignoring invalid hostname %r" % name)
        return
    try:
        with open("/proc/sys/kernel/hostname", "w", encoding="ascii") as hostname:
            hostname.write(name)
        log.info("hostname %s" % name)
    except OSError as exc:
        log.info("setting hostname failed: %s" % exc)


def loopback_up():
    """Bring `lo` up (the kernel then gives it 127.0.0.1 and ::1): replicas share the VM's
    network namespace and reach each other, and health checks reach them, on loopback."""
    import fcntl
    import socket
    import struct
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("16sH14x", b"lo", 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock, siocgifflags, request))[1]
            if not flags & iff_up:
                fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))
                log.info("loopback up")
    except OSError as exc:
        log.info("bringing up lo failed: %s" % exc)


def disable_ctrl_alt_del():
    """Make Ctrl-Alt-Del a SIGINT to us (orderly shutdown) instead of an immediate reboot."""
    try:
        libc.reboot(libc.RB_DISABLE_CAD)
    except OSError as exc:
        log.info("disabling Ctrl-Alt-Del failed: %s" % exc)


def spawn_modprobe():
    """Start `modprobe -a MODULES`; return its pid (the caller's reaper waits), or None."""
    for path in MODPROBE_PATHS:
        if os.access(path, os.X_OK):
            break
    else:
        log.info("no modprobe found: not loading %s" % " ".join(MODULES))
        return None
    extra = (SNP_GUEST_MODULE,) if os.path.exists(SNP_GUEST_PLATFORM_DEVICE) else ()
    return spawn([path, "-a", *MODULES, *extra])


def spawn(argv):
    """posix_spawn argv with default signal dispositions; output goes to the console."""
    import signal
    defaults = (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGIO, signal.SIGXFSZ)
    env = {"PATH": SEARCH_PATH, "HOME": "/"}
    return os.posix_spawn(argv[0], argv, env, setsigdef=defaults, setsigmask=())


def power_off(reboot=False):
    """Last step of a shutdown: sync, unmount or remount read-only, then reboot(2). Never returns."""
    os.sync()
    for target in reversed(mount_points()):
        if target == "/":
            continue
        try:
            libc.umount(target)
        except OSError as exc:
            log.debug("umount %s: %s" % (target, exc))
    try:
        libc.mount(None, "/", None, libc.MS_REMOUNT | libc.MS_RDONLY)
    except OSError as exc:
        log.info("remounting / read-only failed: %s" % exc)
    os.sync()
    log.info("rebooting" if reboot else "powering off")
    while True:
        try:
            libc.reboot(libc.RB_AUTOBOOT if reboot else libc.RB_POWER_OFF)
        except OSError as exc:
            log.info("reboot(2) failed: %s; retrying in 60 s" % exc)
        import time
        time.sleep(60)
