"""Control plane benchmark (issue 7): desired state, inventory and API latency at scale.

A fresh SQLite store (temp data dir) is filled with ``--nodes`` nodes (default 1,000) and
``--projects`` projects (default 10,000) of ``--apps`` apps each (default 3), every project
placed on ``--vms-per-project`` nodes (default 3, round robin: 30,000 VMs). The rows go in with
bulk inserts through the store's own models, because applying 10,000 projects one by one
through the scheduler would measure the scheduler instead; the document built from them is
still checked by the collection's validator, so it is one the inventory accepts.

Measured, ``--runs`` times each in this process (medians reported):

* ``compute_s``: ``goship_ctl.desired_state.compute`` over the store (queries + validation);
* ``inventory_s``: the goship.core.goship inventory plugin's ``parse`` (loaded by Ansible's
  plugin loader), reading that document as JSON from a loopback HTTP server in this process
  (fetch, JSON, validation, hosts, groups and variables). Target <= 2 s. Baseline:
  ``json_load_s``, plain ``json.loads`` of the same text;
* API latency under concurrent reads: a real ``goship-ctl serve`` on 127.0.0.1 (log level
  warning) on that store; an open-loop load of ``--rate`` requests/s (default 200) for
  ``--duration`` s per window, ``--api-windows`` windows, from ``--workers`` threads with
  keep-alive connections, cycling GET /api/v1/projects/{name}, .../{name}/apps and
  /api/v1/nodes/{name} for random names with an admin token. Latency counts from the
  moment a request was due, so a backlog shows. Target p99 <= 50 ms. Baseline: the same
  load on GET /healthz (no auth, one ``SELECT 1``), measured first. Before the load, each
  read route is also timed one request at a time (its unloaded service time).

Prints a table and, last, one JSON line. Run from the repo:
``.venv/bin/python bench/control_plane.py [--nodes 1000 --projects 10000 --apps 3]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The repo root first: bench/guest_init.py must not shadow the guest_init package.
sys.path.insert(0, str(REPO_ROOT))

# pylint: disable=wrong-import-position
from sqlalchemy import insert  # noqa: E402

from goship_ctl import desired_state  # noqa: E402
from goship_ctl.auth.principal import LOCAL_ADMIN  # noqa: E402
from goship_ctl.service.control import ControlService  # noqa: E402
from goship_ctl.store import models  # noqa: E402
from goship_ctl.store.location import database_url  # noqa: E402

COLLECTIONS_ROOT = REPO_ROOT / "build" / "collections"
GOSHIP_CTL = Path(sys.executable).parent / "goship-ctl"
TARGETS = {"inventory_s": 2.0, "api_p99_ms": 50.0}
SERVE_START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 10.0
WARMUP_REQUESTS = 50
SEQUENTIAL_REQUESTS = 30  # per route, one at a time
ROUTES = ("project", "project_apps", "node")  # the read routes, as read_paths cycles them
BATCH = 5000  # rows per bulk insert
ZONES = ("a", "b", "c")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--projects", type=int, default=10000)
    parser.add_argument("--apps", type=int, default=3, help="apps per project (default 3)")
    parser.add_argument("--vms-per-project", type=int, default=3, help="nodes each project is placed on (default 3)")
    parser.add_argument("--runs", type=int, default=3, help="runs of compute and inventory (default 3)")
    parser.add_argument("--rate", type=float, default=200.0, help="API requests per second (default 200)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per API window (default 5)")
    parser.add_argument("--api-windows", type=int, default=3, help="API windows per endpoint set (default 3)")
    parser.add_argument("--workers", type=int, default=8, help="client threads (default 8)")
    args = parser.parse_args(argv)
    if min(args.nodes, args.projects, args.apps, args.runs, args.api_windows, args.workers) < 1:
        parser.error("counts must be at least 1")
    if not 1 <= args.vms_per_project <= args.nodes:
        parser.error("--vms-per-project must be between 1 and --nodes")
    if args.rate <= 0 or args.duration <= 0:
        parser.error("--rate and --duration must be positive")
    return args


# -- the store -----------------------------------------------------------------------------
def node_name(index):
    return f"node{index:05d}"


def project_name(index):
    return f"proj{index:05d}"


def populate(service, args):
    """Bulk-insert the nodes, projects, apps and placements; return seconds taken."""
    started = time.monotonic()
    nodes = [{"id": i + 1, "name": node_name(i), "resource_version": 1,
              "connection": {"connection": "ssh", "host": f"{node_name(i)}.nodes.invalid", "user": "root",
                             "labels": {"zone": ZONES[i % len(ZONES)]}},
              "capacity_override": {"vcpus": 64, "memory_mib": 262144}, "status": "ready"}
             for i in range(args.nodes)]
    projects = [{"id": p + 1, "name": project_name(p), "placement": {"nodes": args.vms_per_project},
                 "vm": {"vcpus": 1, "memory_mib": 512}, "generation": 1, "resource_version": 1, "scheduled": True}
                for p in range(args.projects)]
    apps = [{"project_id": p + 1, "position": a, "name": f"app{a}", "replicas": 2,
             "spec": {"name": f"app{a}", "image": "demo-web", "replicas": 2, "ports": [8080 + a],
                      "env": {"GREETING": "hello", "APP_INDEX": str(a)}}}
            for p in range(args.projects) for a in range(args.apps)]
    placements = [{"project_id": p + 1, "node_id": (p * args.vms_per_project + v) % args.nodes + 1}
                  for p in range(args.projects) for v in range(args.vms_per_project)]
    with service.sessions.begin() as session:
        for model, rows in ((models.Node, nodes), (models.Project, projects), (models.App, apps),
                            (models.Placement, placements)):
            for start in range(0, len(rows), BATCH):
                session.execute(insert(model), rows[start:start + BATCH])
    return time.monotonic() - started


def compute_document(service):
    with service.sessions() as session:
        return desired_state.compute(session)


# -- the inventory plugin, in process --------------------------------------------------------
def load_inventory_plugin():
    """goship.core.goship as ansible-inventory loads it (Ansible's collection finder installed)."""
    # pylint: disable=import-outside-toplevel
    from ansible.plugins.loader import init_plugin_loader, inventory_loader
    init_plugin_loader([str(COLLECTIONS_ROOT)])
    return inventory_loader.get("goship.core.goship")


def parse_inventory(plugin, config_path):
    """Seconds for one parse, and the number of hosts it produced."""
    # pylint: disable=import-outside-toplevel
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader
    inventory = InventoryData()
    started = time.monotonic()
    plugin.parse(inventory, DataLoader(), str(config_path), cache=False)
    return time.monotonic() - started, len(inventory.hosts)


class DocumentServer:
    """Serves one JSON body at every GET on 127.0.0.1, in a thread of this process."""

    def __init__(self, body: bytes):
        body_bytes = body

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body_bytes)))
                self.end_headers()
                self.wfile.write(body_bytes)

            def log_message(self, format, *args):  # pylint: disable=redefined-builtin
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def measure_inventory(plugin, work, document, runs):
    text = json.dumps(document)
    loads = []
    for _run in range(runs):
        started = time.monotonic()
        json.loads(text)
        loads.append(time.monotonic() - started)
    parses, hosts = [], 0
    with DocumentServer(text.encode()) as server:
        config = work / "bench.goship.yml"
        config.write_text(f"plugin: goship.core.goship\nurl: {server.url}\ntoken: bench\ntimeout: 60\n")
        for _run in range(runs):
            seconds, hosts = parse_inventory(plugin, config)
            parses.append(seconds)
    return {"inventory_s": statistics.median(parses), "inventory_runs_s": parses, "inventory_hosts": hosts,
            "json_load_s": statistics.median(loads), "document_bytes": len(text)}


# -- the API under load ----------------------------------------------------------------------
def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_serve(data_dir, port, log_path):
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(GOSHIP_CTL), "serve", "--data-dir", str(data_dir), "--port", str(port),
                                 "--log-level", "warning"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + SERVE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"goship-ctl serve exited with {proc.returncode}:\n{Path(log_path).read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            time.sleep(0.1)
    stop_serve(proc)
    raise RuntimeError(f"goship-ctl serve did not answer within {SERVE_START_TIMEOUT_S} s")


def stop_serve(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def route_of(path):
    if path.startswith("/api/v1/nodes/"):
        return "node"
    return "project_apps" if path.endswith("/apps") else "project"


def read_paths(args, rng, count):
    """``count`` GET paths cycling over the three read routes, with random names."""
    paths = []
    for index in range(count):
        project = project_name(rng.randrange(args.projects))
        kind = index % 3
        if kind == 0:
            paths.append(f"/api/v1/projects/{project}")
        elif kind == 1:
            paths.append(f"/api/v1/projects/{project}/apps")
        else:
            paths.append(f"/api/v1/nodes/{node_name(rng.randrange(args.nodes))}")
    return paths


def load_window(port, token, paths, rate, workers):
    """Send ``paths`` open-loop at ``rate``/s; latencies (s) from each request's due time."""
    due_queue = queue.Queue()
    latencies, errors, lock = [], [], threading.Lock()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        while True:
            item = due_queue.get()
            if item is None:
                break
            due, path = item
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
                status = repr(exc)
            done = time.monotonic()
            with lock:
                latencies.append(done - due)
                if status != 200:
                    errors.append(f"{path}: {status}")
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _worker in range(workers)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    for index, path in enumerate(paths):
        due = started + index / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        due_queue.put((due, path))
    for _thread in threads:
        due_queue.put(None)
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT_S * 2)
    elapsed = time.monotonic() - started
    return latencies, errors, len(latencies) / elapsed


def sequential_ms(port, token, paths):
    """Median milliseconds of ``paths`` sent one at a time on one connection: the unloaded
    service time of a route."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    times = []
    try:
        for path in paths:
            started = time.monotonic()
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path}: HTTP {response.status}")
            times.append(time.monotonic() - started)
    finally:
        conn.close()
    return statistics.median(times) * 1000


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure_api(port, token, args, paths_for):
    """Median over the windows of p50, p99, max (ms) and the achieved rate; errors summed."""
    per_window, all_errors = [], []
    count = int(args.rate * args.duration)
    load_window(port, token, paths_for(WARMUP_REQUESTS), args.rate, args.workers)
    for _window in range(args.api_windows):
        latencies, errors, achieved = load_window(port, token, paths_for(count), args.rate, args.workers)
        all_errors.extend(errors)
        per_window.append((percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000,
                           max(latencies) * 1000, achieved, len(latencies)))
    return {"p50_ms": statistics.median(w[0] for w in per_window), "p99_ms": statistics.median(w[1] for w in per_window),
            "max_ms": statistics.median(w[2] for w in per_window), "rate": statistics.median(w[3] for w in per_window),
            "requests": sum(w[4] for w in per_window), "errors": len(all_errors), "error_sample": all_errors[:3],
            "windows": [[round(value, 2) for value in window[:4]] for window in per_window]}


# -- report ----------------------------------------------------------------------------------
def report(result, args):
    print(f"store: {args.nodes} nodes, {args.projects} projects x {args.apps} apps, "
          f"{args.projects * args.vms_per_project} VMs (bulk insert {result['populate_s']:.1f} s)")
    print(f"{'metric':<28} {'median':>10}  runs")
    print(f"{'compute_s':<28} {result['compute_s']:>10.3f}  {' '.join(f'{v:.3f}' for v in result['compute_runs_s'])}")
    print(f"{'inventory_s':<28} {result['inventory_s']:>10.3f}  {' '.join(f'{v:.3f}' for v in result['inventory_runs_s'])}")
    print(f"{'json_load_s (baseline)':<28} {result['json_load_s']:>10.3f}")
    print(f"document: {result['document_bytes']} bytes, {result['inventory_hosts']} hosts")
    print(f"\n{'API load':<22} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>7} {'requests':>8} {'errors':>6}")
    for name in ("healthz", "reads"):
        api = result["api"][name]
        print(f"{name:<22} {api['p50_ms']:>8.1f} {api['p99_ms']:>8.1f} {api['max_ms']:>8.1f} {api['rate']:>7.1f} "
              f"{api['requests']:>8} {api['errors']:>6}")
        for sample in api["error_sample"]:
            print(f"  error: {sample}")
    print("one request at a time, median ms: " + ", ".join(f"{route} {ms:.1f}" for route, ms in result["sequential_ms"].items()))
    checks = {"inventory_s": result["inventory_s"], "api_p99_ms": result["api"]["reads"]["p99_ms"]}
    print("targets: " + ", ".join(f"{key} <= {limit} {'met' if checks[key] <= limit else 'MISSED'}"
                                  for key, limit in TARGETS.items()))
    summary = {
        "nodes": args.nodes, "projects": args.projects, "apps_per_project": args.apps,
        "vms": args.projects * args.vms_per_project, "runs": args.runs,
        "compute_s": round(result["compute_s"], 3), "inventory_s": round(result["inventory_s"], 3),
        "json_load_s": round(result["json_load_s"], 3), "document_bytes": result["document_bytes"],
        "inventory_hosts": result["inventory_hosts"],
        "api_rate": args.rate, "api_workers": args.workers,
        "api_p50_ms": round(result["api"]["reads"]["p50_ms"], 2), "api_p99_ms": round(result["api"]["reads"]["p99_ms"], 2),
        "api_rate_achieved": round(result["api"]["reads"]["rate"], 1), "api_requests": result["api"]["reads"]["requests"],
        "api_errors": result["api"]["reads"]["errors"],
        "healthz_p50_ms": round(result["api"]["healthz"]["p50_ms"], 2),
        "healthz_p99_ms": round(result["api"]["healthz"]["p99_ms"], 2),
        "sequential_ms": {route: round(ms, 2) for route, ms in result["sequential_ms"].items()},
        "nproc": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(summary, sort_keys=True))


def main(argv=None):
    args = parse_args(argv)
    # Before anything imports goship.core as a plain package (compute does): the finder refuses that.
    plugin = load_inventory_plugin()
    work = Path(tempfile.mkdtemp(prefix="goship-bench-cp-"))
    data_dir = work / "ctl"
    service = ControlService.open(database_url(None, data_dir))
    serve = None
    try:
        result = {"populate_s": populate(service, args)}
        computes, document = [], None
        for _run in range(args.runs):
            started = time.monotonic()
            document = compute_document(service)
            computes.append(time.monotonic() - started)
        result.update(compute_s=statistics.median(computes), compute_runs_s=computes)
        result.update(measure_inventory(plugin, work, document, args.runs))
        token = service.create_token(LOCAL_ADMIN, "bench", None)["token"]
        service.close()
        port = free_port()
        serve = start_serve(data_dir, port, work / "serve.log")
        rng = random.Random(7)
        result["sequential_ms"] = {
            route: sequential_ms(port, token, [path for path in read_paths(args, rng, SEQUENTIAL_REQUESTS * 3)
                                               if route_of(path) == route])
            for route in ROUTES}
        result["api"] = {
            "healthz": measure_api(port, token, args, lambda count: ["/healthz"] * count),
            "reads": measure_api(port, token, args, lambda count: read_paths(args, rng, count)),
        }
        report(result, args)
    finally:
        if serve is not None:
            stop_serve(serve)
        service.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
