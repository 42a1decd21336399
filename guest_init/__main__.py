"""Entry point: `python3 -I -S -m guest_init` (PID 1) or `python3 -m guest_init --socket PATH`."""

import os
import sys
import time

from guest_init import log
from guest_init.machine import GuestInit

CRASH_WINDOW_S = 10.0
CRASHES_BEFORE_POWER_OFF = 10


def parse_args(argv):
    import argparse
    parser = argparse.ArgumentParser(prog="guest_init", description="GoShip guest init and host channel server.")
    parser.add_argument("--socket", metavar="PATH", help="serve a Unix socket at PATH instead of the virtio port")
    parser.add_argument("--debug", action="store_true", help="log every request")
    parser.add_argument("--state-dir", metavar="DIR", help="persist the applied spec in DIR (default: not persisted)")
    parser.add_argument("--images-dir", metavar="DIR", default="/run/goship/images", help="OCI image layouts by name")
    parser.add_argument("--cgroup-root", metavar="DIR", help="cgroup v2 directory delegated to us (default: no cgroups)")
    parser.add_argument("--config", metavar="PATH", help="initial spec: a cidata ISO (or device) or a goship.json")
    parser.add_argument("--measurement", metavar="ALG:HEX",
                        help="declared digest of the initial spec (sha256:<hex> or sha384:<hex>), verified at start "
                             "where no confidential platform holds one (docs/confidential.md)")
    return parser.parse_args(argv)


def run_as_pid1():
    """Never returns: an exiting PID 1 panics the kernel."""
    init = GuestInit(is_pid1=True)
    crashes = []
    try:
        init.boot()
    except Exception:  # pylint: disable=broad-except
        log.exception("boot step failed")
    while True:
        try:
            init.loop.run()
            log.info("main loop stopped unexpectedly; restarting it")
        except BaseException:  # pylint: disable=broad-except
            log.exception("main loop failed")
        now = time.monotonic()
        crashes = [t for t in crashes if now - t < CRASH_WINDOW_S] + [now]
        if len(crashes) >= CRASHES_BEFORE_POWER_OFF:
            log.info("main loop failing repeatedly: powering off")
            from guest_init import pid1
            pid1.power_off()
        time.sleep(0.1)


def main(argv=None):
    if os.getpid() == 1:
        run_as_pid1()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    log.set_debug(args.debug)
    from guest_init.supervisor.service import Paths
    paths = Paths(state_dir=args.state_dir, images_dir=args.images_dir, cgroup_root=args.cgroup_root, config=args.config,
                  measurement=args.measurement)
    init = GuestInit(is_pid1=False, socket_path=args.socket, paths=paths)
    init.boot()
    init.loop.run()
    return init.exit_code


if __name__ == "__main__":
    sys.exit(main())
