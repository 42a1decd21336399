"""ACPI power button -> orderly shutdown, without acpid.

`virsh shutdown` (ACPI mode) presses the virtual power button. With the kernel's `button`
driver it becomes an input device named "Power Button"; with `evdev` that device appears as
/dev/input/eventN, which we read for a KEY_POWER press.
"""

import os
import struct

from guest_init import log

INPUT_CLASS = "/sys/class/input"
EVENT = struct.Struct("llHHi")  # struct input_event: timeval, type, code, value
EV_KEY = 1
KEY_POWER = 116


def find_power_buttons(input_class=INPUT_CLASS):
    """Device nodes (/dev/input/eventN) of input devices named "Power Button"."""
    try:
        entries = sorted(os.listdir(input_class))
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.startswith("event"):
            continue
        try:
            with open(os.path.join(input_class, entry, "device", "name"), encoding="utf-8") as name:
                if name.read().strip() == "Power Button":
                    found.append("/dev/input/" + entry)
        except OSError:
            continue
    return found


class PowerButtons:
    """Watches every power button; on_press() runs once per press."""

    def __init__(self, loop, on_press):
        self._loop = loop
        self._on_press = on_press
        self._fds = []

    def start(self):
        for path in find_power_buttons():
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                log.info("cannot open power button %s: %s" % (path, exc))
                continue
            self._fds.append(fd)
            self._loop.add_reader(fd, lambda fd=fd: self._on_readable(fd))
            log.info("watching power button %s" % path)
        if not self._fds:
            log.info("no ACPI power button found: ACPI shutdown requests will be ignored")

    def _on_readable(self, fd):
        try:
            data = os.read(fd, EVENT.size * 64)
        except BlockingIOError:
            return
        except OSError as exc:
            log.info("power button read failed: %s" % exc)
            self._loop.remove_reader(fd)
            os.close(fd)
            return
        for offset in range(0, len(data) - EVENT.size + 1, EVENT.size):
            kind, code, value = EVENT.unpack_from(data, offset)[2:]
            if kind == EV_KEY and code == KEY_POWER and value == 1:
                log.info("power button pressed")
                self._on_press()
