"""Virtualization primitives end to end through goship.core.project_vm and a real VM.

A VM with 2 vCPUs as 1 socket x 2 cores x 1 thread, both vCPUs and the emulator pinned, memory
placed on NUMA node 0, a 1 GiB data volume in a storage pool and a user-mode NIC that publishes
guest port 8080 on 127.0.0.1. A second run and a check-mode run report no change. From inside,
guest_init's status shows the CPUs, the data disk (by serial and size) and the NIC (by MAC); a
busybox httpd started as a `process` app answers on the published host port. Absent with
delete_data removes the volume.
"""

import socket
import time
import urllib.request

import libvirt
import pytest

from ansible_play import run_tasks
from ansible_collections.goship.core.plugins.module_utils import domain_xml
from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel

pytestmark = pytest.mark.integration

NODE = "testprim"
PROJECT = "alpha"
DOMAIN = f"goship-{NODE}-{PROJECT}"
POOL = f"goship-{NODE}"
VOLUME = f"{DOMAIN}-data.qcow2"
GUEST_PORT = 8080
HTTP_WAIT_S = 120.0
# The guest image configures no network (guest_init does not, yet): the app brings eth0 up with
# SLIRP's fixed guest address, which QEMU's hostfwd targets by default.
HTTPD = (f"busybox ip link set eth0 up && busybox ip addr add 10.0.2.15/24 dev eth0 && "
         f"busybox mkdir -p /tmp/www && echo primitives-ok > /tmp/www/index.html && "
         f"exec busybox httpd -f -h /tmp/www -p 0.0.0.0:{GUEST_PORT}")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def pool(libvirt_conn, qemu_tmp):
    """A transient directory pool as the node role would define it (QEMU can traverse it)."""
    directory = qemu_tmp / "pool"
    directory.mkdir(mode=0o711)
    pool = libvirt_conn.storagePoolCreateXML(
        f"<pool type='dir'><name>{POOL}</name><target><path>{directory}</path></target></pool>", 0)
    yield pool
    for name in pool.listVolumes():
        pool.storageVolLookupByName(name).delete(0)
    pool.destroy()


@pytest.fixture
def vm_args(guest_image, qemu_tmp, pool, libvirt_conn):
    state_root = qemu_tmp / "state"
    state_root.mkdir()
    args = {
        "project": PROJECT, "node": NODE, "state_root": str(state_root), "image_dir": str(guest_image[0]),
        "virt_type": "qemu", "memory_mib": 256, "vcpus": 2, "topology": {"sockets": 1, "cores": 2, "threads": 1},
        "cpu_pinning": {"vcpus": {0: "0", 1: "1"}, "emulator": "0-1"}, "numa": {"nodeset": "0"},
        "nics": [{"type": "user", "port_forwards": [{"host_port": free_port(), "guest_port": GUEST_PORT}]}],
        "data_disks": [{"name": "data", "size_gib": 1, "cache": "writeback"}],
    }
    yield args
    try:
        dom = libvirt_conn.lookupByName(DOMAIN)
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    except libvirt.libvirtError:
        pass


def vm(args, **overrides):
    return {"goship.core.project_vm": {**args, **overrides}}


def wait_http(url):
    deadline = time.monotonic() + HTTP_WAIT_S
    error = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return reply.read().decode()
        except OSError as exc:
            error = exc
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {HTTP_WAIT_S} s: {error}")


def wait_app_running(channel):
    deadline = time.monotonic() + HTTP_WAIT_S
    while True:
        app = channel.request("status")["apps"].get("web")
        if app and app["replicas"] and app["replicas"][0]["state"] in ("running", "ready"):
            return
        assert time.monotonic() < deadline, f"web app not running: {app}; logs {channel.request('logs', {'app': 'web'})}"
        time.sleep(0.2)


def test_topology_data_disk_and_published_port(vm_args, pool, libvirt_conn):
    started, again = run_tasks([vm(vm_args, state="running", wait_for_guest=True, guest_timeout=300),
                                vm(vm_args, state="running")], timeout=900)
    assert started["changed"] and started["state"] == "running", started
    assert again["changed"] is False, again["differences"]
    (checked,) = run_tasks([vm(vm_args, state="running")], check=True)
    assert checked["changed"] is False, checked["differences"]

    host_port = vm_args["nics"][0]["port_forwards"][0]["host_port"]
    volume = pool.storageVolLookupByName(VOLUME)
    assert volume.info()[1] == 1024 ** 3
    inactive = libvirt_conn.lookupByName(DOMAIN).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert "<vcpupin vcpu='1' cpuset='1'/>" in inactive and "<emulatorpin cpuset='0-1'/>" in inactive

    with GuestChannel(started["paths"]["channel"], timeout=30) as channel:
        guest = channel.request("status")["guest"]
        assert guest["cpus"] == 2, guest
        data = [dev for dev in guest["block_devices"] if dev["serial"] == "data-data"]
        assert data and data[0]["size_bytes"] == 1024 ** 3, guest["block_devices"]
        macs = [dev["mac"] for dev in guest["net_devices"]]
        assert domain_xml.stable_mac(DOMAIN, 0) in macs, guest["net_devices"]

        channel.request("apply", {"generation": 1, "apps": [
            {"name": "web", "runtime": "process", "image": "/", "command": ["busybox", "sh", "-c", HTTPD]}]})
        wait_app_running(channel)
        assert wait_http(f"http://127.0.0.1:{host_port}/index.html").strip() == "primitives-ok"
        up = [dev for dev in channel.request("status")["guest"]["net_devices"] if dev["name"] == "eth0"]
        assert up and up[0]["operstate"] in ("up", "unknown"), up

    gone, gone_again = run_tasks([vm(vm_args, state="absent", delete_data=True)] * 2, timeout=300)
    assert (gone["changed"], gone_again["changed"]) == (True, False)
    assert VOLUME not in pool.listVolumes()


def test_data_volume_survives_redefinition(vm_args, pool):
    first, resized = run_tasks([vm(vm_args, state="present"), vm(vm_args, state="present", memory_mib=320)])
    assert first["changed"] and resized["changed"]
    assert [d["item"] for d in resized["differences"]] == ["memory_kib"]
    key = pool.storageVolLookupByName(VOLUME).key()
    (kept,) = run_tasks([vm(vm_args, state="absent")])
    assert kept["changed"] and pool.storageVolLookupByName(VOLUME).key() == key, "absent without delete_data kept the volume"


def test_host_checks_name_the_option(vm_args, libvirt_conn):
    cases = [
        ({"cpu_pinning": {"vcpus": {1: "7"}}}, "cpu_pinning.vcpus.1: host CPU 7 does not exist (online: "),
        ({"cpu_pinning": {"vcpus": {5: "0"}}}, "cpu_pinning.vcpus.5: not a vCPU"),
        ({"numa": {"nodeset": "3"}}, "numa.nodeset: host NUMA node 3 does not exist"),
        ({"memory_backing": {"hugepages": {"size_kib": 4096}}}, "memory_backing.hugepages.size_kib: the host has no 4096 KiB pages"),
        ({"confidential": {"type": "sev-snp"}, "machine": "q35", "firmware": "uefi"}, "confidential.type: sev-snp is not available"),
        ({"nics": [{"type": "network"}]}, "nics[0].network:"),
    ]
    results = run_tasks([vm(vm_args, **overrides) for overrides, dummy in cases])
    for (overrides, message), result in zip(cases, results):
        assert result.get("failed") and result["msg"].startswith(message), (overrides, result.get("msg"))
    assert DOMAIN not in [d.name() for d in libvirt_conn.listAllDomains()]
