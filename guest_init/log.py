"""One line per event on stderr (the serial console when PID 1), stamped with seconds since boot.

Written with os.write on fd 2 so nothing is buffered when the machine powers off.
Never log op arguments: they may carry secrets.
"""

import os
import time

_debug = False


def set_debug(enabled):
    global _debug
    _debug = bool(enabled)


def debug_enabled():
    return _debug


def _stamp():
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def info(message):
    _write(message)


def debug(message):
    if _debug:
        _write(message)


def _write(message):
    line = "[%10.3f] goship-init: %s\n" % (_stamp(), message.replace("\n", " | "))
    data = line.encode("utf-8", "backslashreplace")
    try:
        while data:
            data = data[os.write(2, data):]
    except OSError:
        pass  # no console: nothing better to do than go on


def exception(message):
    """Log an unexpected exception with its traceback folded onto one line."""
    import traceback
    _write("%s: %s" % (message, traceback.format_exc().strip()))
