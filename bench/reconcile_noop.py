"""No-op reconcile benchmark (issue 7): what does one reconcile cost as the node count grows?

For each N (default 1, 10, 50) the script writes a DesiredState document of N simulated
``connection: local`` nodes with no projects (own state_root each, under one temp dir) and
runs ``ansible-playbook playbooks/reconcile.yml`` on it: once untimed to converge (state
directories, storage pools), then ``--runs`` times timed, all in this process. A no-op run
still does everything a reconcile does to find out that nothing changed: libvirt daemons
checked, directories and the storage pool asserted, host_info, the VM list, guest_status.

The baseline, measured in the same run for each N, is ``ansible-playbook`` with an empty
play over the same inventory: start-up plus the goship.core.goship inventory. Per task, the
json callback's durations show where a run's time goes (largest N).

Prints a table and, last, one JSON line: medians per N (``run_s``, ``per_node_s``,
``baseline_s``), ``ratio_max_to_1`` and the settings. Target: 50 nodes <= 4 x 1 node.
Run as root from the repo: ``.venv/bin/python bench/reconcile_noop.py [--nodes 1,10,50] [--runs 3]``.
Cleans up the storage pools and directories it made, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import resource
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The repo root first: bench/guest_init.py must not shadow the guest_init package.
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "build" / "collections")]

# pylint: disable=wrong-import-position
import libvirt  # noqa: E402
import yaml  # noqa: E402

from ansible_collections.goship.core.plugins.module_utils import accel  # noqa: E402

LIBVIRT_URI = "qemu:///system"
COLLECTIONS_PATH = REPO_ROOT / "build" / "collections"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
PLAYBOOK = REPO_ROOT / "playbooks" / "reconcile.yml"
RUN_TIMEOUT_S = 1800
TARGET_RATIO = 4.0
TOP_TASKS = 8
EMPTY_PLAY = [{"name": "Start-up and inventory only", "hosts": "goship_nodes", "gather_facts": False, "tasks": []}]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--nodes", default="1,10,50", help="comma-separated node counts (default 1,10,50)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per node count (default 3)")
    parser.add_argument("--forks", type=int, default=10, help="ansible forks (default 10, as the reconciler)")
    parser.add_argument("--pipelining", action="store_true", help="run with ANSIBLE_PIPELINING=true")
    args = parser.parse_args(argv)
    try:
        args.nodes = [int(n) for n in args.nodes.split(",")]
    except ValueError:
        parser.error("--nodes takes integers, e.g. 1,10,50")
    if args.runs < 1 or args.forks < 1 or min(args.nodes) < 1:
        parser.error("--runs, --forks and every node count must be at least 1")
    return args


def node_names(prefix, count):
    return [f"{prefix}-{index}" for index in range(count)]


def desired_state(work, names):
    nodes = {name: {"connection": "local", "state_root": str(work / name),
                    "vars": {"node_manage_packages": False, "ansible_python_interpreter": sys.executable}}
             for name in names}
    return {"apiVersion": "goship/v1", "kind": "DesiredState", "nodes": nodes, "projects": {}}


def seed_accel_cache(work, names):
    """Every simulated node is this host: probe KVM once and give each node's state_root the
    result, instead of one QEMU probe per node in the converge run (accel.py caches per boot)."""
    probe_root = work / "probe"
    choice = accel.choose(str(probe_root))
    cached = probe_root / accel.CACHE_NAME
    for name in names:
        (work / name).mkdir(mode=0o711, exist_ok=True)
        shutil.copy2(cached, work / name / accel.CACHE_NAME)
    return choice


def ansible_env(args):
    env = dict(os.environ)
    env.update({"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH), "ANSIBLE_STDOUT_CALLBACK": "json",
                "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", "ANSIBLE_FORKS": str(args.forks),
                "ANSIBLE_PIPELINING": "true" if args.pipelining else "false",
                "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_NOCOLOR": "1"})
    return env


def children_cpu_s():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_playbook(inventory, playbook, args):
    """Wall seconds, CPU seconds (ansible and the modules it ran: user + system) and ansible's
    json report of one run; raises when the run failed."""
    cpu_before = children_cpu_s()
    started = time.monotonic()
    proc = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(inventory), str(playbook)], env=ansible_env(args),
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
    wall = time.monotonic() - started
    cpu = children_cpu_s() - cpu_before
    if proc.returncode != 0 or not proc.stdout.startswith("{"):
        raise RuntimeError(f"{playbook.name} failed (rc {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall, cpu, json.loads(proc.stdout)


def changed_count(report):
    return sum(stats["changed"] for stats in report["stats"].values())


def task_seconds(report):
    """[(seconds, task name)] of one run, from the json callback's task durations."""
    found = []
    for play in report["plays"]:
        for task in play["tasks"]:
            duration = task["task"]["duration"]
            if duration.get("end"):
                found.append((_iso_seconds(duration["end"]) - _iso_seconds(duration["start"]), task["task"]["name"]))
    return found


def _iso_seconds(stamp):
    from datetime import datetime  # pylint: disable=import-outside-toplevel
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def measure(work, count, args, prefix):
    names = node_names(prefix, count)
    directory = work / f"n{count}"
    directory.mkdir()
    (directory / "state.yml").write_text(yaml.safe_dump(desired_state(work, names)))
    inventory = directory / "nodes.goship.yml"
    inventory.write_text(yaml.safe_dump({"plugin": "goship.core.goship", "state_file": str(directory / "state.yml")}))
    empty = directory / "empty.yml"
    empty.write_text(yaml.safe_dump(EMPTY_PLAY))
    seed_accel_cache(work, names)
    run_playbook(inventory, PLAYBOOK, args)  # converge: directories, pools
    runs, cpus, baselines, changed, tasks = [], [], [], [], {}
    for _run in range(args.runs):
        baselines.append(run_playbook(inventory, empty, args)[0])
        wall, cpu, report = run_playbook(inventory, PLAYBOOK, args)
        runs.append(wall)
        cpus.append(cpu)
        changed.append(changed_count(report))
        for seconds, name in task_seconds(report):
            tasks.setdefault(name, []).append(seconds)
        print(f"{count} nodes: {wall:.2f} s, {cpu:.1f} CPU s (empty play {baselines[-1]:.2f} s)", file=sys.stderr)
    return {"nodes": count, "run_s": statistics.median(runs), "per_node_s": statistics.median(runs) / count,
            "cpu_s": statistics.median(cpus),
            "baseline_s": statistics.median(baselines), "changed_max": max(changed), "runs_s": runs,
            "tasks": {name: statistics.median(values) for name, values in tasks.items()}}


def remove_pools(conn, prefix):
    for pool in conn.listAllStoragePools():
        if pool.name().startswith(f"goship-{prefix}n"):
            if pool.isActive():
                pool.destroy()
            pool.undefine()


def report(results, args, accel_choice):
    print(f"{'nodes':>5} {'run s':>7} {'per node s':>10} {'CPU s':>7} {'CPU s/node':>10} {'empty play s':>12} {'changed':>7}  runs")
    for row in results:
        runs = " ".join(f"{value:.2f}" for value in row["runs_s"])
        print(f"{row['nodes']:>5} {row['run_s']:>7.2f} {row['per_node_s']:>10.3f} {row['cpu_s']:>7.1f} "
              f"{row['cpu_s'] / row['nodes']:>10.2f} {row['baseline_s']:>12.2f} "
              f"{row['changed_max']:>7}  {runs}")
    largest = max(results, key=lambda row: row["nodes"])
    print(f"\nslowest tasks at {largest['nodes']} nodes (median wall seconds of the task over all nodes):")
    for name, seconds in sorted(largest["tasks"].items(), key=lambda item: -item[1])[:TOP_TASKS]:
        print(f"  {seconds:7.2f}  {name}")
    smallest = min(results, key=lambda row: row["nodes"])
    ratio = largest["run_s"] / smallest["run_s"]
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"target: {largest['nodes']} nodes <= {TARGET_RATIO} x {smallest['nodes']} node(s): {ratio:.2f} x, {verdict}")
    summary = {
        "nodes": {str(row["nodes"]): {"run_s": round(row["run_s"], 3), "per_node_s": round(row["per_node_s"], 4),
                                      "baseline_s": round(row["baseline_s"], 3), "changed_max": row["changed_max"],
                                      "cpu_s": round(row["cpu_s"], 2)}
                  for row in results},
        "ratio_max_to_1": round(ratio, 3), "target_ratio": TARGET_RATIO, "runs": args.runs, "forks": args.forks, "pipelining": args.pipelining,
        "accel": accel_choice.virt_type, "nproc": os.cpu_count(), "loadavg_1m": os.getloadavg()[0],
    }
    print(json.dumps(summary, sort_keys=True))


def main(argv=None):
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="goship-bench-noop-", dir="/tmp"))
    work.chmod(0o711)
    prefix = "bn" + secrets.token_hex(2)
    conn = libvirt.open(LIBVIRT_URI)
    try:
        accel_choice = seed_accel_cache(work, [])
        results = [measure(work, count, args, f"{prefix}n{count}") for count in args.nodes]
        report(results, args, accel_choice)
    finally:
        remove_pools(conn, prefix)
        conn.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
