"""guest_init: PID 1 of a GoShip project VM, and the guest end of the host channel.

Stdlib only; runs on the guest's Python 3.11 as ``python3 -I -S -m guest_init``.
"""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
