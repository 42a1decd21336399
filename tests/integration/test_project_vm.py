"""goship.core.project_vm against the real libvirt daemon: converge, check mode, diff, stop, absent."""

import json
import os
import subprocess
import uuid

import libvirt
import pytest

from ansible_play import run_tasks

NODE = "testpvm"
PROJECT = "alpha"
DOMAIN = f"goship-{NODE}-{PROJECT}"


@pytest.fixture
def vm_args(guest_image, qemu_tmp):
    tmp_path = qemu_tmp
    guest_image_dir = guest_image[0]
    state_root = tmp_path / "state"
    state_root.mkdir()
    args = {"project": PROJECT, "node": NODE, "state_root": str(state_root), "image_dir": str(guest_image_dir),
            "virt_type": "qemu", "memory_mib": 256}
    yield args
    conn = libvirt.open("qemu:///system")
    try:
        dom = conn.lookupByName(DOMAIN)
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    except libvirt.libvirtError:
        pass
    finally:
        conn.close()


def vm(args, **overrides):
    merged = dict(args)
    merged.update(overrides)
    return {"goship.core.project_vm": merged}


def inactive_memory_kib():
    conn = libvirt.open("qemu:///system")
    try:
        return conn.lookupByName(DOMAIN).maxMemory()
    finally:
        conn.close()


def test_define_converge_check_diff_and_remove(vm_args):
    first, again = run_tasks([vm(vm_args, state="present"), vm(vm_args, state="present")])
    assert first["changed"] is True and again["changed"] is False, again["differences"]
    assert again["state"] == "shut off"

    (check,) = run_tasks([vm(vm_args, state="present", memory_mib=384)], check=True, diff=True)
    assert check["changed"] is True
    assert check["differences"] == [{"item": "memory_kib", "before": 262144, "after": 393216}]
    diff = check["diff"][0] if isinstance(check["diff"], list) else check["diff"]
    assert "262144" in diff["before"] and "393216" in diff["after"]
    assert inactive_memory_kib() == 262144, "check mode changed the domain"

    real, real_again = run_tasks([vm(vm_args, state="present", memory_mib=384)] * 2)
    assert real["changed"] is True and real_again["changed"] is False
    assert inactive_memory_kib() == 393216

    state_dir = os.path.join(vm_args["state_root"], "vms", DOMAIN)
    assert os.stat(state_dir).st_mode & 0o777 == 0o711
    gone, gone_again = run_tasks([vm(vm_args, state="absent")] * 2)
    assert (gone["changed"], gone_again["changed"]) == (True, False)
    assert not os.path.exists(state_dir)


def test_run_generation_live_restart_required_stop(vm_args):
    (started,) = run_tasks([vm(vm_args, state="running", wait_for_guest=True, guest_timeout=300)], timeout=900)
    assert started["changed"] and started["state"] == "running", started
    assert started["guest"]["protocol_version"] == 1

    one, every = run_tasks([{"goship.core.guest_status": {"project": PROJECT, "node": NODE, "state_root": vm_args["state_root"]}},
                            {"goship.core.guest_status": {"state_root": vm_args["state_root"]}}], check=True)
    assert one["vms"][0]["reachable"] and one["vms"][0]["status"]["pid"] == 1, one
    assert one["vms"][0]["generation"] == 0 and one["changed"] is False
    assert DOMAIN in [vm["domain"] for vm in every["vms"]]

    bump, resize = run_tasks([vm(vm_args, generation=1), vm(vm_args, generation=1, memory_mib=320)])
    assert bump["changed"] and bump["restart_required"] is False and bump["differences"][0]["item"] == "metadata.generation"
    assert resize["changed"] and resize["restart_required"] is True and resize["state"] == "running"

    stopped, stopped_again = run_tasks([vm(vm_args, generation=1, memory_mib=320, state="stopped")] * 2, timeout=300)
    assert stopped["changed"] and stopped["state"] == "shut off" and stopped["shutdown"] == "shut down", stopped
    assert stopped_again["changed"] is False


def test_foreign_domain_is_never_touched(vm_args):
    conn = libvirt.open("qemu:///system")
    xml = f"""<domain type='qemu'><name>{DOMAIN}</name><uuid>{uuid.uuid4()}</uuid><memory unit='MiB'>64</memory>
    <os><type arch='x86_64'>hvm</type></os></domain>"""
    conn.defineXML(xml)
    try:
        (result,) = run_tasks([vm(vm_args, state="absent")])
        assert result["failed"] and "no GoShip metadata" in result["msg"]
        assert conn.lookupByName(DOMAIN).maxMemory() == 65536
    finally:
        conn.lookupByName(DOMAIN).undefine()
        conn.close()


def test_bad_input_fails_before_libvirt(vm_args):
    (topology,) = run_tasks([vm(vm_args, vcpus=2, topology={"sockets": 1, "cores": 1, "threads": 1})])
    assert topology["failed"] and topology["msg"].startswith("topology:")
    (memory,) = run_tasks([vm(vm_args, memory_mib=10 ** 9)])
    assert memory["failed"] and memory["msg"].startswith("memory_mib:")
    (name,) = run_tasks([vm(vm_args, project="Bad_Name")])
    assert name["failed"] and name["msg"].startswith("project:")
    conn = libvirt.open("qemu:///system")
    try:
        assert DOMAIN not in [d.name() for d in conn.listAllDomains()]
    finally:
        conn.close()


def test_disk_image_boot_uses_a_qcow2_overlay_on_a_shared_base(vm_args, qemu_tmp):
    base = qemu_tmp / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
    base.chmod(0o644)
    args = dict(vm_args, boot={"disk_image": str(base)}, state="present")
    first, again = run_tasks([vm(args), vm(args)])
    assert first["changed"] and again["changed"] is False, again["differences"]
    overlay = os.path.join(vm_args["state_root"], "vms", DOMAIN, "root.qcow2")
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-U", overlay],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and info["backing-filename"] == str(base)
    conn = libvirt.open("qemu:///system")
    try:
        xml = conn.lookupByName(DOMAIN).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    finally:
        conn.close()
    assert "<kernel>" not in xml and overlay in xml
    (back_to_kernel,) = run_tasks([vm(vm_args, state="present")], check=True)
    assert {d["item"] for d in back_to_kernel["differences"]} >= {"os.kernel", "disk.vda.source"}
    (gone,) = run_tasks([vm(vm_args, state="absent")])
    assert gone["changed"] and not os.path.exists(overlay) and base.exists()
    (missing,) = run_tasks([vm(vm_args, boot={"disk_image": str(qemu_tmp / "nope.qcow2")})])
    assert missing["failed"] and missing["msg"].startswith("boot.disk_image:")
