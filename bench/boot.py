"""Boot benchmark (issue 2): how much slower than a bare busybox guest is the GoShip image?

Boots, through libvirt (qemu:///system) with one domain template and the same settings,
alternately, ``--runs`` times each:

* baseline: the image's kernel + a busybox initramfs (bench/baseline_initramfs.py) that only
  loads the virtio modules and writes one line to the port ``org.goship.init.0``;
* goship: the GoShip image (stage0 -> switch_root -> guest_init) up to its ``hello`` reply.

Each time is measured from just before ``dom.create()`` (``virsh start``) to the first line
read from init.sock by a client that connects in a tight loop (for guest_init, the first line
is the reply to the client's connect-time ``sync``; ``hello`` follows). Prints a table and, as
its last line, one JSON object: baseline_s, goship_s (medians), ratio, image_bytes,
guest_init_rss_kib, pair_ratio_median (median of goship/baseline within each run, steadier on
a busy host) and the settings. Results and method: docs/benchmarks.md.

``--machine pc,q35,microvm`` compares machine types: each run boots both kinds on every machine
in turn (so load that drifts over minutes hits them alike), a table and a JSON line per machine,
then a last JSON line ``{"machines": {machine: result}, ...}`` with the hello medians side by side.

Run as root from the repo: ``.venv/bin/python bench/boot.py [--runs 3] [--machine pc[,q35,microvm]]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The repo root first: bench/guest_init.py must not shadow the guest_init package the image builder hashes.
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "build" / "collections"), str(REPO_ROOT / "tests" / "integration")]

# pylint: disable=wrong-import-position
import libvirt  # noqa: E402

import baseline_initramfs  # noqa: E402
import vm_harness  # noqa: E402
from ansible_collections.goship.core.plugins.module_utils import accel  # noqa: E402
from goship_ctl.image.build import build_image  # noqa: E402
from goship_ctl.image.paths import image_dir_for_tests  # noqa: E402

TARGETS = {"ratio": 1.5, "image_bytes": 40 * 1024 * 1024, "guest_init_rss_kib": 25 * 1024}
BOOTED_FILES = ("vmlinuz", "initrd.img", "rootfs.squashfs")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3, help="boots of each kind (default 3)")
    parser.add_argument("--machine", default="pc",
                        help="QEMU machine type, or several separated by commas to compare them (default pc)")
    parser.add_argument("--memory-mib", type=int, default=512)
    parser.add_argument("--no-quiet", action="store_true", help="drop 'quiet' from the kernel command line")
    parser.add_argument("--accel", choices=("auto", "tcg", "kvm"), default="auto",
                        help="auto: KVM only if the probe shows it runs guest code (plugins/module_utils/accel.py)")
    parser.add_argument("--image-dir", type=Path, default=image_dir_for_tests(),
                        help="GoShip image to boot; (re)built first if its inputs changed (default build/image)")
    parser.add_argument("--kernel", type=Path, help="boot this kernel instead of the image's vmlinuz (both kinds)")
    parser.add_argument("--console-dir", type=Path, help="keep each boot's console.log here")
    parser.add_argument("--timeout", type=float, default=vm_harness.BOOT_TIMEOUT_S, help="per-boot limit, seconds")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.machines = [machine.strip() for machine in args.machine.split(",") if machine.strip()]
    if not args.machines or len(set(args.machines)) != len(args.machines):
        parser.error("--machine: one or more distinct machine types, separated by commas")
    return args


def boot_baseline(vm, timeout):
    started = vm.start()
    line = vm_harness.first_line(vm.paths.channel, started + timeout)
    first = time.monotonic() - started
    if line.decode() != baseline_initramfs.READY_LINE:
        raise RuntimeError(f"baseline guest wrote {line!r}")
    shut_off = vm.wait_shut_off()
    return {"create_s": vm.create_s, "first_line_s": first, "hello_s": None, "rss_kib": None, "shut_off": shut_off}


def boot_goship(vm, timeout):
    started = vm.start()
    with vm_harness.connect_channel(vm.paths.channel, started + timeout) as channel:
        first = time.monotonic() - started
        channel.hello()
        hello = time.monotonic() - started
        status = channel.request("status")
        channel.request("shutdown", {"reboot": False})
    return {"create_s": vm.create_s, "first_line_s": first, "hello_s": hello, "rss_kib": status["rss_kib"],
            "shut_off": vm.wait_shut_off()}


def run_boot(conn, spec, boot, args):
    with vm_harness.ScratchVm(conn, spec) as vm:
        try:
            result = boot(vm, args.timeout)
        finally:
            if args.console_dir:
                args.console_dir.mkdir(parents=True, exist_ok=True)
                (args.console_dir / f"{spec.name}.log").write_text(vm.console_tail(1 << 20))
    if not result["shut_off"]:
        print(f"warning: {spec.name} did not shut off by itself; destroyed", file=sys.stderr)
    return result


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value):
    return "-" if value is None else f"{value:.2f}"


def report(rows, manifest, settings):
    print(f"{'kind':<9} {'run':>3} {'create() s':>10} {'first line s':>12} {'hello s':>8} {'rss KiB':>8}")
    for row in rows:
        print(f"{row['kind']:<9} {row['run']:>3} {fmt(row['create_s']):>10} {fmt(row['first_line_s']):>12} {fmt(row['hello_s']):>8} "
              f"{row['rss_kib'] if row['rss_kib'] is not None else '-':>8}")
    baseline = median(r["first_line_s"] for r in rows if r["kind"] == "baseline")
    goship = median(r["hello_s"] for r in rows if r["kind"] == "goship")
    rss = median(r["rss_kib"] for r in rows if r["kind"] == "goship")
    image_bytes = sum(manifest["files"][name]["size"] for name in BOOTED_FILES)
    # Boots of a run are back to back: their ratio is less exposed to load that varies over minutes.
    pairs = [g["hello_s"] / b["first_line_s"] for b, g in zip(rows[::2], rows[1::2])]
    result = {
        "baseline_s": round(baseline, 3), "goship_s": round(goship, 3), "ratio": round(goship / baseline, 3),
        "pair_ratio_median": round(statistics.median(pairs), 3), "image_bytes": image_bytes, "guest_init_rss_kib": rss,
    }
    met = {key: result[key] <= limit for key, limit in TARGETS.items()}
    print("targets: " + ", ".join(f"{key} <= {TARGETS[key]} {'met' if ok else 'MISSED'}" for key, ok in met.items()))
    result.update(settings)
    print(json.dumps(result, sort_keys=True))
    return result


def main(argv=None):
    args = parse_args(argv)
    manifest = build_image(args.image_dir).manifest
    state_root = tempfile.mkdtemp(prefix="goship-bench-")
    # QEMU runs as libvirt-qemu and opens kernel, initrd and disks itself: like an image
    # directory, the baseline's must be reachable by that user (state_root is 0700).
    work = Path(tempfile.mkdtemp(prefix="goship-bench-baseline-"))
    work.chmod(0o755)
    conn = libvirt.open(vm_harness.LIBVIRT_URI)
    try:
        if args.accel == "auto":
            choice = accel.choose(state_root)
            virt_type = choice.virt_type
            print(f"accelerator: {choice.accel} ({choice.reason})", file=sys.stderr)
        else:
            virt_type = "kvm" if args.accel == "kvm" else "qemu"
        baseline_initrd = baseline_initramfs.build(args.image_dir, manifest["kernel_version"], work)
        options = {"memory_mib": args.memory_mib, "quiet": not args.no_quiet}
        if args.kernel:
            options["kernel"] = str(args.kernel.resolve())
        kinds = (("baseline", boot_baseline, {"initrd": str(baseline_initrd)}), ("goship", boot_goship, {}))
        rows = {machine: [] for machine in args.machines}
        for run in range(1, args.runs + 1):
            for machine in args.machines:
                for kind, boot, extra in kinds:
                    spec = vm_harness.image_spec(args.image_dir, state_root, vm_harness.scratch_node("bench"), kind,
                                                 virt_type, machine=machine, **options, **extra)
                    rows[machine].append({"kind": kind, "run": run, **run_boot(conn, spec, boot, args)})
                    print(f"{machine} {kind} run {run}: {fmt(rows[machine][-1]['hello_s'] or rows[machine][-1]['first_line_s'])} s",
                          file=sys.stderr)
        settings = {"runs": args.runs, "virt_type": virt_type, "kernel": options.get("kernel", "vmlinuz"),
                    "quiet": not args.no_quiet, "memory_mib": args.memory_mib}
        results = {}
        for machine in args.machines:
            print(f"== machine {machine}")
            results[machine] = report(rows[machine], manifest, dict(settings, machine=machine))
        if len(args.machines) > 1:
            summary = {machine: {key: results[machine][key] for key in ("goship_s", "baseline_s", "ratio")} for machine in args.machines}
            print(json.dumps({"machines": summary, **settings}, sort_keys=True))
    finally:
        conn.close()
        shutil.rmtree(state_root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
