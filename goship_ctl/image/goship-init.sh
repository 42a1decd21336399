#!/bin/sh
# /sbin/goship-init in the guest root: stage0 switch_roots into this as PID 1.
# guest_init lives in the stdlib directory, so -I (isolated) and -S (no site) still find it.
exec /usr/bin/python3.11 -I -S -m guest_init "$@"
