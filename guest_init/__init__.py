"""guest_init: PID 1 of a GoShip project VM, and the guest end of the host channel.

Stdlib only; runs on the guest's Python 3.11 as ``python3 -I -S -m guest_init``.
"""

import time

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
# Seconds since boot when the interpreter got to us: boot benchmarks compare it with stage0's
# switch_root and with the first log line (after our imports).
IMPORTED_AT = time.clock_gettime(time.CLOCK_BOOTTIME)
