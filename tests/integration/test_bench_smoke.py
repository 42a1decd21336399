"""Every bench/ script runs end to end with tiny parameters and ends with its JSON line.

Not a measurement: it keeps the scripts working (a broken benchmark is found when it is
needed). Each script runs as a user would run it, from the repo with the venv's python.
"""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 900


def run_bench(script, *args):
    """The last stdout line of ``bench/<script>`` as JSON; the script must exit 0."""
    proc = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    lines = proc.stdout.strip().splitlines()
    assert len(lines) > 1, f"{script} printed no table:\n{proc.stdout}"
    return json.loads(lines[-1])


def test_reconcile_noop_bench():
    result = run_bench("reconcile_noop.py", "--nodes", "1,2", "--runs", "1")
    assert set(result["nodes"]) == {"1", "2"}
    for size in result["nodes"].values():
        assert size["changed_max"] == 0, "a no-op reconcile changed something"
        assert 0 < size["baseline_s"] < size["run_s"] and size["cpu_s"] > 0
    assert result["ratio_max_to_1"] > 0


def test_control_plane_bench():
    result = run_bench("control_plane.py", "--nodes", "5", "--projects", "20", "--runs", "1", "--rate", "40",
                       "--duration", "0.5", "--api-windows", "1", "--workers", "2")
    assert result["inventory_hosts"] == 5 and result["vms"] == 60
    assert result["api_errors"] == 0 and result["api_requests"] == 20
    assert 0 < result["api_p50_ms"] <= result["api_p99_ms"]
    assert result["compute_s"] > 0 and result["inventory_s"] > 0


def test_density_bench():
    result = run_bench("density.py", "--sizes", "1", "--runs", "1", "--memory-mib", "384")
    one = result["sizes"]["1"]
    assert 0 < one["boot_s"] <= one["ready_s"]
    assert one["qemu_rss_kib"] > 0 and one["guest_init_rss_kib"] > 0
    assert 0 < one["guest_in_use_kib"] < 384 * 1024


def test_cold_start_bench():
    result = run_bench("cold_start.py", "--runs", "1", "--replicas", "1")
    phases = result["phases_s"]
    assert all(seconds >= 0 for seconds in phases.values()) and phases["boot_to_hello"] > 0
    assert abs(sum(phases.values()) - result["total_s"]) < 0.01, "the phases must add up to the total"
    assert 0 < result["floor_boot_baseline_s"] < result["floor_s"] and result["ratio"] > 0


def test_warm_update_bench():
    result = run_bench("warm_update.py", "--runs", "1", "--replicas", "1")
    assert 0 < result["guest_apps_s"] < result["ansible_s"] <= result["total_s"]
    assert result["floor_guest_init_s"] > 0 and result["fast_path_runs"] == 1, "only apps changed: apps.yml"


def test_boot_bench():
    result = run_bench("boot.py", "--runs", "1")
    assert 0 < result["baseline_s"] and 0 < result["goship_s"] and result["ratio"] > 0
    assert result["image_bytes"] > 0 and result["guest_init_rss_kib"] > 0 and result["machine"] == "pc"


def test_guest_init_bench():
    result = run_bench("guest_init.py", "--apps", "2", "--replicas", "2", "--crashes", "2")
    assert result["noop_apply_restarts"] == 0
    assert result["restart_after_crash_ms"] > 0 and result["guest_init_rss_kib"] > 0
