"""Run goship.core modules for real through ansible-playbook and return their results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS_PATH = REPO / "build" / "collections"


def ansible_env(extra=None):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
    })
    env.update(extra or {})
    return env


class _NoAliasDumper(yaml.SafeDumper):
    """Repeated tasks must stay separate tasks, not YAML aliases of one."""

    def ignore_aliases(self, data):
        return True


def run_tasks(tasks, *, check=False, diff=False, timeout=600, extra_env=None):
    """Run ``tasks`` on localhost; return the per-task results of the single host, in order.

    A failed task does not raise: its result carries ``failed``. A playbook that cannot run
    at all (syntax, missing module) raises with ansible's output.
    """
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
    with tempfile.TemporaryDirectory(prefix="goship-play-") as tmp:
        playbook = Path(tmp) / "play.yml"
        playbook.write_text(yaml.dump(play, Dumper=_NoAliasDumper))
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(playbook)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        proc = subprocess.run(cmd, env=ansible_env(extra_env), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"ansible-playbook did not run (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return [task["hosts"]["localhost"] for task in report["plays"][0]["tasks"]]
