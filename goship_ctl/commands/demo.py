"""``goship-ctl demo`` (``make demo``): GoShip doing its job on this one machine.

The machine plays three simulated nodes (``demo1``..``demo3``): Ansible hosts with
``connection: local``, each with its own state root under ``--root``, all sharing this
machine's libvirtd. The demo runs the ordinary ``goship-ctl`` commands on a fresh embedded
store and checks after each step what it claims to prove. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from goship_ctl.errors import EXIT_ERROR, EXIT_OK

DEFAULT_ROOT = Path("/tmp/goship-demo")
NODES = ("demo1", "demo2", "demo3")
ZONES = ("a", "b", "c")
PROJECT, APP, IMAGE = "alpha", "web", "demo-web"
UP_STATES = ("running", "ready")
DEFAULT_TIMEOUT_S = 2400.0
RESTART_WAIT_S = 120.0
UPTIME_ATTEMPTS = 3
POLL_S = 2.0


class DemoFailed(RuntimeError):
    """A step did not show what it should."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the GoShip demo on this machine (3 simulated nodes)",
        description="Set this machine up as 3 simulated nodes, apply examples/alpha.yaml (6 containers in 3 VMs), "
                    "scale to 9 containers without restarting a VM, kill one container through guest_init and watch "
                    "it come back, then tear everything down.")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help="directory for the demo's store, node state roots and OCI image (default: %s; "
                             "recreated on every run)" % DEFAULT_ROOT)
    parser.add_argument("--keep", action="store_true", help="leave the VMs running at the end")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help="give up after this long (default: %d)" % DEFAULT_TIMEOUT_S)
    parser.set_defaults(run=run, prog=parser.prog)


def run(args: argparse.Namespace) -> int:
    demo = Demo(args.root.absolute(), time.monotonic() + args.timeout)
    started = time.monotonic()
    try:
        demo.run(keep=args.keep)
    except DemoFailed as exc:
        print("\ndemo FAILED: %s" % exc, flush=True)
        if not args.keep:
            demo.teardown_quietly()
        return EXIT_ERROR
    print("\ndemo finished in %.0f s%s" % (time.monotonic() - started,
                                           "; VMs left running (--keep)" if args.keep else ""), flush=True)
    return EXIT_OK


class Demo:
    def __init__(self, root: Path, deadline: float):
        self.root = root
        self.deadline = deadline
        self.data_dir = root / "ctl"
        self.example = _example_file()

    # -- the story ---------------------------------------------------------------------------
    def run(self, keep: bool) -> None:
        self.prepare()
        step = Steps(6 if keep else 7)
        step("guest image")
        self.ctl("image", "build")
        step.proves("the guest image (kernel, stage0 initrd, squashfs root with guest_init) is built from Debian "
                    "packages and reused while its inputs are unchanged")

        step("demo OCI image")
        self.build_oci_image()
        step.proves("apps are OCI images; %s is busybox httpd, packed into each VM's image disk by Ansible" % IMAGE)

        step("3 simulated nodes")
        for node, zone in zip(NODES, ZONES):
            self.ctl("node", "add", node, "--connection", "local", "--state-root", str(self.node_root(node)),
                     "--label", "zone=" + zone, "--vcpus", "1", "--memory-mib", "512", *self.node_vars())
        step.proves("a node is an Ansible host in the store (connection, state root, vars); each simulated node "
                    "offers 1 vCPU and 512 MiB of this machine")

        step("apply examples/alpha.yaml (project on 3 nodes, app %s at 2 replicas)" % APP)
        self.ctl("apply", "-f", str(self.example), "--wait", "--timeout", str(self.remaining()))
        self.ctl("status")
        before = self.check_replicas(2)
        uptimes = self.vm_uptimes()
        step.proves("the control service only computed desired state; ansible-runner ran reconcile.yml on the 3 "
                    "nodes, which booted 3 VMs, and guest_init started 2 containers in each: 6 running")

        step("scale %s to 3 replicas" % APP)
        started = time.monotonic()
        self.ctl("scale", PROJECT, APP, "3", "--wait", "--timeout", str(self.remaining()))
        self.ctl("status")
        after = self.check_replicas(3)
        self.check_no_vm_restart(uptimes, self.vm_uptimes(), time.monotonic() - started)
        kept = [key for key, restarts in before.items() if after.get(key) == restarts]
        if len(kept) != len(before):
            raise DemoFailed("replicas that ran before the scale changed: %s" % sorted(set(before) - set(kept)))
        step.proves("scaling adds a container in every running VM: 9 running, the 6 old ones untouched and no "
                    "VM restarted (uptimes kept growing)")

        step("kill replica 1 of %s on %s through guest_init" % (APP, NODES[0]))
        self.ctl("signal", PROJECT, APP, "--replica", "1", "--signal", "KILL", "--node", NODES[0])
        restarts = self.wait_for_restart(NODES[0], 1, after[(NODES[0], 1)])
        self.ctl("status", "-p", PROJECT)
        self.ctl("logs", PROJECT, APP, "--replica", "1", "--node", NODES[0], "--tail", "6")
        step.proves("the kill went CLI -> Ansible (signal.yml) -> guest_init's signal op, no SSH into the VM; "
                    "guest_init restarted the replica (restarts %d -> %d)" % (after[(NODES[0], 1)], restarts))

        if not keep:
            step("tear down")
            self.teardown()
            step.proves("deleting the project removes its VMs through the same reconcile: the nodes report no "
                        "GoShip VM left")

    # -- steps' pieces ------------------------------------------------------------------------
    def prepare(self) -> None:
        os.environ.pop("GOSHIP_URL", None)
        os.environ["GOSHIP_DATA_DIR"] = str(self.data_dir)
        print("GoShip demo: this machine plays %d simulated nodes (%s). Each is an Ansible host with\n"
              "connection: local and its own state root under %s/nodes/; they share this machine's\n"
              "libvirtd. Commands below use the embedded store GOSHIP_DATA_DIR=%s." % (
                  len(NODES), ", ".join(NODES), self.root, self.data_dir), flush=True)
        if (self.data_dir / "goship.db").exists():
            print("\nremoving what an earlier demo left (%s):" % self.root, flush=True)
            self.teardown_quietly()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        self.root.chmod(0o711)  # QEMU (user libvirt-qemu) opens disks under the node state roots
        closed = [str(path) for path in self.root.parents if not path.stat().st_mode & 0o001]
        if closed:
            raise DemoFailed("QEMU runs as an unprivileged user and cannot reach %s: %s is not searchable by "
                             "others (choose another --root)" % (self.root, closed[0]))

    def node_root(self, node: str) -> Path:
        return self.root / "nodes" / node

    def node_vars(self) -> list[str]:
        # pylint: disable=import-outside-toplevel
        from goship_ctl.image.paths import default_image_dir
        pairs = {"node_manage_packages": "false", "goship_image_dir": str(default_image_dir()),
                 "goship_oci_images_dir": str(self.root / "oci"), "ansible_python_interpreter": sys.executable}
        return [item for key, value in pairs.items() for item in ("--var", "%s=%s" % (key, value))]

    def build_oci_image(self) -> None:
        from goship_ctl.oci.busybox import build_busybox_image  # pylint: disable=import-outside-toplevel
        target = self.root / "oci" / IMAGE
        digest = build_busybox_image(target)
        for path in (self.root / "oci", target):
            path.chmod(0o755)
        print("OCI image layout %s (%s)" % (target, digest), flush=True)

    def ctl(self, *argv: str, allowed=(EXIT_OK,)) -> None:
        from goship_ctl.cli import main  # pylint: disable=import-outside-toplevel
        print("\n$ goship-ctl %s" % " ".join(argv), flush=True)
        code = main(list(argv))
        sys.stdout.flush()
        if code not in allowed:
            raise DemoFailed("goship-ctl %s exited with %d" % (" ".join(argv), code))

    def remaining(self) -> int:
        left = int(self.deadline - time.monotonic())
        if left <= 0:
            raise DemoFailed("out of time")
        return left

    def backend(self):
        # pylint: disable=import-outside-toplevel
        from goship_ctl.client.local import LocalBackend
        from goship_ctl.service.control import ControlService
        from goship_ctl.store.location import database_url
        return LocalBackend(ControlService.open(database_url(None, self.data_dir)))

    def replicas(self) -> dict[tuple[str, int], dict]:
        """(node, replica) -> instance of app web, as the store has it."""
        backend = self.backend()
        try:
            apps = [app for app in backend.list_apps(PROJECT) if app["name"] == APP]
        finally:
            backend.close()
        return {(item["node"], item["replica"]): item for app in apps for item in app["instances"]}

    def check_replicas(self, per_vm: int) -> dict[tuple[str, int], int]:
        """(node, replica) -> restarts, after checking that every VM runs ``per_vm`` replicas."""
        found = self.replicas()
        up = {key: item for key, item in found.items() if item["state"] in UP_STATES}
        wanted = {(node, index) for node in NODES for index in range(per_vm)}
        if set(up) != wanted:
            raise DemoFailed("expected %d running replicas (%d per VM), found %s" % (
                len(wanted), per_vm, sorted("%s/%d=%s" % (k[0], k[1], v["state"]) for k, v in found.items())))
        print("checked: %d containers running in %d VMs" % (len(up), len(NODES)), flush=True)
        return {key: item["restarts"] for key, item in up.items()}

    def reconciler(self):
        # pylint: disable=import-outside-toplevel
        from goship_ctl.reconciler.reconcile import Reconciler
        from goship_ctl.reconciler.trigger import PendingNodes
        from goship_ctl.service.control import ControlService
        from goship_ctl.store.location import database_url
        service = ControlService.open(database_url(None, self.data_dir))
        return service, Reconciler(service.sessions, PendingNodes(), self.data_dir / "reconcile")

    def refresh(self, nodes) -> dict:
        """Read the guests' state through status.yml (and record it); node -> HostResult."""
        service, reconciler = self.reconciler()
        try:
            return reconciler.refresh(list(nodes))
        finally:
            service.close()

    def vm_uptimes(self) -> dict[str, float]:
        """node -> uptime of the project VM there, in seconds, as guest_init reports it."""
        vms = {}
        for _attempt in range(UPTIME_ATTEMPTS):  # a guest busy right after boot may miss one status request
            for node, host in self.refresh(sorted(set(NODES) - set(vms))).items():
                for vm in host.guest_vms or []:
                    if vm.get("project") == PROJECT and vm.get("reachable"):
                        vms[node] = vm["status"]["uptime_s"]
                    elif vm.get("project") == PROJECT:
                        print("VM %s did not answer: %s" % (vm["domain"], vm.get("error")), flush=True)
            if set(vms) == set(NODES):
                return vms
            time.sleep(POLL_S)
        raise DemoFailed("could not read the uptime of every VM: %s" % vms)

    @staticmethod
    def check_no_vm_restart(before: dict[str, float], after: dict[str, float], elapsed: float) -> None:
        for node in NODES:
            print("VM goship-%s-%s uptime %.0f s -> %.0f s" % (node, PROJECT, before[node], after[node]), flush=True)
            if after[node] < before[node] + elapsed * 0.5:
                raise DemoFailed("the VM on %s restarted during the scale (uptime %.0f s -> %.0f s)" % (
                    node, before[node], after[node]))

    def wait_for_restart(self, node: str, index: int, restarts_before: int) -> int:
        deadline = min(self.deadline, time.monotonic() + RESTART_WAIT_S)
        while True:
            self.refresh([node])
            item = self.replicas().get((node, index)) or {}
            if item.get("restarts", 0) > restarts_before and item.get("state") in UP_STATES:
                print("checked: replica %d on %s is %s again after %d restart(s)" % (
                    index, node, item["state"], item["restarts"]), flush=True)
                return item["restarts"]
            if time.monotonic() >= deadline:
                raise DemoFailed("replica %d on %s did not come back in time: %s" % (index, node, item))
            time.sleep(POLL_S)

    def teardown(self) -> None:
        backend = self.backend()
        try:
            projects = [project["name"] for project in backend.list_projects()]
        finally:
            backend.close()
        for project in projects:
            self.ctl("delete", "project", project)
        self.ctl("reconcile", "--all", "--wait", "--timeout", str(max(60, int(self.deadline - time.monotonic()))))
        left = self.refresh(NODES)
        remaining = [vm["domain"] for host in left.values() for vm in host.guest_vms or []]
        if remaining:
            raise DemoFailed("VMs left after the teardown: %s" % ", ".join(remaining))
        print("checked: no GoShip VM left on %s" % ", ".join(NODES), flush=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def teardown_quietly(self) -> None:
        try:
            self.deadline = max(self.deadline, time.monotonic() + 600)
            self.teardown()
        except (DemoFailed, OSError) as exc:
            print("teardown failed too: %s" % exc, flush=True)


class Steps:
    """Numbered step headings and their "proves" lines."""

    def __init__(self, total: int):
        self.total = total
        self.count = 0
        self.started = time.monotonic()

    def __call__(self, title: str) -> None:
        self.count += 1
        print("\n=== [%d/%d] %s (%.0f s)" % (self.count, self.total, title, time.monotonic() - self.started), flush=True)

    @staticmethod
    def proves(text: str) -> None:
        print(">>> proves: " + text, flush=True)


def _example_file() -> Path:
    from goship_ctl.image.paths import REPO_ROOT  # pylint: disable=import-outside-toplevel
    example = REPO_ROOT / "examples" / "alpha.yaml"
    if not example.is_file():
        raise SystemExit("goship-ctl demo: %s not found: run the demo from a GoShip checkout (make demo)" % example)
    return example
