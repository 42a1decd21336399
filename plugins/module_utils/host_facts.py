# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Host facts read from procfs and sysfs: CPU topology, NUMA, memory, hugepages, IOMMU,
nested virtualization and the kernel's view of SEV / SEV-ES / SEV-SNP / TDX.

Every reader takes ``root`` (default ``/``) so tests can point it at a fixture tree.
Facts a host does not expose are ``None`` rather than guessed.
"""

from __future__ import annotations

import glob
import os
import re


def _read(root, path, default=None):
    try:
        with open(os.path.join(root, path.lstrip('/')), encoding='utf-8') as handle:
            return handle.read().strip()
    except OSError:
        return default


def _flag(value):
    """Kernel module parameters say Y/N or 1/0."""
    if value is None:
        return None
    return value.strip() in ('Y', 'y', '1')


def parse_cpu_list(text):
    """'0-3,8,10-11' -> [0, 1, 2, 3, 8, 10, 11]."""
    cpus = []
    for part in (text or '').split(','):
        part = part.strip()
        if not part:
            continue
        if '-' in part:
            low, high = part.split('-', 1)
            cpus.extend(range(int(low), int(high) + 1))
        else:
            cpus.append(int(part))
    return cpus


def parse_meminfo(text):
    """/proc/meminfo -> {key: kibibytes}."""
    values = {}
    for line in (text or '').splitlines():
        match = re.match(r'^(\S+):\s+(\d+)', line)
        if match:
            values[match.group(1)] = int(match.group(2))
    return values


def cpu_facts(root='/'):
    cpuinfo = _read(root, '/proc/cpuinfo', '')
    model = vendor = None
    flags = set()
    for line in cpuinfo.splitlines():
        key, dummy, value = line.partition(':')
        key = key.strip()
        if key == 'model name' and model is None:
            model = value.strip()
        elif key == 'vendor_id' and vendor is None:
            vendor = value.strip()
        elif key == 'flags' and not flags:
            flags = set(value.split())
    online = parse_cpu_list(_read(root, '/sys/devices/system/cpu/online', ''))
    packages, cores, siblings = set(), set(), {}
    for cpu in online:
        topo = '/sys/devices/system/cpu/cpu%d/topology/' % cpu
        package = _read(root, topo + 'physical_package_id', '0')
        core = _read(root, topo + 'core_id', str(cpu))
        packages.add(package)
        cores.add((package, core))
        siblings[cpu] = len(parse_cpu_list(_read(root, topo + 'thread_siblings_list', str(cpu))))
    sockets = len(packages) or 1
    threads = max(siblings.values()) if siblings else 1
    return {
        'model': model,
        'vendor': vendor,
        'logical_cpus': len(online),
        'online': online,
        'sockets': sockets,
        'cores_per_socket': max(1, len(cores) // sockets),
        'threads_per_core': threads,
        'virtualization': 'vmx' if 'vmx' in flags else 'svm' if 'svm' in flags else None,
        'flags_confidential': sorted(flags & {'sev', 'sev_es', 'sev_snp', 'tdx_host_platform'}),
    }


def numa_facts(root='/'):
    cells = []
    for node_dir in sorted(glob.glob(os.path.join(root, 'sys/devices/system/node/node[0-9]*')),
                           key=lambda path: int(path.rsplit('node', 1)[1])):
        node_id = int(node_dir.rsplit('node', 1)[1])
        rel = os.path.relpath(node_dir, root)
        meminfo = {}
        for line in (_read(root, rel + '/meminfo', '') or '').splitlines():
            match = re.match(r'^Node \d+ (\S+):\s+(\d+)', line)
            if match:
                meminfo[match.group(1)] = int(match.group(2))
        cells.append({
            'id': node_id,
            'cpus': parse_cpu_list(_read(root, rel + '/cpulist', '')),
            'memory_mib': meminfo.get('MemTotal', 0) // 1024,
            'memory_free_mib': meminfo.get('MemFree', 0) // 1024,
        })
    return cells


def hugepage_facts(root='/'):
    """{page size in KiB (as a string key): {'total': n, 'free': n}}."""
    pages = {}
    for page_dir in glob.glob(os.path.join(root, 'sys/kernel/mm/hugepages/hugepages-*kB')):
        size = os.path.basename(page_dir)[len('hugepages-'):-len('kB')]
        rel = os.path.relpath(page_dir, root)
        pages[size] = {
            'total': int(_read(root, rel + '/nr_hugepages', '0')),
            'free': int(_read(root, rel + '/free_hugepages', '0')),
        }
    return pages


def memory_facts(root='/'):
    meminfo = parse_meminfo(_read(root, '/proc/meminfo', ''))
    return {
        'total_mib': meminfo.get('MemTotal', 0) // 1024,
        'available_mib': meminfo.get('MemAvailable', meminfo.get('MemFree', 0)) // 1024,
        'hugepages': hugepage_facts(root),
    }


def kvm_module_params(root='/'):
    """Parameters of whichever KVM vendor module is loaded (kvm_intel or kvm_amd)."""
    for module in ('kvm_intel', 'kvm_amd'):
        base = '/sys/module/%s/parameters/' % module
        if os.path.isdir(os.path.join(root, base.lstrip('/'))):
            return module, lambda name, base=base: _read(root, base + name)
    return None, lambda name: None


def virtualization_facts(root='/'):
    module, param = kvm_module_params(root)
    iommu_groups = glob.glob(os.path.join(root, 'sys/kernel/iommu_groups/*'))
    return {
        'kvm_device': os.path.exists(os.path.join(root, 'dev/kvm')),
        'kvm_module': module,
        'nested': _flag(param('nested')),
        'iommu': {
            'enabled': bool(glob.glob(os.path.join(root, 'sys/class/iommu/*'))) or bool(iommu_groups),
            'groups': len(iommu_groups),
        },
        'confidential': {
            'sev': _flag(param('sev')) if module == 'kvm_amd' else False,
            'sev_es': _flag(param('sev_es')) if module == 'kvm_amd' else False,
            'sev_snp': _flag(param('sev_snp')) if module == 'kvm_amd' else False,
            'tdx': _flag(param('tdx')) if module == 'kvm_intel' else False,
        },
    }


def tsc_khz(root='/'):
    """The host's TSC frequency in kHz, when /proc/cpuinfo states it reliably: an invariant TSC
    (``constant_tsc`` and ``nonstop_tsc``) and a ``cpu MHz`` that does not move (no cpufreq driver,
    no APERF/MPERF sampling), so it is the kernel's calibrated ``cpu_khz``; rounded to whole MHz
    so that the kernel command line (a compared facet) stays the same. None otherwise.

    Under TCG a guest's TSC counts at the host's rate (measured: 2596.139 MHz in the guest,
    2596.150 on the host). Machine ``microvm`` has no HPET and no ACPI PM timer, so a guest
    kernel whose quick PIT calibration fails on a busy host has no reference left and hangs;
    ``tsc_early_khz=`` on its command line skips the calibration (docs/primitives.md).
    """
    cpuinfo = _read(root, '/proc/cpuinfo', '')
    flags_line = re.search(r'^flags\s*:(.*)$', cpuinfo, re.M)
    flags = set(flags_line.group(1).split()) if flags_line else set()
    mhz = re.search(r'^cpu MHz\s*:\s*([0-9.]+)$', cpuinfo, re.M)
    if mhz is None or not {'constant_tsc', 'nonstop_tsc'} <= flags:
        return None
    if 'aperfmperf' in flags or os.path.isdir(os.path.join(root, 'sys/devices/system/cpu/cpu0/cpufreq')):
        return None
    return int(round(float(mhz.group(1)))) * 1000
