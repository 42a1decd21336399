"""Several simulated nodes share one libvirtd, so a domain can vanish while another node's run
lists the GoShip domains (host_info, guest_status): it is left out, other errors still raise."""

import libvirt
import pytest

from ansible_collections.goship.core.plugins.module_utils import libvirt_host

GOSHIP = f"""<domain><name>goship-n1-alpha</name><memory unit='KiB'>524288</memory><vcpu>1</vcpu>
<metadata><goship:vm xmlns:goship='{libvirt_host.GOSHIP_NS}'><goship:project>alpha</goship:project>
<goship:node>n1</goship:node><goship:generation>2</goship:generation></goship:vm></metadata></domain>"""


def libvirt_error(code):
    error = libvirt.libvirtError("simulated")
    error.err = (code, 0, "simulated", 0, None, None, None, 0, 0)
    return error


class Domain:
    def __init__(self, xml=GOSHIP, error=None):
        self._xml, self._error = xml, error

    def XMLDesc(self, flags):  # pylint: disable=invalid-name  # libvirt's name
        if self._error is not None:
            raise self._error
        return self._xml

    def isActive(self):  # pylint: disable=invalid-name
        return 1


class Connection:
    def __init__(self, domains):
        self._domains = domains

    def listAllDomains(self):  # pylint: disable=invalid-name
        return self._domains


def test_a_domain_undefined_while_listing_is_left_out():
    conn = Connection([Domain(error=libvirt_error(libvirt.VIR_ERR_NO_DOMAIN)), Domain()])
    assert [(d["name"], d["active"]) for d in libvirt_host.goship_domains(conn)] == [("goship-n1-alpha", True)]
    assert libvirt_host.VIR_ERR_NO_DOMAIN == libvirt.VIR_ERR_NO_DOMAIN


def test_other_libvirt_errors_still_fail():
    with pytest.raises(libvirt.libvirtError):
        libvirt_host.goship_domains(Connection([Domain(error=libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR))]))
