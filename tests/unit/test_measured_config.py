"""Measured configuration (issue 9): the canonical form and digests, host and guest agreeing on
them, the platform providers (fake ioctls), the verification outcomes and the boot policy."""

import hashlib
import json
import struct

import pytest

from ansible_collections.goship.core.plugins.module_utils import nocloud_seed
from guest_init import measured, protocol
from guest_init.protocol import ProtocolError
from guest_init.supervisor import store

BOOT_SPEC = {
    "project": "vault", "node": "n1", "generation": 7,
    "apps": [{"name": "web", "image": "demo-web", "replicas": 2, "ports": [8080],
              "env": {"GREETING": "grüße ✓ 𝄞", "API_KEY": {"value": "s3cr3t", "secret": True}},
              "health": {"liveness": {"tcp": {}, "interval_s": 0.5}}}],
    "policy": {"apply": "locked", "signal": True, "logs": True, "shutdown": True},
}


def test_canonical_form_is_defined_byte_for_byte():
    document = {"b": [1, 2.5, None, True], "a": "é\n\"", "ä": {"z": 1, "y": -0.0}}
    assert measured.canonical_json(document) == b'{"a":"\\u00e9\\n\\"","b":[1,2.5,null,true],"\\u00e4":{"y":-0.0,"z":1}}'
    assert measured.canonical_json({"k": "𝄞"}) == b'{"k":"\\ud834\\udd1e"}'  # astral: a surrogate pair
    with pytest.raises(ValueError):
        measured.canonical_json({"x": float("nan")})


def test_host_and_guest_compute_the_same_bytes_and_digests():
    host = nocloud_seed.measured_digests(BOOT_SPEC)
    assert host["form"] == "goship-canonical-json-v1"
    assert nocloud_seed.measured_canonical_json(BOOT_SPEC) == measured.canonical_json(BOOT_SPEC)
    for algorithm in ("sha256", "sha384"):
        assert host[algorithm] == measured.digest(BOOT_SPEC, algorithm).hex()
        assert host[algorithm] == hashlib.new(algorithm, measured.canonical_json(BOOT_SPEC)).hexdigest()


def test_the_digest_of_the_seed_is_the_digest_of_what_guest_init_reads(tmp_path):
    """End to end without a VM: the ISO the host writes, read back by guest_init's own ISO reader."""
    iso = tmp_path / "seed.iso"
    nocloud_seed.write_iso(str(iso), nocloud_seed.build_seed_files("i-1", "vault-n1", goship=BOOT_SPEC))
    document = store.read_config_document(str(iso))
    assert document == BOOT_SPEC
    assert measured.digest(document, "sha256").hex() == nocloud_seed.measured_digests(BOOT_SPEC)["sha256"]


def test_declared_digests_are_parsed_strictly():
    assert measured.parse_declared("sha256:" + "ab" * 32) == ("sha256", bytes.fromhex("ab" * 32))
    assert measured.parse_declared("SHA384:" + "CD" * 48)[0] == "sha384"
    for bad in ("sha256:" + "ab" * 31, "sha384:" + "ab" * 32, "md5:" + "ab" * 16, "sha256:zz", "", "sha256:" + "ab" * 32 + "\n00"):
        with pytest.raises(ValueError):
            measured.parse_declared(bad)


class FakeProvider:
    name, field, algorithm = "fake", "FAKE_DATA", "sha256"

    def __init__(self, value=None, error=None):
        self.value, self.error, self.report_data = value, error, None

    def measured(self):
        if self.error:
            raise OSError(self.error)
        return self.value

    def report(self, report_data):
        self.report_data = report_data
        return b"REPORT" + report_data


def test_verification_outcomes():
    good = measured.digest(BOOT_SPEC, "sha256")
    verified = measured.verify(BOOT_SPEC, FakeProvider(good))
    assert (verified.state, verified.sealed, verified.measured) == ("verified", False, True)
    assert verified.policy.apply == "locked" and verified.measurement()["expected"] == good.hex()

    changed = dict(BOOT_SPEC, generation=8)
    mismatch = measured.verify(changed, FakeProvider(good))
    assert mismatch.state == "mismatch" and mismatch.sealed
    assert good.hex() in mismatch.reason and measured.digest(changed, "sha256").hex() in mismatch.reason

    assert measured.verify(BOOT_SPEC, FakeProvider(bytes(32))).state == "absent"  # the host measured nothing
    assert measured.verify(None, FakeProvider(good)).state == "absent"            # digest but no goship.json
    error = measured.verify(BOOT_SPEC, FakeProvider(error="ioctl failed"))
    assert error.state == "error" and "ioctl failed" in error.reason

    plain = measured.verify(BOOT_SPEC, None)
    assert (plain.state, plain.sealed, plain.measured) == ("unmeasured", False, False)
    assert plain.policy.apply == "locked"  # a policy is enforced even where nothing measures it
    defaults = {"apply": "allowed", "signal": True, "logs": True, "shutdown": True, "debug": False}
    assert measured.verify(None, None).policy.as_dict() == defaults


@pytest.mark.parametrize("policy, complaint", [
    ({"debug": True}, "policy.debug: never allowed"),
    ({"apply": "open"}, "policy.apply"),
    ({"signal": "yes"}, "policy.signal"),
    ({"exec": True}, "unknown key 'exec'"),
    ("locked", "must be an object"),
])
def test_bad_policies_seal_the_guest(policy, complaint):
    guard = measured.verify(dict(BOOT_SPEC, policy=policy), None)
    assert guard.state == "invalid" and guard.sealed and complaint in guard.reason


def _refused(guard, op, args, code):
    with pytest.raises(ProtocolError) as caught:
        guard.check(op, args)
    assert caught.value.code == code, caught.value.message
    return caught.value.message


def test_policy_refuses_ops_with_clear_codes():
    strict = dict(BOOT_SPEC, policy={"apply": "locked", "signal": False, "logs": False, "shutdown": False})
    guard = measured.verify(strict, FakeProvider(measured.digest(strict, "sha256")))
    assert guard.state == "verified"
    same = {"generation": 7, "apps": json.loads(json.dumps(BOOT_SPEC["apps"])), "force": False, "dry_run": False}
    guard.check("apply", same)  # the host re-pushing the measured spec
    guard.check("apply", dict(same, apps=[], dry_run=True))  # a dry run changes nothing
    assert "locks the apps to the measured spec" in _refused(guard, "apply", dict(same, apps=[]), protocol.POLICY_DENIED)
    _refused(guard, "apply", dict(same, generation=8), protocol.POLICY_DENIED)
    for op in ("signal", "logs", "shutdown"):
        assert "%s: false" % op in _refused(guard, op, {}, protocol.POLICY_DENIED)
    for op in ("hello", "status", "ping", "sync", "attestation"):
        guard.check(op, {})
    _refused(guard, "debug", None, protocol.POLICY_DENIED)  # never, even unregistered
    _refused(measured.BootGuard(), "exec", None, protocol.POLICY_DENIED)


def test_a_sealed_guest_refuses_app_ops_but_answers_the_rest():
    guard = measured.verify(BOOT_SPEC, FakeProvider(b"\x01" * 32))
    assert "not verified (mismatch" in _refused(guard, "apply", {"generation": 7, "apps": []}, protocol.MEASUREMENT_FAILED)
    _refused(guard, "signal", {"app": "web"}, protocol.MEASUREMENT_FAILED)
    for op in ("hello", "status", "logs", "shutdown", "attestation"):
        guard.check(op, {})


def test_attestation_binds_the_nonce_and_the_digest():
    good = measured.digest(BOOT_SPEC, "sha256")
    provider = FakeProvider(good)
    result = measured.verify(BOOT_SPEC, provider).attestation("00ff" * 8)
    expected = hashlib.sha512(b"goship-attestation-v1\x00" + bytes.fromhex("00ff" * 8) + good).digest()
    assert provider.report_data == expected and result["report_data"] == expected.hex()
    assert result["platform"] == "fake" and result["measurement"]["state"] == "verified"
    for nonce in ("", "abc", "XYZ0", "00" * 65):
        with pytest.raises(ProtocolError):
            measured.verify(BOOT_SPEC, provider).attestation(nonce)
    with pytest.raises(ProtocolError) as caught:
        measured.verify(BOOT_SPEC, None).attestation("00")
    assert caught.value.code == protocol.UNSUPPORTED
    declared = measured.verify(BOOT_SPEC, measured.Declared("sha256:" + good.hex()))
    assert declared.state == "verified"
    with pytest.raises(ProtocolError) as caught:
        declared.attestation("00")
    assert caught.value.code == protocol.UNSUPPORTED and "nothing signs it" in caught.value.message


def test_snp_provider_reads_host_data_from_the_report():
    host_data = bytes(range(32))

    def ioctl(fd, request, argument, response):
        assert request == 0xC0205300  # _IOWR('S', 0, struct snp_guest_request_ioctl)
        assert struct.unpack_from("=B", argument)[0] == 1  # msg_version
        report = bytearray(1184)
        report[0xC0:0xE0] = host_data
        response[0:32] = struct.pack("=II24x", 0, len(report))
        response[32:32 + len(report)] = bytes(report)

    provider = measured.SevSnp(device="/dev/null", ioctl=ioctl)
    assert provider.measured() == host_data and provider.algorithm == "sha256"


def test_tdx_provider_reads_mrconfigid_from_the_tdreport():
    mrconfigid = bytes(range(48))

    def ioctl(fd, request, argument, response):
        assert request == 0xC4405401 and len(argument) == 64 + 1024  # _IOWR('T', 1, struct tdx_report_req)
        argument[64 + 576:64 + 624] = mrconfigid

    provider = measured.Tdx(device="/dev/null", ioctl=ioctl)
    assert provider.measured() == mrconfigid and provider.algorithm == "sha384"


def test_detect_prefers_the_platform_over_a_declared_digest():
    declared = "sha256:" + "11" * 32
    assert isinstance(measured.detect(declared, exists=lambda path: path == "/dev/sev-guest"), measured.SevSnp)
    assert isinstance(measured.detect(declared, exists=lambda path: path == "/dev/tdx_guest"), measured.Tdx)
    assert isinstance(measured.detect(declared, exists=lambda path: False), measured.Declared)
    assert measured.detect(None, exists=lambda path: False) is None
    with pytest.raises(ValueError):
        measured.detect("sha256:12", exists=lambda path: False)
