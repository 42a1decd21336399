"""Facts about this guest and this process, for hello and status."""

import os


def uptime_s():
    """Seconds since the (guest) kernel booted."""
    with open("/proc/uptime", encoding="ascii") as uptime:
        return round(float(uptime.read().split()[0]), 3)


def rss_kib():
    """Resident set size of this process in KiB."""
    with open("/proc/self/status", encoding="ascii", errors="replace") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def boot_id():
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot:
        return boot.read().strip()


def hostname():
    return os.uname().nodename


def kernel_release():
    return os.uname().release


def _sys(path):
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def guest_facts(sys_root="/sys"):
    """What the VM looks like from inside (read-only): CPUs, memory, block devices with their
    serials (how data disks are recognised without udev) and network interfaces."""
    block = []
    for name in sorted(os.listdir(os.path.join(sys_root, "block"))) if os.path.isdir(os.path.join(sys_root, "block")) else ():
        if name.startswith(("loop", "ram")):
            continue
        sectors = _sys(os.path.join(sys_root, "block", name, "size"))
        block.append({"name": name, "serial": _sys(os.path.join(sys_root, "block", name, "serial")),
                      "size_bytes": int(sectors) * 512 if sectors and sectors.isdigit() else None})
    net = []
    for name in sorted(os.listdir(os.path.join(sys_root, "class/net"))) if os.path.isdir(os.path.join(sys_root, "class/net")) else ():
        base = os.path.join(sys_root, "class/net", name)
        net.append({"name": name, "mac": _sys(os.path.join(base, "address")), "operstate": _sys(os.path.join(base, "operstate"))})
    memory_kib = None
    meminfo = _sys("/proc/meminfo") or ""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    return {"cpus": os.cpu_count(), "memory_kib": memory_kib, "block_devices": block, "net_devices": net}
