"""project_vm's primitives: options -> domain parts, and refusals (with fake host facts) that name the option."""

import pytest

from ansible_collections.goship.core.plugins.module_utils import vm_primitives as vp
from ansible_collections.goship.core.plugins.module_utils.domain_xml import DomainSpecError, stable_mac

ONLINE = [0, 1]
CELLS = [{"id": 0, "cpus": [0, 1], "memory_mib": 2048, "memory_free_mib": 1024}]
PAGES = {"2048": {"total": 512, "free": 300}, "1048576": {"total": 0, "free": 0}}
NO_CONFIDENTIAL = {"sev": False, "sev_es": False, "sev_snp": False, "tdx": False}
DOMCAPS_NONE = {"sev": {"supported": False, "cbitpos": None, "reduced_phys_bits": None}, "tdx": {"supported": False}}
DOMCAPS_SEV = {"sev": {"supported": True, "cbitpos": 51, "reduced_phys_bits": 1}, "tdx": {"supported": False}}


def refused(message, function, *args, **kwargs):
    with pytest.raises(DomainSpecError) as caught:
        function(*args, **kwargs)
    assert str(caught.value).startswith(message), str(caught.value)
    return str(caught.value)


def test_cpu_pinning_is_canonical_and_keys_may_be_strings():
    pinning = vp.cpu_pinning({"vcpus": {"1": "1", 0: "0,1"}, "emulator": "0-1,^1"}, 2, ONLINE)
    assert pinning.vcpus == ((0, "0-1"), (1, "1")) and pinning.emulator == "0"
    assert vp.cpu_pinning(None, 2, ONLINE) is None


def test_cpu_pinning_refusals_name_the_option():
    refused("cpu_pinning.vcpus.1: host CPU 7 does not exist (online: 0-1)", vp.cpu_pinning, {"vcpus": {1: "7"}}, 2, ONLINE)
    refused("cpu_pinning.vcpus.2: not a vCPU of this VM (vCPUs 0-1)", vp.cpu_pinning, {"vcpus": {2: "0"}}, 2, ONLINE)
    refused("cpu_pinning.emulator: cpuset 'x'", vp.cpu_pinning, {"emulator": "x"}, 2, ONLINE)
    refused("cpu_pinning.emulator: host CPU 2", vp.cpu_pinning, {"emulator": "1-2"}, 2, ONLINE)
    refused("cpu_pinning: give vcpus", vp.cpu_pinning, {"vcpus": {}}, 2, ONLINE)


def test_numa_nodeset():
    assert vp.numa_nodeset({"nodeset": "0"}, CELLS) == "0"
    refused("numa.nodeset: host NUMA node 1 does not exist (nodes: 0)", vp.numa_nodeset, {"nodeset": "0-1"}, CELLS)
    refused("numa.nodeset: host NUMA node 0 does not exist (nodes: none reported)", vp.numa_nodeset, {"nodeset": "0"}, [])


def test_memory_backing_hugepages_and_locking():
    backing = vp.memory_backing({"hugepages": {"size_kib": 2048}, "locked": True}, 512, PAGES)
    assert (backing.hugepage_kib, backing.locked, backing.hard_limit_mib) == (2048, True, 512 + vp.QEMU_OVERHEAD_MIB)
    assert vp.memory_backing({"locked": False}, 512, PAGES) is None
    assert vp.memory_backing(None, 512, PAGES, confidential=True).locked is True
    refused("memory_backing.hugepages.size_kib: the host has no 4096 KiB pages (sizes: 2048, 1048576)",
            vp.memory_backing, {"hugepages": {"size_kib": 4096}}, 512, PAGES)
    refused("memory_backing.hugepages.size_kib: memory_mib 500 is not a multiple of 1048576 KiB pages",
            vp.memory_backing, {"hugepages": {"size_kib": 1048576}}, 500, PAGES)
    refused("memory_backing.hard_limit_mib: 256 must exceed", vp.memory_backing, {"locked": True, "hard_limit_mib": 256}, 512, PAGES)


def test_free_hugepages_count_the_pages_a_running_vm_holds():
    backing = vp.memory_backing({"hugepages": {"size_kib": 2048}}, 1024, PAGES)
    refused("memory_backing.hugepages.size_kib: the VM needs 512 free 2048 KiB pages, the host has 300",
            vp.check_free_hugepages, backing, 1024, PAGES)
    vp.check_free_hugepages(backing, 1024, PAGES, held_pages=212)
    vp.check_free_hugepages(None, 1024, PAGES)


def test_nics_keep_macs():
    nics = vp.nics([{"type": "user", "port_forwards": [{"host_port": 18080, "guest_port": 8080}]},
                    {"type": "network", "network": "goship-alpha"},
                    {"type": "network", "network": "other", "mac": "52:54:00:AA:BB:CC"}],
                   "goship-n1-alpha", existing_network_macs=["52:54:00:01:02:03", "52:54:00:99:99:99"])
    assert nics[0].mac == stable_mac("goship-n1-alpha", 0)
    assert nics[0].port_forwards[0].host_address == "127.0.0.1" and nics[0].port_forwards[0].protocol == "tcp"
    assert nics[1].mac == "52:54:00:01:02:03", "a NIC without mac keeps the MAC libvirt gave it"
    assert nics[2].mac == "52:54:00:aa:bb:cc"
    assert vp.nics([{"type": "network", "network": "n"}], "goship-n1-alpha")[0].mac is None


@pytest.mark.parametrize("nic, message", [
    ({"type": "network"}, "nics[0].network: a libvirt network name is required"),
    ({"type": "user", "network": "x"}, "nics[0].network: only for type network"),
    ({"type": "network", "network": "n", "port_forwards": [{"host_port": 1, "guest_port": 1}]}, "nics[0].port_forwards: only a user NIC"),
    ({"type": "user", "mac": "52:54"}, "nics[0].mac:"),
    ({"type": "user", "port_forwards": [{"host_port": 0, "guest_port": 80}]}, "nics[0].port_forwards[0].host_port: 0 is not a port"),
    ({"type": "user", "port_forwards": [{"host_port": 80, "guest_port": 80, "host_address": "::1"}]},
     "nics[0].port_forwards[0].host_address:"),
    ({"type": "user", "port_forwards": [{"host_port": 80, "guest_port": 80}, {"host_port": 80, "guest_port": 81}]},
     "nics[0].port_forwards[1].host_port: 127.0.0.1:80/tcp is published twice"),
])
def test_nic_refusals(nic, message):
    refused(message, vp.nics, [nic], "goship-n1-alpha")


def test_firmware_uefi_finds_ovmf_and_puts_nvram_in_the_vm_dir():
    assert vp.firmware("bios", "/s/vms/d") is None
    uefi = vp.firmware("uefi", "/s/vms/d", exists=lambda path: "4M" not in path)
    assert uefi.loader == "/usr/share/OVMF/OVMF_CODE.fd" and uefi.nvram == "/s/vms/d/nvram.fd"
    refused("firmware: uefi needs OVMF (Debian package ovmf)", vp.firmware, "uefi", "/s/vms/d", exists=lambda path: False)


def test_data_disks_are_pool_volumes_after_the_other_disks():
    disks = vp.data_disks([{"name": "db", "size_gib": 4, "cache": "writeback"}, {"name": "logs", "size_gib": 1, "pool": "fast"}],
                          "goship-n1-alpha", "n1", first_target=2)
    assert [(d.pool, d.volume, d.target, d.serial, d.cache) for d in disks] == [
        ("goship-n1", "goship-n1-alpha-db.qcow2", "vdc", "data-db", "writeback"),
        ("fast", "goship-n1-alpha-logs.qcow2", "vdd", "data-logs", "none")]
    refused("data_disks[1].name: 'db' is used twice", vp.data_disks, [{"name": "db", "size_gib": 1}] * 2, "d", "n", 1)
    refused("data_disks[0].name:", vp.data_disks, [{"name": "Bad_Name", "size_gib": 1}], "d", "n", 1)
    refused("data_disks[0].size_gib:", vp.data_disks, [{"name": "a", "size_gib": 0}], "d", "n", 1)
    assert "<capacity unit='GiB'>4</capacity>" in vp.volume_xml("v.qcow2", 4)


def test_confidential_is_refused_with_what_the_host_reports():
    message = refused("confidential.type: sev-snp is not available on this host", vp.confidential,
                      {"type": "sev-snp"}, "q35", "uefi", NO_CONFIDENTIAL, DOMCAPS_NONE)
    assert "sev_snp=False" in message and "libvirt domain capabilities sev=no tdx=no" in message
    refused("confidential.type: tdx is not available", vp.confidential, {"type": "tdx"}, "q35", "uefi",
            dict(NO_CONFIDENTIAL, tdx=True), DOMCAPS_NONE)
    refused("confidential.type: sev is not available", vp.confidential, {"type": "sev"}, "q35", "uefi", NO_CONFIDENTIAL, None)
    sev_host = dict(NO_CONFIDENTIAL, sev=True)
    refused("confidential.type: sev needs machine q35", vp.confidential, {"type": "sev"}, "pc", "uefi", sev_host, DOMCAPS_SEV)
    refused("confidential.type: sev needs firmware uefi", vp.confidential, {"type": "sev"}, "q35", "bios", sev_host, DOMCAPS_SEV)
    refused("confidential.policy:", vp.confidential, {"type": "sev", "policy": "33"}, "q35", "uefi", sev_host, DOMCAPS_SEV)


def test_confidential_takes_cbitpos_from_domain_capabilities():
    sev = vp.confidential({"type": "sev"}, "pc-q35-7.2", "uefi", dict(NO_CONFIDENTIAL, sev=True), DOMCAPS_SEV)
    assert (sev.type, sev.policy, sev.cbitpos, sev.reduced_phys_bits) == ("sev", "0x0033", 51, 1)
    tdx = vp.confidential({"type": "tdx"}, "q35", "uefi", dict(NO_CONFIDENTIAL, tdx=True),
                          dict(DOMCAPS_NONE, tdx={"supported": True}))
    assert (tdx.type, tdx.policy, tdx.cbitpos) == ("tdx", None, None)
    assert vp.confidential(None, "pc", "bios", NO_CONFIDENTIAL, None) is None


def test_confidential_config_digest_is_checked_against_the_type():
    snp_host, tdx_host = dict(NO_CONFIDENTIAL, sev_snp=True), dict(NO_CONFIDENTIAL, tdx=True)
    snp_caps, tdx_caps = DOMCAPS_SEV, dict(DOMCAPS_NONE, tdx={"supported": True})
    snp = vp.confidential({"type": "sev-snp", "config_digest": "sha256:" + "ab" * 32}, "q35", "uefi", snp_host, snp_caps)
    assert snp.config_digest == bytes.fromhex("ab" * 32) and snp.config_digest_element[0] == "hostData"
    tdx = vp.confidential({"type": "tdx", "config_digest": "SHA384:" + "CD" * 48}, "q35", "uefi", tdx_host, tdx_caps)
    assert tdx.config_digest == bytes.fromhex("cd" * 48) and tdx.config_digest_element[0] == "mrConfigId"
    refused("confidential.config_digest: sev-snp takes sha256:<64 hex digits> (its hostData)", vp.confidential,
            {"type": "sev-snp", "config_digest": "sha384:" + "ab" * 48}, "q35", "uefi", snp_host, snp_caps)
    refused("confidential.config_digest: tdx takes sha384:<96 hex digits>", vp.confidential,
            {"type": "tdx", "config_digest": "sha384:" + "ab" * 47}, "q35", "uefi", tdx_host, tdx_caps)
    refused("confidential.config_digest: sev measures no host-provided data", vp.confidential,
            {"type": "sev", "config_digest": "sha256:" + "ab" * 32}, "q35", "uefi", dict(NO_CONFIDENTIAL, sev=True), DOMCAPS_SEV)
    refused("confidential.config_digest", vp.confidential,
            {"type": "sev-snp", "config_digest": "sha256:" + "ab" * 32 + "\n"}, "q35", "uefi", snp_host, snp_caps)
