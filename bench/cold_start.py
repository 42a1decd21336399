"""Cold-start benchmark (issue 7): apply a new 1-node project until all its replicas run.

Each run applies a new project (``cold<N>``: 1 VM of 1 vCPU / 512 MiB, app ``web`` =
busybox httpd from the ``demo-web`` OCI image at ``--replicas``) to a control service with
one simulated node (bench/one_node.py), runs the reconcile the control service would run
(ansible-runner, playbooks/reconcile.yml) and splits the time from ``apply`` to "every
replica runs" into phases:

  scheduling        apply: validation, placement, the store write
  ansible start-up  desired state computed, ansible-runner + ansible-playbook + inventory,
                    up to the first task
  node checks       the node role on an already prepared node
  VM prepare        state dir, the VM's image disk (OCI layouts -> squashfs), NoCloud seed
  VM define         project_vm task start -> libvirt's "started" event (render, define, QEMU up)
  boot to hello     "started" -> guest_init's hello, as project_vm returns
  app start         hello -> guest_apps confirms every replica runs (guest_init started them
                    from the seed while booting; includes the role's VM listing task)

The floor, measured in the same process on each run: the boot baseline of bench/boot.py
(the image's kernel with a busybox initramfs, create() to its first line on the channel) plus
app start inside guest_init (a GoShip VM booted directly, ``apply`` of the same app set until
its replicas run). Target: total <= 2.0 x floor. After each run the project is deleted and
reconciled away (not timed).

Prints a table and, last, one JSON line (medians). Run as root from the repo:
``.venv/bin/python bench/cold_start.py [--runs 3] [--replicas 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import one_node  # sets sys.path: the repo, the collection, tests/integration
import boot  # noqa: E402
import baseline_initramfs  # noqa: E402
import guest_apply  # noqa: E402
import vm_harness  # noqa: E402
from ansible_collections.goship.core.plugins.module_utils import accel  # noqa: E402

TARGET_RATIO = 2.0
VM_TASKS_FIRST = "Set the VM's paths and settings"
PROJECT_VM_TASK = "Define and run the project VM until guest_init answers"
APPS_TASK = "Push each VM's app set to guest_init and wait for it"
PHASES = ("scheduling", "ansible_startup", "node_checks", "vm_prepare", "vm_define", "boot_to_hello", "app_start")
UP_STATES = ("running", "ready")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3, help="cold starts (default 3)")
    parser.add_argument("--replicas", type=int, default=2, help="replicas of the app (default 2)")
    parser.add_argument("--memory-mib", type=int, default=512, help="memory of the VM (default 512, as boot.py)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.replicas < 1:
        parser.error("--runs and --replicas must be at least 1")
    return args


def app(replicas):
    return {"name": "web", "image": one_node.IMAGE, "replicas": replicas, "ports": [8080]}


def project_document(name, node, args):
    return {"apiVersion": "goship/v1", "kind": "Project", "metadata": {"name": name},
            "spec": {"placement": {"nodeNames": [node]}, "vm": {"vcpus": 1, "memory_mib": args.memory_mib},
                     "apps": [app(args.replicas)]}}


def cold_start(node, name, args):
    """Phases of one cold start, in seconds; the VM is left running."""
    began = time.time()
    node.apply(project_document(name, node.node, args))
    applied = time.time()
    timeline = node.reconcile(node.domain(name))
    vm_first = timeline.task(VM_TASKS_FIRST)[0]
    define_start, hello = timeline.task(PROJECT_VM_TASK)
    running = timeline.task(APPS_TASK)[1]
    started = timeline.domain_events.get("started")
    if started is None:
        raise one_node.RunFailed(f"libvirt reported no start of {node.domain(name)}: {timeline.domain_events}")
    states = [r["state"] for r in node.replicas(name).get("web", [])]
    if len(states) != args.replicas or not all(state in UP_STATES for state in states):
        raise one_node.RunFailed(f"{name}: replicas recorded after the run: {states}")
    phases = {
        "scheduling": applied - began,
        "ansible_startup": timeline.first_task_start() - timeline.started,
        "node_checks": vm_first - timeline.first_task_start(),
        "vm_prepare": define_start - vm_first,
        "vm_define": started - define_start,
        "boot_to_hello": hello - started,
        "app_start": running - hello,
    }
    return {**phases, "total": running - began, "after_running": timeline.finished - running}


def floor(conn, work, oci_dir, virt_type, baseline_initrd, args):
    """(boot baseline s, app start in guest_init s), measured now."""
    spec = vm_harness.image_spec(one_node.image_dir_for_tests(), str(work / "baseline"),
                                 vm_harness.scratch_node("base"), "baseline", virt_type, machine="pc",
                                 memory_mib=args.memory_mib, quiet=True, initrd=str(baseline_initrd))
    with vm_harness.ScratchVm(conn, spec) as vm:
        baseline = boot.boot_baseline(vm, vm_harness.BOOT_TIMEOUT_S)["first_line_s"]
    with guest_apply.GuestVm(conn, work, oci_dir, memory_mib=args.memory_mib) as guest:
        app_start = guest.apply_until_running([app(args.replicas)])
    return baseline, app_start


def report(rows, floors, args, virt_type):
    medians = {key: statistics.median(row[key] for row in rows) for key in (*PHASES, "total", "after_running")}
    baseline = statistics.median(f[0] for f in floors)
    app_start = statistics.median(f[1] for f in floors)
    floor_s = baseline + app_start
    ratio = medians["total"] / floor_s
    print(f"{'phase':<18}{'median s':>10}  runs")
    for key in (*PHASES, "total", "after_running"):
        print(f"{key:<18}{medians[key]:>10.2f}  " + " ".join(f"{row[key]:.2f}" for row in rows))
    print(f"floor: boot baseline {baseline:.2f} s + app start in guest_init {app_start:.2f} s = {floor_s:.2f} s "
          f"(runs: {' '.join(f'{b:.2f}+{a:.2f}' for b, a in floors)})")
    print(f"target: total <= {TARGET_RATIO} x floor: {ratio:.2f} x, {'met' if ratio <= TARGET_RATIO else 'MISSED'}")
    print(json.dumps({
        "phases_s": {key: round(medians[key], 3) for key in PHASES}, "total_s": round(medians["total"], 3),
        "after_running_s": round(medians["after_running"], 3), "floor_s": round(floor_s, 3),
        "floor_boot_baseline_s": round(baseline, 3), "floor_app_start_s": round(app_start, 3),
        "ratio": round(ratio, 3), "target_ratio": TARGET_RATIO, "runs": args.runs, "replicas": args.replicas,
        "memory_mib": args.memory_mib, "virt_type": virt_type, "nproc": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2)}, sort_keys=True))


def main(argv=None):
    args = parse_args(argv)
    rows, floors = [], []
    with one_node.OneNode("cold") as node:
        work = Path(tempfile.mkdtemp(prefix="floor-", dir=node.root))
        work.chmod(0o711)
        virt_type = accel.choose(str(work)).virt_type
        baseline_initrd = baseline_initramfs.build(node.image_dir, node.manifest["kernel_version"], work)
        for run in range(1, args.runs + 1):
            name = f"cold{run}"
            rows.append(cold_start(node, name, args))
            node.service.delete_project(one_node.LOCAL_ADMIN, name)
            node.reconcile()
            floors.append(floor(node.conn, work, node.oci_dir, virt_type, baseline_initrd, args))
            print(f"run {run}: total {rows[-1]['total']:.2f} s, floor {sum(floors[-1]):.2f} s", file=sys.stderr)
        report(rows, floors, args, virt_type)
    return 0


if __name__ == "__main__":
    sys.exit(main())
