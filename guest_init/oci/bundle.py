"""config.json of a replica's OCI runtime bundle (runtime-spec 1.0).

Namespaces: pid, ipc, uts, mount and cgroup. Not network: a project VM's containers share
the VM's network namespace, like the containers of a pod (docs/guest_init.md). The uts
namespace carries the VM's hostname, so an app cannot change the VM's.
Capabilities: Docker's default set without CAP_MKNOD (there is no device cgroup rule:
crun's eBPF device filter needs CAP_SYS_RESOURCE, which test hosts may lack; without
mknod the container cannot make device nodes beyond the few crun puts in its /dev).
"""

import json
import os

CAPABILITIES = (
    "CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
    "CAP_SETUID", "CAP_SYS_CHROOT",
)
NAMESPACES = ("pid", "ipc", "uts", "mount", "cgroup")
CPU_PERIOD_US = 100000
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
_NOSUID_NOEXEC_NODEV = ["nosuid", "noexec", "nodev"]
MOUNTS = (
    {"destination": "/proc", "type": "proc", "source": "proc", "options": list(_NOSUID_NOEXEC_NODEV)},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": _NOSUID_NOEXEC_NODEV + ["mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": list(_NOSUID_NOEXEC_NODEV)},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": _NOSUID_NOEXEC_NODEV + ["ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": _NOSUID_NOEXEC_NODEV + ["relatime", "ro"]},
)


def resources(limits):
    """linux.resources for a base.Limits (None fields are left unlimited)."""
    spec = {}
    if limits.memory_bytes is not None:  # swap = limit: no swap on top (memory.swap.max 0)
        spec["memory"] = {"limit": limits.memory_bytes, "swap": limits.memory_bytes}
    if limits.pids is not None:
        spec["pids"] = {"limit": limits.pids}
    if limits.cpu_millis is not None:
        spec["cpu"] = {"quota": limits.cpu_millis * CPU_PERIOD_US // 1000, "period": CPU_PERIOD_US}
    return spec


def runtime_config(*, argv, env, cwd, user, hostname, cgroups_path, limits):
    """The config.json document; `user` is a process.User, `cgroups_path` None = no cgroup."""
    caps = list(CAPABILITIES)
    linux = {
        "namespaces": [{"type": kind} for kind in NAMESPACES],
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
    }
    if cgroups_path is not None:
        linux["cgroupsPath"] = cgroups_path
        linux["resources"] = resources(limits)
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids)},
            "args": list(argv),
            "env": list(env),
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": hostname,
        "mounts": [dict(mount, options=list(mount["options"])) for mount in MOUNTS],
        "linux": linux,
    }


def write_config(bundle_dir, config):
    """Write config.json (mode 0600: env may hold secrets)."""
    path = os.path.join(bundle_dir, "config.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with open(fd, "w", encoding="utf-8") as handle:
        json.dump(config, handle)
