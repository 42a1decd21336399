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
