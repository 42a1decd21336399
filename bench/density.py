"""Density benchmark (issue 7): K project VMs side by side, one app each.

For each K (default 1, 2, 4, 8, capped by ``--max-vms``) the script defines K project VMs
through libvirt (``qemu:///system``) with the domain template of
``plugins/module_utils/domain_xml.py``: the GoShip image, ``--memory-mib`` each (default 512,
the project default), 1 vCPU, and one shared read-only images disk holding the busybox
``demo-web`` OCI image. It starts them back to back and, per VM in its own thread, waits for
guest_init's ``hello`` and pushes (``apply`` over the virtio-serial channel, as the
guest_apps module does) one crun app, 1 replica, http readiness every 0.5 s.

Per VM it measures:

* ``boot_s``: just before its ``create()`` to guest_init's ``hello``; ``ready_s``: to its
  replica ``ready`` in ``status`` (polled every 0.25 s);
* host memory of its QEMU, once all K are ready: ``VmRSS`` from ``/proc/<pid>/status``,
  ``Pss`` from ``/proc/<pid>/smaps_rollup`` (the pid from libvirt's pid file), and of that
  the resident part of the guest's RAM and of TCG's translation buffer (``smaps``);
* guest memory in use: ``MemTotal - MemAvailable`` as the app saw it at start (it prints the
  first lines of the guest's ``/proc/meminfo``, fetched with the ``logs`` op), and from
  guest_init's ``status``: its own RSS and the replica's cgroup memory.

``--runs`` rounds per K (default 2); each K's figures are medians over all its VMs and
rounds; K = 1 is the baseline the growth is read against. Prints a table and, last, one
JSON line. Every domain is destroyed and undefined at the end, whatever happens.
Run as root from the repo: ``.venv/bin/python bench/density.py [--max-vms 8] [--runs 2]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The repo root first: bench/guest_init.py must not shadow the guest_init package the image builder hashes.
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "build" / "collections"), str(REPO_ROOT / "tests" / "integration")]

# pylint: disable=wrong-import-position
import libvirt  # noqa: E402

import vm_harness  # noqa: E402
from ansible_collections.goship.core.plugins.module_utils import accel, domain_xml, images_disk  # noqa: E402
from goship_ctl.image.build import build_image  # noqa: E402
from goship_ctl.image.paths import image_dir_for_tests  # noqa: E402
from goship_ctl.oci.busybox import build_busybox_image  # noqa: E402

IMAGE = "demo-web"
APP = {
    "name": "web", "runtime": "crun", "image": IMAGE, "replicas": 1, "ports": [8080],
    # the image's Entrypoint is `sh -c`: args replace its Cmd
    "args": ['head -3 /proc/meminfo; exec httpd -f -p "$PORT" -h /www'],
    "health": {"readiness": {"http": {"path": "/healthz"}, "interval_s": 0.5, "timeout_s": 5, "failure_threshold": 1},
               "startup_grace_s": 120},
}
QEMU_PID_DIR = Path("/run/libvirt/qemu")
POLL_S = 0.25
READY_TIMEOUT_BASE_S = 180.0
READY_TIMEOUT_PER_VM_S = 60.0  # TCG boots share 2 cores: K VMs take about K times the CPU
JOIN_GRACE_S = 30.0  # beyond the deadline: a thread still inside one channel request


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sizes", default="1,2,4,8", help="VM counts K (default 1,2,4,8)")
    parser.add_argument("--max-vms", type=int, default=8, help="skip every K above this (default 8)")
    parser.add_argument("--runs", type=int, default=2, help="rounds per K (default 2)")
    parser.add_argument("--memory-mib", type=int, default=512, help="memory of each VM (default 512)")
    parser.add_argument("--image-dir", type=Path, default=image_dir_for_tests(),
                        help="GoShip image to boot; (re)built first if its inputs changed (default build/image)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(k) for k in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes takes integers, e.g. 1,2,4,8")
    args.sizes = [k for k in sizes if 1 <= k <= args.max_vms]
    if not args.sizes or args.runs < 1:
        parser.error("need at least one K between 1 and --max-vms, and --runs >= 1")
    return args


def vm_spec(image_dir, state_root, node, project, virt_type, memory_mib, disk):
    return domain_xml.DomainSpec(
        node=node, project=project, generation=1, virt_type=virt_type, memory_mib=memory_mib,
        kernel=str(image_dir / "vmlinuz"), initrd=str(image_dir / "initrd.img"),
        paths=domain_xml.VmPaths.for_domain(state_root, domain_xml.domain_name(node, project)),
        disks=(domain_xml.Disk(source=str(image_dir / "rootfs.squashfs")),
               domain_xml.Disk(source=disk, target="vdb", serial=images_disk.DISK_SERIAL)))


def qemu_pid(domain):
    try:
        return int((QEMU_PID_DIR / f"{domain}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def proc_kib(path, key):
    """The KiB value of ``key:`` in a /proc file like status or smaps_rollup."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def qemu_breakdown_kib(pid, memory_mib):
    """Resident KiB of the guest's RAM mapping (its size is the VM's memory) and of TCG's
    translation buffer (QEMU's one writable+executable mapping), from /proc/<pid>/smaps."""
    ram = tcg = 0
    perms = size = None
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:
            perms = fields[1]
        elif fields[0] == "Size:":
            size = int(fields[1])
        elif fields[0] == "Rss:":
            if size == memory_mib * 1024:
                ram += int(fields[1])
            elif perms == "rwxp":
                tcg += int(fields[1])
    return ram, tcg


def meminfo_in_use_kib(lines):
    """MemTotal - MemAvailable from the app's printout of the guest's /proc/meminfo."""
    values = {}
    for line in lines:
        parts = line["text"].split()
        if len(parts) >= 2 and parts[0] in ("MemTotal:", "MemAvailable:"):
            values[parts[0][:-1]] = int(parts[1])
    if {"MemTotal", "MemAvailable"} <= values.keys():
        return values["MemTotal"] - values["MemAvailable"]
    return None


def bring_up(vm, started, deadline, outcome):
    """Thread body: hello, apply, wait for the replica to be ready; fills ``outcome``, whose
    ``channel`` stays open for the memory readings (the caller closes it)."""
    try:
        channel = outcome["channel"] = vm_harness.connect_channel(vm.paths.channel, deadline)
        channel.hello(max(0.1, deadline - time.monotonic()))
        outcome["boot_s"] = time.monotonic() - started
        channel.request("apply", {"generation": 1, "apps": [APP]})
        while time.monotonic() < deadline:
            replicas = (channel.request("status")["apps"].get("web") or {}).get("replicas", [])
            if replicas and replicas[0]["state"] == "ready":
                outcome["ready_s"] = time.monotonic() - started
                return
            time.sleep(POLL_S)
        outcome["error"] = f"replica not ready in time: {replicas}"
    except Exception as exc:  # pylint: disable=broad-exception-caught  # reported per VM, the round goes on
        outcome["error"] = f"{type(exc).__name__}: {exc}"


def guest_memory(channel):
    status = channel.request("status")
    lines = channel.request("logs", {"app": "web", "replica": 0, "tail": 20})["lines"]
    replica = status["apps"]["web"]["replicas"][0]
    memory = replica.get("memory_bytes")
    return {"guest_in_use_kib": meminfo_in_use_kib(lines), "guest_init_rss_kib": status["rss_kib"],
            "app_cgroup_kib": memory // 1024 if memory else None}


def run_round(conn, args, count, virt_type, state_root, disk, round_no):
    node = vm_harness.scratch_node("dens")
    with contextlib.ExitStack() as stack:
        vms = [stack.enter_context(vm_harness.ScratchVm(conn, vm_spec(args.image_dir, state_root, node, f"p{index}",
                                                                      virt_type, args.memory_mib, disk)))
               for index in range(count)]
        deadline = time.monotonic() + READY_TIMEOUT_BASE_S + READY_TIMEOUT_PER_VM_S * count
        outcomes, threads = [], []
        for vm in vms:
            started = vm.start()
            outcome = {"domain": vm.spec.name, "create_s": vm.create_s}
            outcomes.append(outcome)
            stack.callback(lambda outcome=outcome: outcome["channel"].close() if "channel" in outcome else None)
            threads.append(threading.Thread(target=bring_up, args=(vm, started, deadline, outcome), daemon=True))
            threads[-1].start()
        for thread in threads:
            thread.join(timeout=max(1.0, deadline - time.monotonic() + JOIN_GRACE_S))
        failed = [o for o in outcomes if "ready_s" not in o]
        if failed:
            tails = "\n".join(f"--- {vm.spec.name}\n{vm.console_tail(3000)}" for vm in vms if vm.spec.name in
                              {o["domain"] for o in failed})
            raise RuntimeError(f"K={count} round {round_no}: {[o.get('error') for o in failed]}\n{tails}")
        for vm, outcome in zip(vms, outcomes):
            pid = qemu_pid(vm.spec.name)
            outcome["qemu_rss_kib"] = proc_kib(f"/proc/{pid}/status", "VmRSS") if pid else None
            outcome["qemu_pss_kib"] = proc_kib(f"/proc/{pid}/smaps_rollup", "Pss") if pid else None
            ram, tcg = qemu_breakdown_kib(pid, args.memory_mib) if pid else (None, None)
            outcome.update(qemu_guest_ram_kib=ram, qemu_tcg_kib=tcg)
            with outcome.pop("channel") as channel:
                outcome.update(guest_memory(channel))
    print(f"K={count} round {round_no}: ready " + " ".join(f"{o['ready_s']:.1f}" for o in outcomes) + " s",
          file=sys.stderr)
    return outcomes


def median_of(rows, key):
    values = [row[key] for row in rows if row.get(key) is not None]
    return statistics.median(values) if values else None


def report(results, args, virt_type):
    keys = ("boot_s", "ready_s", "qemu_rss_kib", "qemu_pss_kib", "qemu_guest_ram_kib", "qemu_tcg_kib",
            "guest_in_use_kib", "guest_init_rss_kib", "app_cgroup_kib")
    print(f"{'K':>3} {'VMs':>4} {'boot s':>7} {'ready s':>8} {'max ready s':>11} {'QEMU RSS MiB':>12} "
          f"{'PSS MiB':>8} {'guest RAM MiB':>13} {'TCG MiB':>8} {'guest used MiB':>14} {'guest_init MiB':>14} {'app MiB':>8}")
    summary = {}
    for count, rows in results.items():
        medians = {key: median_of(rows, key) for key in keys}
        medians["max_ready_s"] = max(row["ready_s"] for row in rows)
        summary[str(count)] = {key: round(value, 3) if isinstance(value, float) else value for key, value in medians.items()}

        def mib(key, medians=medians):
            return "-" if medians[key] is None else f"{medians[key] / 1024:.1f}"

        print(f"{count:>3} {len(rows):>4} {medians['boot_s']:>7.2f} {medians['ready_s']:>8.2f} {medians['max_ready_s']:>11.2f} "
              f"{mib('qemu_rss_kib'):>12} {mib('qemu_pss_kib'):>8} {mib('qemu_guest_ram_kib'):>13} {mib('qemu_tcg_kib'):>8} "
              f"{mib('guest_in_use_kib'):>14} "
              f"{mib('guest_init_rss_kib'):>14} {mib('app_cgroup_kib'):>8}")
    first, last = min(results), max(results)
    growth = summary[str(last)]["ready_s"] / summary[str(first)]["ready_s"]
    print(f"boot-to-ready, median per VM: K={last} is {growth:.2f} x K={first}")
    print(json.dumps({"sizes": summary, "ready_growth": round(growth, 3), "runs": args.runs, "memory_mib": args.memory_mib,
                      "virt_type": virt_type, "nproc": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)},
                     sort_keys=True))


def main(argv=None):
    args = parse_args(argv)
    build_image(args.image_dir)
    work = Path(tempfile.mkdtemp(prefix="goship-bench-density-", dir="/tmp"))
    work.chmod(0o711)  # QEMU (libvirt-qemu) opens the images disk by path
    conn = libvirt.open(vm_harness.LIBVIRT_URI)
    try:
        choice = accel.choose(str(work / "state"))
        print(f"accelerator: {choice.accel} ({choice.reason})", file=sys.stderr)
        build_busybox_image(work / "layouts" / IMAGE)
        disk, _changed = images_disk.build_images_disk({IMAGE: str(work / "layouts" / IMAGE)}, str(work / "disks"))
        (work / "disks").chmod(0o755)
        results = {}
        for count in args.sizes:
            results[count] = []
            for round_no in range(1, args.runs + 1):
                results[count].extend(run_round(conn, args, count, choice.virt_type, str(work / "state"), disk, round_no))
        report(results, args, choice.virt_type)
    finally:
        conn.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
