"""Host facts from fixture procfs/sysfs trees and libvirt XML (no daemon)."""

from ansible_collections.goship.core.plugins.module_utils import host_facts, libvirt_host


def write(root, path, text):
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def two_socket_host(root):
    """2 sockets x 2 cores x 2 threads, 2 NUMA cells, SEV-SNP on kvm_amd."""
    write(root, "/proc/cpuinfo", "vendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9654\nflags\t\t: fpu svm sev sev_es sev_snp\n\n")
    write(root, "/sys/devices/system/cpu/online", "0-7\n")
    for cpu in range(8):
        package, core = cpu // 4, (cpu % 4) // 2
        topo = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
        write(root, topo + "physical_package_id", str(package))
        write(root, topo + "core_id", str(core))
        first = cpu - cpu % 2
        write(root, topo + "thread_siblings_list", f"{first}-{first + 1}")
    for node in range(2):
        write(root, f"/sys/devices/system/node/node{node}/cpulist", f"{node * 4}-{node * 4 + 3}")
        write(root, f"/sys/devices/system/node/node{node}/meminfo",
              f"Node {node} MemTotal:       8388608 kB\nNode {node} MemFree:        4194304 kB\n")
    write(root, "/proc/meminfo", "MemTotal:       16777216 kB\nMemFree:  1000 kB\nMemAvailable:   8388608 kB\n")
    write(root, "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "512")
    write(root, "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "256")
    write(root, "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "0")
    write(root, "/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages", "0")
    write(root, "/sys/module/kvm_amd/parameters/nested", "1")
    write(root, "/sys/module/kvm_amd/parameters/sev", "Y")
    write(root, "/sys/module/kvm_amd/parameters/sev_es", "Y")
    write(root, "/sys/module/kvm_amd/parameters/sev_snp", "N")
    write(root, "/sys/kernel/iommu_groups/0/type", "DMA")
    write(root, "/dev/kvm", "")


def test_cpu_topology_and_numa(tmp_path):
    two_socket_host(tmp_path)
    cpu = host_facts.cpu_facts(str(tmp_path))
    assert (cpu["sockets"], cpu["cores_per_socket"], cpu["threads_per_core"]) == (2, 2, 2)
    assert cpu["logical_cpus"] == 8 and cpu["virtualization"] == "svm"
    assert cpu["model"] == "AMD EPYC 9654" and cpu["flags_confidential"] == ["sev", "sev_es", "sev_snp"]
    cells = host_facts.numa_facts(str(tmp_path))
    assert [c["cpus"] for c in cells] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert cells[1]["memory_mib"] == 8192 and cells[1]["memory_free_mib"] == 4096


def test_memory_and_hugepages(tmp_path):
    two_socket_host(tmp_path)
    mem = host_facts.memory_facts(str(tmp_path))
    assert mem["total_mib"] == 16384 and mem["available_mib"] == 8192
    assert mem["hugepages"] == {"2048": {"total": 512, "free": 256}, "1048576": {"total": 0, "free": 0}}


def test_virtualization_flags(tmp_path):
    two_socket_host(tmp_path)
    virt = host_facts.virtualization_facts(str(tmp_path))
    assert virt["kvm_device"] and virt["kvm_module"] == "kvm_amd" and virt["nested"] is True
    assert virt["confidential"] == {"sev": True, "sev_es": True, "sev_snp": False, "tdx": False}
    assert virt["iommu"] == {"enabled": True, "groups": 1}


def test_bare_host_reports_none_not_guesses(tmp_path):
    virt = host_facts.virtualization_facts(str(tmp_path))
    assert virt["kvm_device"] is False and virt["nested"] is None and virt["kvm_module"] is None
    assert host_facts.hugepage_facts(str(tmp_path)) == {}


def test_cpu_list_parsing():
    assert host_facts.parse_cpu_list("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11]
    assert host_facts.parse_cpu_list("") == []


SEV_DOMCAPS = """<domainCapabilities><machine>pc-q35-7.2</machine><features>
<sev supported='yes'><cbitpos>51</cbitpos><reducedPhysBits>1</reducedPhysBits>
<maxGuests>15</maxGuests><maxESGuests>494</maxESGuests></sev></features></domainCapabilities>"""


def test_domain_capabilities_sev_and_absent_tdx():
    caps = libvirt_host.parse_domain_capabilities(SEV_DOMCAPS)
    assert caps["sev"] == {"supported": True, "cbitpos": 51, "reduced_phys_bits": 1, "max_guests": 15, "max_es_guests": 494}
    assert caps["tdx"] == {"supported": False} and caps["machine"] == "pc-q35-7.2"
    none = libvirt_host.parse_domain_capabilities("<domainCapabilities><features><sev supported='no'/></features></domainCapabilities>")
    assert none["sev"]["supported"] is False and none["sev"]["cbitpos"] is None


def test_machine_types_and_goship_domains():
    caps = """<capabilities><guest><arch name='x86_64'><machine canonical='pc-q35-7.2'>q35</machine>
    <machine>pc-i440fx-7.2</machine><domain type='qemu'><machine>microvm</machine></domain></arch></guest>
    <guest><arch name='i686'><machine>isapc</machine></arch></guest></capabilities>"""
    assert libvirt_host.parse_machine_types(caps) == ["microvm", "pc-i440fx-7.2", "pc-q35-7.2", "q35"]
    goship = f"""<domain><name>goship-n1-alpha</name><memory unit='KiB'>524288</memory><vcpu>2</vcpu>
    <metadata><goship:vm xmlns:goship='{libvirt_host.GOSHIP_NS}'><goship:project>alpha</goship:project>
    <goship:node>n1</goship:node><goship:generation>4</goship:generation></goship:vm></metadata></domain>"""
    assert libvirt_host.parse_goship_domain(goship) == {
        "name": "goship-n1-alpha", "project": "alpha", "node": "n1", "generation": 4, "vcpus": 2, "memory_mib": 512}
    assert libvirt_host.parse_goship_domain("<domain><name>other</name></domain>") is None
    assert libvirt_host.decode_version(9000000) == "9.0.0" and libvirt_host.decode_version(7002022) == "7.2.22"


def test_tsc_khz_only_where_cpuinfo_states_it(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir(exist_ok=True)
    flags = "fpu tsc constant_tsc nonstop_tsc tsc_known_freq hypervisor"
    (proc / "cpuinfo").write_text("processor\t: 0\ncpu MHz\t\t: 2596.150\nflags\t\t: %s\n" % flags)
    assert host_facts.tsc_khz(str(tmp_path)) == 2596000  # whole MHz: a stable kernel command line
    (proc / "cpuinfo").write_text("processor\t: 0\ncpu MHz\t\t: 2596.150\nflags\t\t: %s aperfmperf\n" % flags)
    assert host_facts.tsc_khz(str(tmp_path)) is None  # cpu MHz is a sampled current frequency
    (proc / "cpuinfo").write_text("processor\t: 0\ncpu MHz\t\t: 2596.150\nflags\t\t: fpu tsc\n")
    assert host_facts.tsc_khz(str(tmp_path)) is None  # no invariant TSC
    (proc / "cpuinfo").write_text("processor\t: 0\ncpu MHz\t\t: 2596.150\nflags\t\t: %s\n" % flags)
    (tmp_path / "sys/devices/system/cpu/cpu0/cpufreq").mkdir(parents=True)
    assert host_facts.tsc_khz(str(tmp_path)) is None  # a cpufreq driver moves cpu MHz
