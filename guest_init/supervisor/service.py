"""The supervisor as guest_init sees it: set-up at boot, ops, status fields, stop at shutdown.

Boot order: (PID 1) mount the state and images disks, then the cgroup tree (guest_init moves
itself to init.scope), then the boot spec's verification against the measured digest
(guest_init/measured.py), then the initial spec: the config drive's when newer than the
persisted one, else the persisted one; only the config drive's when it was measured, none
when the verification failed. The Supervisor itself (spec validation, runtimes,
dataclasses, hashlib) is imported only once there is something to supervise, so a VM without
apps boots as fast as before.
"""

import collections

from guest_init import log, measured
from guest_init.ops import Arg
from guest_init.supervisor import cgroups, disks
from guest_init.supervisor.ops import SupervisorOps
from guest_init.supervisor.store import SpecStore, find_config_drive, initial_state, load_config_document

PID1_STATE_DIR = "/var/lib/goship-guest"
PID1_IMAGES_DIR = "/run/goship/images"
PID1_CGROUP_ROOT = "/sys/fs/cgroup"
STATE_DISK_SERIAL = "goship-state"
IMAGES_DISK_SERIAL = "goship-images"
RUNTIME_STATE_DIR = "/run/goship-guest"  # runtimes' scratch space when nothing is persisted

# state_dir None: nothing persisted; cgroup_root None: no cgroups (no limits, no cgroup stats);
# config None: look for a cidata volume (PID 1 only); measurement: a declared digest
# ("sha256:<hex>") used where no confidential platform holds one
Paths = collections.namedtuple("Paths", "state_dir images_dir cgroup_root config measurement",
                               defaults=(None, PID1_IMAGES_DIR, None, None, None))


def pid1_paths(cmdline):
    return Paths(PID1_STATE_DIR, PID1_IMAGES_DIR, PID1_CGROUP_ROOT, cmdline.get("goship.config"),
                 cmdline.get("goship.measurement"))


class SupervisorService:
    def __init__(self, loop, reaper, registry, paths):
        self.paths = paths
        self._loop = loop
        self._reaper = reaper
        self._cgroup_root = paths.cgroup_root
        self._cgroup_info = {"root": paths.cgroup_root, "controllers": []}
        self._store = SpecStore(paths.state_dir) if paths.state_dir else None
        self._supervisor = None
        self.guard = measured.BootGuard()  # unmeasured, everything allowed, until start() verifies
        self.ops = SupervisorOps(registry, self.supervisor, lambda: self._supervisor, self._cgroup_info)
        registry.add("attestation", self.attestation, nonce=Arg(str, required=True))

    def supervisor(self):
        """The Supervisor, made on first need."""
        if self._supervisor is None:
            from guest_init.supervisor.supervisor import Supervisor
            self._supervisor = Supervisor(self._loop, self._reaper, self._store, {
                "cgroup_root": self._cgroup_root, "images_dir": self.paths.images_dir,
                "state_dir": self.paths.state_dir or RUNTIME_STATE_DIR})
        return self._supervisor

    def status_fields(self):
        fields = self.ops.status_fields()
        fields.update(self.guard.hello_fields())
        return fields

    def attestation(self, args):
        return self.guard.attestation(args["nonce"])

    def start(self, is_pid1):
        if is_pid1:
            disks.mount_by_serial(STATE_DISK_SERIAL, self.paths.state_dir, "ext4", read_only=False)
            disks.mount_by_serial(IMAGES_DISK_SERIAL, self.paths.images_dir, "squashfs", read_only=True)
        self._prepare_cgroups(is_pid1)
        config = self.paths.config
        if config is None and is_pid1:
            config = find_config_drive()
        document = load_config_document(config)
        self.guard = self._verify(document)
        if self.guard.sealed:
            log.info("measured boot: %s: %s; starting no app" % (self.guard.state, self.guard.reason))
            return
        if self.guard.measured:
            log.info("measured boot: %s" % self.guard.reason)
        desired, from_config = initial_state(self._store, config, document, measured=self.guard.measured)
        if desired is not None:
            self.supervisor().apply(desired, persist=from_config)

    def _verify(self, document):
        try:
            provider = measured.detect(self.paths.measurement)
        except ValueError as exc:
            return measured.BootGuard(measured.INVALID, str(exc))
        return measured.verify(document, provider)

    def _prepare_cgroups(self, is_pid1):
        root = self._cgroup_root
        if root is None:
            return
        if not cgroups.available(root):
            log.info("no writable cgroup v2 at %s: running apps without limits" % root)
            self._cgroup_root = self._cgroup_info["root"] = None
            return
        try:
            self._cgroup_info["controllers"] = cgroups.prepare_tree(root, move_self=is_pid1)
        except OSError as exc:
            log.info("preparing cgroups under %s failed: %s" % (root, exc))

    def stop_all(self, deadline_s, then):
        if self._supervisor is None:
            then()
        else:
            self._supervisor.stop_all(deadline_s, then)
