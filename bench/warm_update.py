"""Warm-update benchmark (issue 7): change the apps of a running project VM, apply to running.

A project ``warm`` (1 VM on the one simulated node of bench/one_node.py) runs two apps from the
``demo-web`` image: ``web`` at R replicas and ``api`` at 1 replica with an env ``VERSION``.
Each timed run applies a new generation that scales ``web`` R -> R+1 and changes ``api``'s
``VERSION`` (a restart of its replica), then runs the reconcile the control service would run,
until guest_apps confirms every replica runs. Only apps changed, so the reconciler takes its
fast path, playbooks/apps.yml (``fast_path_runs`` counts the runs that did; ``--full`` forces
reconcile.yml, as ``goship-ctl reconcile --node`` does). The VM is not restarted (its domain
keeps its libvirt id: checked). Reported per run:

  total          apply -> every replica runs (the figure the target is about)
  scheduling     apply: validation, placement, the store write
  ansible        the reconcile run up to that point: start-up, the node and VM checks (all
                 unchanged) and guest_apps itself, of which:
    start-up     desired state, ansible-runner, ansible-playbook, inventory: up to the first task
    checks       first task -> guest_apps starts (node and project_vm roles: reconcile.yml only)
    guest_apps   the module run: dry run, apply, wait until the replicas run
  status tail    guest_status and the end of the run (after the replicas run; not in total)

Floor, in the same process: the same change applied by a client straight to guest_init in a VM
booted directly (bench/guest_apply.py), until every replica runs. Target: total <= 3 s here.

Prints a table and, last, one JSON line (medians). Run as root from the repo:
``.venv/bin/python bench/warm_update.py [--runs 5] [--replicas 2]``.
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
import guest_apply  # noqa: E402

TARGET_S = 3.0
PROJECT = "warm"
APPS_TASK = "Push each VM's app set to guest_init and wait for it"
NODE_PROBE_TASK = "Probe the libvirt daemons, state directories and storage pool"  # reconcile.yml's first
ROWS = ("total", "scheduling", "ansible", "ansible_startup", "checks", "guest_apps", "status_tail")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="timed updates (default 5)")
    parser.add_argument("--replicas", type=int, default=2, help="replicas of web before the first update (default 2)")
    parser.add_argument("--full", action="store_true", help="no fast path: every run is a full reconcile.yml")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.replicas < 1:
        parser.error("--runs and --replicas must be at least 1")
    return args


# busybox httpd as a container's PID 1 ignores SIGTERM (no handler), so each restart of api would
# wait out guest_init's stop grace (10 s) before SIGKILL: a shell that exits on TERM is the
# well-behaved service this benchmark is about. The image's Entrypoint is `sh -c`.
STOPS_ON_TERM = ['trap "exit 0" TERM; httpd -f -p "$PORT" -h /www & wait']


def apps(web_replicas, version):
    return [{"name": "web", "image": one_node.IMAGE, "replicas": web_replicas, "ports": [8080]},
            {"name": "api", "image": one_node.IMAGE, "replicas": 1, "ports": [9090], "args": STOPS_ON_TERM,
             "env": {"VERSION": str(version)}}]


def document(node, web_replicas, version):
    return {"apiVersion": "goship/v1", "kind": "Project", "metadata": {"name": PROJECT},
            "spec": {"placement": {"nodeNames": [node]}, "vm": {"vcpus": 1, "memory_mib": 512},
                     "apps": apps(web_replicas, version)}}


def domain_id(conn, name):
    return conn.lookupByName(name).ID()


def warm_update(node, web_replicas, version):
    began = time.time()
    node.apply(document(node.node, web_replicas, version))
    applied = time.time()
    timeline = node.reconcile(node.domain(PROJECT))
    apps_start, running = timeline.task(APPS_TASK)
    fast_path = not any(task == NODE_PROBE_TASK for task, _start, _end in timeline.tasks)
    recorded = node.replicas(PROJECT)
    if len(recorded.get("web", [])) != web_replicas or any(
            r["state"] not in guest_apply.RUNNING for rows in recorded.values() for r in rows):
        raise one_node.RunFailed(f"replicas recorded after the update: {recorded}")
    return {"total": running - began, "scheduling": applied - began, "ansible": running - timeline.started,
            "ansible_startup": timeline.first_task_start() - timeline.started,
            "checks": apps_start - timeline.first_task_start(), "guest_apps": running - apps_start,
            "status_tail": timeline.finished - running, "fast_path": fast_path}


def measure_floor(conn, work, oci_dir, args):
    """Seconds guest_init alone takes for each of the same updates, in a directly booted VM."""
    with guest_apply.GuestVm(conn, work, oci_dir) as guest:
        guest.apply_until_running(apps(args.replicas, 0))
        return [guest.apply_until_running(apps(args.replicas + run, run)) for run in range(1, args.runs + 1)]


def report(rows, floors, args):
    medians = {key: statistics.median(row[key] for row in rows) for key in ROWS}
    floor_s = statistics.median(floors)
    print(f"{'':<16}{'median s':>10}  runs")
    for key in ROWS:
        print(f"{key:<16}{medians[key]:>10.2f}  " + " ".join(f"{row[key]:.2f}" for row in rows))
    print(f"fast path (apps.yml) in {sum(row['fast_path'] for row in rows)} of {len(rows)} runs")
    print(f"floor: guest_init alone {floor_s:.2f} s (runs: {' '.join(f'{f:.2f}' for f in floors)})")
    met = medians["total"] <= TARGET_S
    print(f"target: total <= {TARGET_S} s: {medians['total']:.2f} s, {'met' if met else 'MISSED'}")
    print(json.dumps({
        **{f"{key}_s": round(medians[key], 3) for key in ROWS}, "floor_guest_init_s": round(floor_s, 3),
        "target_s": TARGET_S, "runs": args.runs, "fast_path_runs": sum(row["fast_path"] for row in rows),
        "replicas_before": args.replicas, "nproc": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2)}, sort_keys=True))


def main(argv=None):
    args = parse_args(argv)
    rows = []
    with one_node.OneNode("warm") as node:
        node.reconciler.apps_fast_path = not args.full
        node.apply(document(node.node, args.replicas, 0))
        node.reconcile(node.domain(PROJECT))  # the VM boots: not timed
        vm_id = domain_id(node.conn, node.domain(PROJECT))
        for run in range(1, args.runs + 1):
            rows.append(warm_update(node, args.replicas + run, run))
            print(f"run {run}: total {rows[-1]['total']:.2f} s", file=sys.stderr)
        if domain_id(node.conn, node.domain(PROJECT)) != vm_id:
            raise one_node.RunFailed("the project VM was restarted during the updates")
        work = Path(tempfile.mkdtemp(prefix="floor-", dir=node.root))
        work.chmod(0o711)
        floors = measure_floor(node.conn, work, node.oci_dir, args)
        report(rows, floors, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
