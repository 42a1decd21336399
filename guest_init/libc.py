"""The few system calls Python's os module lacks, through ctypes (loaded on first use)."""

import os

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32

RB_AUTOBOOT = 0x01234567
RB_POWER_OFF = 0x4321FEDC
RB_DISABLE_CAD = 0  # Ctrl-Alt-Del then sends SIGINT to PID 1 instead of rebooting at once

PR_SET_CHILD_SUBREAPER = 36

_functions = {}


def _function(name):
    function = _functions.get(name)
    if function is None:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        text, ulong, integer = ctypes.c_char_p, ctypes.c_ulong, ctypes.c_int
        argtypes = {
            "mount": (text, text, text, ulong, text),
            "umount2": (text, integer),
            "reboot": (integer,),
            "prctl": (integer, ulong, ulong, ulong, ulong),
        }
        function = getattr(libc, name)
        function.argtypes = argtypes[name]
        function.restype = integer
        _functions[name] = function
    return function


def _call(name, *args):
    if _function(name)(*args) != 0:
        import ctypes
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (name, os.strerror(err)))


def _path(value):
    return None if value is None else os.fsencode(value)


def mount(source, target, fstype, flags=0, data=None):
    _call("mount", _path(source), _path(target), _path(fstype), flags, _path(data))


def umount(target, flags=0):
    _call("umount2", _path(target), flags)


def reboot(how):
    _call("reboot", how)


def set_child_subreaper():
    _call("prctl", PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
