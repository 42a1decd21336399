"""cgroup v2: the goship/ sub-tree, per-replica leaf cgroups with limits, and their stats.

Layout under the root (the cgroup2 mount in the VM, or a delegated directory given with
--cgroup-root): `init.scope/` holds guest_init itself when it is PID 1 (the "no internal
processes" rule forbids processes in a non-root cgroup that delegates controllers, and keeps
our own usage apart), `goship/<app>/<index>/` holds one replica. The cpu, memory and pids
controllers are enabled on the way down as far as the root offers them.
"""

import errno
import os

from guest_init import log

CONTROLLERS = ("cpu", "memory", "pids")
SUBTREE = "goship"
CPU_PERIOD_US = 100000


def available(root):
    """True when root is a cgroup v2 directory we can create cgroups in."""
    return os.path.exists(os.path.join(root, "cgroup.controllers")) and os.access(root, os.W_OK)


def read_text(path):
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except OSError:
        return None


def write_text(path, text):
    with open(path, "w", encoding="ascii") as handle:
        handle.write(text)


def controllers(directory):
    """Controllers this cgroup may hand to its children (cgroup.controllers)."""
    return (read_text(os.path.join(directory, "cgroup.controllers")) or "").split()


def delegate(directory):
    """Enable our controllers for the children of directory, as far as it offers them."""
    wanted = [name for name in CONTROLLERS if name in controllers(directory)]
    if wanted:
        write_text(os.path.join(directory, "cgroup.subtree_control"), " ".join("+" + name for name in wanted))
    return wanted


def prepare_tree(root, move_self):
    """Set up init.scope (with move_self) and goship/; return the controllers the leaves get."""
    if move_self:
        scope = os.path.join(root, "init.scope")
        os.makedirs(scope, exist_ok=True)
        write_text(os.path.join(scope, "cgroup.procs"), "0")
    delegate(root)
    subtree = os.path.join(root, SUBTREE)
    os.makedirs(subtree, exist_ok=True)
    enabled = delegate(subtree)
    missing = [name for name in CONTROLLERS if name not in enabled]
    if missing:
        log.info("cgroup %s: controllers %s unavailable: those limits are not enforced" % (subtree, ",".join(missing)))
    return enabled


def create_leaf(root, relative, limits):
    """Create root/relative (its parents delegating) and write the limits; return its path."""
    parent = os.path.dirname(relative)
    directory = root
    for part in parent.split("/"):
        directory = os.path.join(directory, part)
        if not os.path.isdir(directory):
            os.mkdir(directory)
            delegate(directory)
    leaf = os.path.join(root, relative)
    os.makedirs(leaf, exist_ok=True)
    _write_limits(leaf, limits)
    return leaf


def _write_limits(leaf, limits):
    values = {
        "cpu.max": None if limits.cpu_millis is None else "%d %d" % (limits.cpu_millis * CPU_PERIOD_US // 1000, CPU_PERIOD_US),
        "memory.max": None if limits.memory_bytes is None else str(limits.memory_bytes),
        # without this a limited replica would swap instead of being OOM-killed
        "memory.swap.max": None if limits.memory_bytes is None else "0",
        "pids.max": None if limits.pids is None else str(limits.pids),
    }
    for name, value in values.items():
        path = os.path.join(leaf, name)
        if value is not None and os.path.exists(path):
            write_text(path, value)


def kill_all(directory):
    """SIGKILL every process in the cgroup (cgroup.kill); False when the kernel lacks it."""
    try:
        write_text(os.path.join(directory, "cgroup.kill"), "1")
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno == errno.ENODEV:  # cgroup already removed
            return True
        raise


def populated(directory):
    events = read_text(os.path.join(directory, "cgroup.events")) or ""
    return "populated 1" in events


def remove_leaf(root, relative):
    """rmdir the leaf, then its now empty parents below goship/; True when the leaf is gone."""
    leaf = os.path.join(root, relative)
    try:
        os.rmdir(leaf)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
            return False
        raise
    parent = os.path.dirname(relative)
    while parent and parent != SUBTREE:
        try:
            os.rmdir(os.path.join(root, parent))
        except OSError:
            break
        parent = os.path.dirname(parent)
    return True


def stats(directory):
    """{cpu_usec, memory_bytes, oom_kills} of a cgroup; None where unavailable."""
    cpu = _key_value(read_text(os.path.join(directory, "cpu.stat")), "usage_usec")
    memory = read_text(os.path.join(directory, "memory.current"))
    oom = _key_value(read_text(os.path.join(directory, "memory.events")), "oom_kill")
    return {
        "cpu_usec": cpu,
        "memory_bytes": int(memory) if memory and memory.strip().isdigit() else None,
        "oom_kills": oom,
    }


def _key_value(text, key):
    for line in (text or "").splitlines():
        name, _sep, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return None
