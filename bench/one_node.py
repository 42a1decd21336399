"""A control service with one simulated node, for the apply benchmarks (cold_start, warm_update).

``OneNode`` is the real path a user's ``goship-ctl apply`` takes, in this process: an
embedded store (SQLite) with one ``connection: local`` node whose state root is a scratch
directory, the GoShip guest image and the busybox ``demo-web`` OCI image, and the
ansible-runner ``Reconciler`` running ``playbooks/reconcile.yml``. A reconcile returns a
``Timeline``: when each task started and ended (ansible-runner events, as the reconciler
streams them) and when libvirt defined and started the project's domain (libvirt lifecycle
events, seen by this process). Teardown deletes every project, reconciles once more so the
node removes its VMs, undefines the node's storage pool and removes the scratch directory.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The repo root first: bench/guest_init.py must not shadow the guest_init package the image builder hashes.
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "build" / "collections"), str(REPO_ROOT / "tests" / "integration")]

# pylint: disable=wrong-import-position
import libvirt  # noqa: E402

import vm_harness  # noqa: E402
from ansible_collections.goship.core.plugins.module_utils import accel  # noqa: E402
from goship_ctl.auth.principal import LOCAL_ADMIN  # noqa: E402
from goship_ctl.image.build import build_image  # noqa: E402
from goship_ctl.image.paths import image_dir_for_tests  # noqa: E402
from goship_ctl.oci.busybox import build_busybox_image  # noqa: E402
from goship_ctl.reconciler.reconcile import Reconciler  # noqa: E402
from goship_ctl.reconciler.trigger import PendingNodes  # noqa: E402
from goship_ctl.service.control import ControlService  # noqa: E402
from goship_ctl.store.location import database_url  # noqa: E402

IMAGE = "demo-web"
NODE_CAPACITY = {"vcpus": 2, "memory_mib": 4096}
LIFECYCLE = {libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined", libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
             libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped", libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined"}


class RunFailed(RuntimeError):
    pass


@dataclass
class Timeline:
    """One reconcile run: wall-clock (``time.time``) marks of its tasks and of libvirt's events."""

    started: float
    finished: float = 0.0
    tasks: list[tuple[str, float, float]] = field(default_factory=list)  # (task, first start, last end)
    domain_events: dict[str, float] = field(default_factory=dict)  # first "defined"/"started"/... per kind

    def task(self, name: str) -> tuple[float, float]:
        """(start, end) of the task whose name is ``name``; RunFailed if the run had no such task."""
        for task, start, end in self.tasks:
            if task == name:
                return start, end
        raise RunFailed(f"the run has no task {name!r}; tasks: {[t[0] for t in self.tasks]}")

    def first_task_start(self) -> float:
        return min(start for _task, start, _end in self.tasks)


class OneNode:
    """Context manager: the service, the node (prepared by one untimed reconcile) and libvirt events."""

    def __init__(self, label: str, node: str = "bench1"):
        self.label = label
        self.node = node
        self.image_dir = image_dir_for_tests()
        self.root = self.oci_dir = self.service = self.reconciler = self.manifest = None
        self.conn = None
        self._domain_events: list[tuple[str, str, float]] = []
        self._events_lock = threading.Lock()
        self._loop_stop = threading.Event()

    # -- set-up and teardown ---------------------------------------------------------------
    def __enter__(self):
        try:
            self._open()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _open(self) -> None:
        self.manifest = build_image(self.image_dir).manifest
        self.root = Path(tempfile.mkdtemp(prefix=f"goship-bench-{self.label}-", dir="/tmp"))
        self.root.chmod(0o711)  # QEMU (libvirt-qemu) opens the disks under the node's state root
        oci = self.oci_dir = self.root / "oci"
        build_busybox_image(oci / IMAGE)
        for path in (oci, oci / IMAGE):
            path.chmod(0o755)
        state_root = self.root / "node"
        accel.choose(str(state_root))  # the KVM probe, cached per host boot, outside every timed run
        self._start_libvirt_events()
        self.service = ControlService.open(database_url(None, self.root / "ctl"))
        self.service.apply_node(LOCAL_ADMIN, {
            "name": self.node, "connection": "local", "state_root": str(state_root), "capacity": NODE_CAPACITY,
            "vars": {"node_manage_packages": False, "goship_image_dir": str(self.image_dir),
                     "goship_oci_images_dir": str(oci), "ansible_python_interpreter": sys.executable}})
        self.reconciler = Reconciler(self.service.sessions, PendingNodes(), self.root / "ctl" / "reconcile")
        self.reconcile()  # the node's directories, storage pool and facts: not part of any timed apply

    def __exit__(self, *exc_info):
        try:
            if self.service is not None:
                for project in self.service.list_projects(LOCAL_ADMIN):
                    self.service.delete_project(LOCAL_ADMIN, project["name"])
                if self.reconciler is not None:
                    self.reconcile()
        finally:
            if self.conn is not None:
                vm_harness.remove_goship_pools(self.conn, [self.node])
                self._loop_stop.set()
                self.conn.close()
            if self.service is not None:
                self.service.close()
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)

    def _start_libvirt_events(self) -> None:
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=self._run_libvirt_events, name="libvirt-events", daemon=True).start()
        self.conn = libvirt.open(vm_harness.LIBVIRT_URI)
        self.conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None)

    def _run_libvirt_events(self) -> None:
        while not self._loop_stop.is_set():
            libvirt.virEventRunDefaultImpl()

    def _on_lifecycle(self, _conn, domain, event, _detail, _opaque):
        kind = LIFECYCLE.get(event)
        if kind:
            with self._events_lock:
                self._domain_events.append((domain.name(), kind, time.time()))

    # -- what the benchmarks do ------------------------------------------------------------
    def domain(self, project: str) -> str:
        return f"goship-{self.node}-{project}"

    def apply(self, document: dict) -> dict:
        return self.service.apply_project(LOCAL_ADMIN, document)

    def reconcile(self, domain: str | None = None) -> Timeline:
        """One reconcile.yml run for the node; RunFailed unless it succeeded."""
        spans: dict[str, list[float]] = {}

        def on_event(event):
            span = spans.setdefault(event.task, [event.at, event.at])
            span[1] = max(span[1], event.at)

        with self._events_lock:
            self._domain_events.clear()
        timeline = Timeline(started=time.time())
        unsubscribe = self.reconciler.subscribe(on_event)
        try:
            hosts = self.reconciler.reconcile([self.node], {self.node: ["benchmark"]})
        finally:
            unsubscribe()
        timeline.finished = time.time()
        host = hosts.get(self.node)
        if host is None or host.result != "ok":
            raise RunFailed(f"reconcile of {self.node}: {host.result if host else 'no result'}: "
                            f"{host.message if host else ''}")
        timeline.tasks = [(task, start, end) for task, (start, end) in spans.items()]
        with self._events_lock:
            for name, kind, at in self._domain_events:
                if name == domain:
                    timeline.domain_events.setdefault(kind, at)
        return timeline

    def replicas(self, project: str) -> dict[str, list[dict]]:
        """app -> its replicas on the node, as the store recorded them after the last run."""
        return {app["name"]: [item for item in app["instances"] if item["node"] == self.node]
                for app in self.service.list_apps(LOCAL_ADMIN, project)}
