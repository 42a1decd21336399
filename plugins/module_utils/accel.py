# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Choose the accelerator for project VMs: KVM only when it really runs guest code, else TCG.

``/dev/kvm`` can exist and open fine, and a KVM guest can even run its firmware, yet hang
for good in the first CPU-bound stretch of code (seen on nested hosts: the Linux kernel
never gets through its decompressor). So the probe boots a tiny long-mode image (source:
tests/unit/data/accel_probe.S) that spins 50 million iterations and then prints a marker,
with a deadline; on timeout the whole QEMU process group is killed. The same probe under
TCG finishes in about 0.3 s, which is what shows that the probe can tell the two apart.

The choice is cached per host boot (``/proc/sys/kernel/random/boot_id``) in
``<state_root>/accel.json``: KVM does not start or stop working without a reboot.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass

QEMU_BINARY = 'qemu-system-x86_64'
KVM_DEVICE = '/dev/kvm'
BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id'
CACHE_NAME = 'accel.json'
DEFAULT_TIMEOUT = 5.0
PROBE_MARKER = b'GOSHIP-ACCEL-PROBE-OK'
# Multiboot image assembled from tests/unit/data/accel_probe.S (a unit test keeps them equal).
PROBE_IMAGE = bytes.fromhex(
    '02b0ad1b00000100fe4f51e40000100000001000000000000000000020001000bf0000070031c0b9000c0000f3abc705'
    '0000070003100700c7050010070003200700c7050020070083000000b8000007000f22d80f20e083c8200f22e0b98000'
    '00c00f320d000100000f300f20c00d000000800f22c00f0115c0001000ea840010000800b980f0fa02ffc975fc66ba02'
    '04488d352e000000b916000000f36e66baf40030c0eef4ebfd8db426000000000000000000000000ffff0000009aaf00'
    '0f00b0001000474f534849502d414343454c2d50524f42452d4f4b0a'
)


@dataclass(frozen=True)
class ProbeResult:
    accel: str
    ok: bool
    seconds: float
    detail: str


@dataclass(frozen=True)
class AccelChoice:
    """``accel`` is QEMU's name (kvm, tcg); ``virt_type`` is libvirt's domain type for it."""

    accel: str
    reason: str
    boot_id: str
    qemu: str

    @property
    def virt_type(self):
        return 'kvm' if self.accel == 'kvm' else 'qemu'


def probe_command(qemu, accel, image, debug_log):
    return [
        qemu, '-accel', accel, '-machine', 'pc', '-m', '16', '-nodefaults', '-no-user-config',
        '-display', 'none', '-no-reboot', '-kernel', image,
        '-chardev', 'file,id=debug,path=%s' % debug_log, '-device', 'isa-debugcon,iobase=0x402,chardev=debug',
        '-device', 'isa-debug-exit,iobase=0xf4,iosize=1',
    ]


def run_probe(accel, qemu=QEMU_BINARY, timeout=DEFAULT_TIMEOUT):
    """Boot the probe image under ``accel``; ok when QEMU printed the marker and exited in time."""
    with tempfile.TemporaryDirectory(prefix='goship-accel-') as workdir:
        image = os.path.join(workdir, 'probe.bin')
        debug_log = os.path.join(workdir, 'debugcon.log')
        with open(image, 'wb') as handle:
            handle.write(PROBE_IMAGE)
        started = time.monotonic()
        try:
            process = subprocess.Popen(  # pylint: disable=consider-using-with
                probe_command(qemu, accel, image, debug_log), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            return ProbeResult(accel, False, 0.0, 'cannot run %s: %s' % (qemu, exc))
        try:
            stderr = process.communicate(timeout=timeout)[1]
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return ProbeResult(accel, False, time.monotonic() - started,
                               'no result within %.1f s: the vCPU does not run guest code (process killed)' % timeout)
        seconds = time.monotonic() - started
        with open(debug_log, 'rb') as handle:
            printed = handle.read()
    if PROBE_MARKER in printed:
        return ProbeResult(accel, True, seconds, 'probe ran in %.2f s' % seconds)
    message = stderr.decode('utf-8', 'replace').strip().splitlines()
    return ProbeResult(accel, False, seconds, 'QEMU exited with status %s without the marker: %s'
                       % (process.returncode, message[-1] if message else 'no error output'))


def _kill_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()


def read_boot_id(path=BOOT_ID_PATH):
    with open(path, encoding='ascii') as handle:
        return handle.read().strip()


def detect(qemu=QEMU_BINARY, timeout=DEFAULT_TIMEOUT, boot_id=''):
    """Probe now, without the cache."""
    if not os.path.exists(KVM_DEVICE):
        return AccelChoice('tcg', '%s does not exist' % KVM_DEVICE, boot_id, qemu)
    if not os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        return AccelChoice('tcg', '%s is not readable and writable' % KVM_DEVICE, boot_id, qemu)
    if shutil.which(qemu) is None:
        return AccelChoice('tcg', '%s not found' % qemu, boot_id, qemu)
    result = run_probe('kvm', qemu, timeout)
    if result.ok:
        return AccelChoice('kvm', 'KVM ran the probe image: %s' % result.detail, boot_id, qemu)
    return AccelChoice('tcg', 'KVM probe failed: %s' % result.detail, boot_id, qemu)


def choose(state_root, qemu=QEMU_BINARY, timeout=DEFAULT_TIMEOUT, boot_id=None):
    """The accelerator for this host boot: from ``<state_root>/accel.json`` or a fresh probe."""
    boot_id = boot_id or read_boot_id()
    cache = os.path.join(state_root, CACHE_NAME)
    cached = _read_cache(cache)
    if cached is not None and cached.boot_id == boot_id and cached.qemu == qemu:
        return cached
    choice = detect(qemu, timeout, boot_id)
    _write_cache(cache, choice)
    return choice


def _read_cache(path):
    try:
        with open(path, encoding='utf-8') as handle:
            data = json.load(handle)
        return AccelChoice(**data)
    except (OSError, ValueError, TypeError):
        return None


def _write_cache(path, choice):
    """Atomic, mode 0600 like every GoShip state file."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix='.accel-', dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            json.dump(asdict(choice), handle, sort_keys=True)
            handle.write('\n')
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
