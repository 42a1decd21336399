"""goship.core.host_info on this machine: real procfs/sysfs, real libvirt, the real KVM probe."""

import os

from ansible_play import run_tasks


def test_host_info_reports_this_node(tmp_path):
    (result,) = run_tasks([{"goship.core.host_info": {"state_root": str(tmp_path), "probe_timeout": 8}}], check=True)
    assert result["changed"] is False
    host = result["host"]
    assert host["cpu"]["logical_cpus"] == os.cpu_count()
    assert host["cpu"]["sockets"] * host["cpu"]["cores_per_socket"] * host["cpu"]["threads_per_core"] >= 1
    assert host["memory"]["total_mib"] > 1024
    assert host["accelerator"]["type"] in ("kvm", "qemu") and host["accelerator"]["reason"]
    assert host["libvirt"]["libvirt_version"].count(".") == 2 and host["libvirt"]["qemu_version"].startswith(("7.", "8.", "9."))
    assert any(m.startswith("pc-i440fx") for m in host["libvirt"]["machine_types"])
    assert set(host["confidential"]) >= {"sev", "sev_es", "sev_snp", "tdx"}
    cap = host["capacity"]
    assert cap["vcpus_free"] == cap["vcpus_total"] - cap["vcpus_allocated"] or cap["vcpus_free"] == 0
    assert result["ansible_facts"]["goship_host"]["cpu"] == host["cpu"]
