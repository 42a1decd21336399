"""One ansible-runner run of a goship.core playbook against a DesiredState document.

Each run gets its own private data directory ``<work_dir>/runs/<ident>/`` (mode 0700):

- ``state/desired-state.yml`` (0600): the document, secrets included; deleted when the run ends;
- ``inventory/nodes.goship.yml``: the ``goship.core.goship`` configuration naming that file;
- ``artifacts/<ident>/``: what ansible-runner keeps (job_events, stdout, status, rc). Its
  ``command`` file, which ansible-runner fills with the whole process environment, is
  rewritten without the environment.

Only the last ``keep_runs`` run directories are kept. ``env/`` holds only ansible-runner's
``settings`` (``suppress_env_files``: extravars and envvars stay off the disk). Secret env values
of the document are masked in every event before ansible-runner writes it and in the saved output;
the modules' own ``no_log_values`` do not cover loop items, which carry the inventory's values.
ansible-runner never reads stdin here.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import yaml

from goship_ctl.collection import collections_path
from goship_ctl.reconciler.events import RunEvent, RunEventParser, mask_text, run_error, secret_values

DEFAULT_KEEP_RUNS = 20
DEFAULT_TIMEOUT_S = 1800
INVENTORY_FILE = "nodes.goship.yml"
STATE_FILE = "desired-state.yml"
CANCEL_CHECK_S = 1  # ansible-runner looks at cancel and the time limit this often


@dataclass
class RunResult:
    """What one run did; ``hosts`` maps node -> ``HostResult`` for every node in the limit."""

    ident: str
    status: str  # ansible-runner's: successful, failed, timeout, canceled
    rc: int | None
    duration_s: float
    artifact_dir: Path
    hosts: dict = field(default_factory=dict)


def playbook_path(name: str) -> Path:
    """``playbooks/<name>`` of the goship.core collection found on the collections path."""
    return collections_path() / "ansible_collections" / "goship" / "core" / "playbooks" / name


def search_path() -> str:
    """PATH with this Python's bin directory first: ansible-playbook of the same virtualenv."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])


class PlaybookRunner:
    """Runs playbooks of goship.core through ansible-runner, one private data dir per run."""

    def __init__(self, work_dir: Path, keep_runs: int = DEFAULT_KEEP_RUNS, forks: int = 10):
        self.work_dir = Path(work_dir)
        self.keep_runs = keep_runs
        self.forks = forks

    def run(self, document: dict, playbook: str, nodes: list[str], *, ident: str | None = None,
            extravars: dict | None = None, timeout_s: float = DEFAULT_TIMEOUT_S, cancel: threading.Event | None = None,
            on_event: Callable[[RunEvent], None] | None = None, watch: tuple[str, ...] = ()) -> RunResult:
        """Run ``playbook`` (a file name under the collection's playbooks/) limited to ``nodes``.

        ``ident``: the run's name (``new_ident()`` when not given). ``watch``: module names (FQCN)
        whose results each node's ``HostResult.module_results`` keeps.
        """
        # pylint: disable=import-outside-toplevel
        import ansible_runner  # slow to import; only runs need it

        ident = ident or new_ident()
        private = self._private_dir(ident)
        state_file = private / "state" / STATE_FILE
        secrets = secret_values(document)
        parser = RunEventParser(nodes, on_event, secrets, watch)
        started = time.monotonic()
        try:
            inventory = _write_inventory(private, state_file, document)
            _write_settings(private)
            runner = ansible_runner.run(
                private_data_dir=str(private), ident=ident, playbook=str(playbook_path(playbook)),
                project_dir=str(playbook_path(playbook).parent), inventory=str(inventory),
                limit=",".join(nodes), forks=min(self.forks, max(1, len(nodes))),
                envvars=_envvars(), extravars=extravars or {}, suppress_env_files=True, quiet=True,
                timeout=int(timeout_s), event_handler=parser.handle,
                cancel_callback=(cancel.is_set if cancel is not None else lambda: False))
            status, rc = runner.status, runner.rc
        finally:
            self.tidy(ident, secrets)
            self._rotate()
        artifact_dir = private / "artifacts" / ident
        why = "" if status == "successful" else run_error(_read(artifact_dir / "stdout"))
        return RunResult(ident=ident, status=status, rc=rc, duration_s=time.monotonic() - started,
                         artifact_dir=artifact_dir, hosts=parser.results(status, why))

    def private_path(self, ident: str) -> Path:
        return self.work_dir / "runs" / ident

    def tidy(self, ident: str, secrets: frozenset[str]) -> None:
        """Leave nothing sensitive in a run's directory: also for a run whose process died mid-run."""
        private = self.private_path(ident)
        (private / "state" / STATE_FILE).unlink(missing_ok=True)
        artifact_dir = private / "artifacts" / ident
        _drop_environment(artifact_dir / "command")
        _mask_files((artifact_dir / "stdout", artifact_dir / "stderr"), secrets)

    def _private_dir(self, ident: str) -> Path:
        runs = self.work_dir / "runs"
        runs.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.work_dir, 0o700)
        private = self.private_path(ident)
        for sub in ("", "state", "inventory"):
            (private / sub).mkdir(mode=0o700, exist_ok=True)
        return private

    def _rotate(self) -> None:
        runs = sorted((self.work_dir / "runs").iterdir())
        for old in runs[:-self.keep_runs] if self.keep_runs > 0 else runs:
            shutil.rmtree(old, ignore_errors=True)


def new_ident() -> str:
    """A run's name: sortable by start time (to the microsecond: runs can start within one second), unique."""
    return "%s-%s" % (datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%f"), uuid.uuid4().hex[:6])


def _write_settings(private: Path) -> None:
    """ansible-runner's settings; a ``settings=`` argument would be dropped when env/settings is absent."""
    (private / "env").mkdir(mode=0o700)
    (private / "env" / "settings").write_text(json.dumps({"pexpect_timeout": CANCEL_CHECK_S}), encoding="utf-8")


def _write_inventory(private: Path, state_file: Path, document: dict) -> Path:
    fd = os.open(state_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(document, handle, sort_keys=False)
    inventory = private / "inventory" / INVENTORY_FILE
    inventory.write_text(yaml.safe_dump({"plugin": "goship.core.goship", "state_file": str(state_file)}),
                         encoding="utf-8")
    return inventory


def _envvars() -> dict:
    """The inventory must fail the run, not reconcile nothing; goship.core from the collections path."""
    return {
        "PATH": search_path(),
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path()),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        # A GOSHIP_URL in the service's environment would give the plugin a second source.
        "GOSHIP_URL": "",
        "GOSHIP_TOKEN": "",
    }


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _mask_files(paths, secrets: frozenset[str]) -> None:
    """Secret values masked in the saved output too (modules mask them already; this is the backstop)."""
    for path in paths if secrets else ():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        masked = mask_text(text, secrets)
        if masked != text:
            path.write_text(masked, encoding="utf-8")


def _drop_environment(command_file: Path) -> None:
    """ansible-runner saves the whole environment next to the command: keep the command only."""
    try:
        saved = json.loads(command_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    command_file.write_text(json.dumps({"command": saved.get("command"), "cwd": saved.get("cwd")}),
                            encoding="utf-8")
