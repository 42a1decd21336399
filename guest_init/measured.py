"""Measured configuration: the boot spec's digest, where the platform keeps it, the boot policy.

The host hashes the initial spec (``goship.json`` of the cidata seed) and puts the digest where
the platform measures it: SEV-SNP ``HOST_DATA`` (SHA-256, 32 bytes), TDX ``MRCONFIGID``
(SHA-384, 48 bytes). At boot guest_init hashes the spec it read the same way and compares.
On a mismatch (or when a confidential platform holds no digest) it starts no app and refuses
the ops that change or touch apps; ``hello`` and ``status`` say why. See docs/confidential.md.

Canonical form ("GoShip canonical JSON v1"), also in plugins/module_utils/nocloud_seed.py:
``json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
allow_nan=False)`` encoded as ASCII: keys sorted by code point, no whitespace, every non-ASCII
character as a lower-case ``\\uXXXX`` escape (surrogate pairs above U+FFFF), integers in
decimal, other numbers as Python's shortest round-trip repr, NaN and infinities refused.

Stdlib only. The platform providers are tried in order: ``/dev/sev-guest`` (SNP_GET_REPORT
ioctl), ``/dev/tdx_guest`` (TDX_CMD_GET_REPORT0 ioctl); without either, a declared digest
(``goship.measurement=sha256:<hex>`` on the kernel command line, ``--measurement`` for a
process) exercises the same verification where nothing signs it (tests, non-confidential VMs).
"""

import json
import os
import re

from guest_init import log, protocol
from guest_init.protocol import ProtocolError

ALGORITHMS = {"sha256": 32, "sha384": 48}
DECLARED = re.compile(r"(sha256|sha384):([0-9a-f]+)\Z")
NONCE = re.compile(r"[0-9a-f]{2,128}\Z")
ATTESTATION_CONTEXT = b"goship-attestation-v1\x00"

# Boot states (``measurement.state`` in hello and status).
UNMEASURED = "unmeasured"   # no platform digest, nothing declared: an ordinary VM
VERIFIED = "verified"       # the boot spec hashes to the measured digest
MISMATCH = "mismatch"       # it does not: no app started, app ops refused
ABSENT = "absent"           # a digest is expected (platform or declared) but the spec or the digest is missing
ERROR = "error"             # the platform could not be read
INVALID = "invalid"         # the boot spec's policy is malformed (or enables debug)
SEALED_STATES = (MISMATCH, ABSENT, ERROR, INVALID)

POLICY_OPS = ("apply", "signal", "logs", "shutdown")
NEVER_OPS = ("debug", "exec")  # no such ops exist; a boot policy can never enable them
APPLY_MODES = ("allowed", "locked")


def canonical_json(document):
    """The bytes that are hashed; raises ValueError for what JSON cannot carry (NaN, ...)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def digest(document, algorithm):
    import hashlib
    return hashlib.new(algorithm, canonical_json(document)).digest()


def parse_declared(text):
    """``sha256:<64 hex>`` or ``sha384:<96 hex>`` -> (algorithm, bytes); ValueError otherwise."""
    match = DECLARED.match((text or "").lower())
    if not match or len(match.group(2)) != 2 * ALGORITHMS[match.group(1)]:
        raise ValueError("measurement %r: expected sha256:<64 hex digits> or sha384:<96 hex digits>" % text)
    return match.group(1), bytes.fromhex(match.group(2))


# ---- platform providers ------------------------------------------------------------------

def _iowr(kind, number, size):
    return (3 << 30) | (size << 16) | (ord(kind) << 8) | number


class SevSnp:
    """AMD SEV-SNP guest: the attestation report from /dev/sev-guest (kernel module sev-guest).

    SNP_GET_REPORT takes struct snp_guest_request_ioctl {u8 msg_version; u64 req_data;
    u64 resp_data; u64 exitinfo2} (32 bytes); req is {u8 user_data[64]; u32 vmpl; u8 rsvd[28]},
    resp 4000 bytes: {u32 status; u32 report_size; u8 rsvd[24]; report}. In the report,
    REPORT_DATA is at 0x50 (64 bytes) and HOST_DATA at 0xC0 (32 bytes).
    """

    name = "sev-snp"
    algorithm = "sha256"
    field = "HOST_DATA"
    device = "/dev/sev-guest"
    REQUEST = _iowr("S", 0x0, 32)
    REPORT_OFFSET = 32
    HOST_DATA = (0xC0, 0xE0)

    def __init__(self, device=None, ioctl=None):
        self.device = device or self.device
        self._ioctl = ioctl

    def report(self, report_data):
        import ctypes
        import struct
        request = ctypes.create_string_buffer(bytes(report_data).ljust(64, b"\0") + b"\0" * 32, 96)
        response = ctypes.create_string_buffer(4000)
        argument = bytearray(struct.pack("=B7xQQQ", 1, ctypes.addressof(request), ctypes.addressof(response), 0))
        fd = os.open(self.device, os.O_RDWR | os.O_CLOEXEC)
        try:
            (self._ioctl or _fcntl_ioctl)(fd, self.REQUEST, argument, response)
        finally:
            os.close(fd)
        raw = response.raw
        status, size = struct.unpack_from("=II", raw, 0)
        if status != 0:
            raise OSError("SNP_GET_REPORT: firmware status 0x%x" % status)
        return raw[self.REPORT_OFFSET:self.REPORT_OFFSET + size]

    def measured(self):
        start, end = self.HOST_DATA
        return self.report(b"")[start:end]


class Tdx:
    """Intel TDX guest: TDREPORT from /dev/tdx_guest (kernel 6.2+; Debian 6.1 has no TDX guest).

    TDX_CMD_GET_REPORT0 takes struct tdx_report_req {u8 reportdata[64]; u8 tdreport[1024]}
    in place. TDREPORT: REPORTMACSTRUCT (256) + TEE_TCB_INFO (239) + reserved (17) + TDINFO at
    512: ATTRIBUTES (8), XFAM (8), MRTD (48), MRCONFIGID (48, at 576), MROWNER, ...
    """

    name = "tdx"
    algorithm = "sha384"
    field = "MRCONFIGID"
    device = "/dev/tdx_guest"
    REQUEST = _iowr("T", 0x1, 64 + 1024)
    MRCONFIGID = (576, 624)

    def __init__(self, device=None, ioctl=None):
        self.device = device or self.device
        self._ioctl = ioctl

    def report(self, report_data):
        argument = bytearray(bytes(report_data).ljust(64, b"\0") + b"\0" * 1024)
        fd = os.open(self.device, os.O_RDWR | os.O_CLOEXEC)
        try:
            (self._ioctl or _fcntl_ioctl)(fd, self.REQUEST, argument, None)
        finally:
            os.close(fd)
        return bytes(argument[64:])

    def measured(self):
        start, end = self.MRCONFIGID
        return self.report(b"")[start:end]


class Declared:
    """A digest given to us in the clear (kernel command line, --measurement): nothing signs it,
    so it proves nothing against the host; it exercises the verification where no platform can."""

    name = "declared"
    field = "goship.measurement"

    def __init__(self, text):
        self.algorithm, self._digest = parse_declared(text)

    def measured(self):
        return self._digest

    def report(self, report_data):
        raise ProtocolError(protocol.UNSUPPORTED, "no attestation device (/dev/sev-guest, /dev/tdx_guest): the "
                                                  "measured digest was declared (%s), and nothing signs it" % self.field)


def _fcntl_ioctl(fd, request, argument, unused_response):
    import fcntl
    fcntl.ioctl(fd, request, argument, True)


def detect(declared=None, platforms=(SevSnp, Tdx), exists=os.path.exists):
    """The provider of the expected digest: a confidential platform's device, else the declared
    digest, else None (an ordinary VM). ValueError for a malformed declared digest."""
    for platform in platforms:
        if exists(platform.device):
            if declared:
                log.info("ignoring the declared measurement: %s measures this guest" % platform.name)
            return platform()
    return Declared(declared) if declared else None


# ---- boot policy -------------------------------------------------------------------------

class PolicyError(ValueError):
    pass


class BootPolicy:
    """``policy`` of the boot spec: which ops the host may use after boot.

    ``{apply: allowed|locked, signal: bool, logs: bool, shutdown: bool}``; all allowed when the
    spec has none. ``locked``: only an apply equal to the boot spec's apps and generation (the
    host re-pushing it) is accepted. ``debug: true`` is refused: no boot policy enables debugging.
    """

    def __init__(self, apply="allowed", signal=True, logs=True, shutdown=True, given=False):
        self.apply, self.signal, self.logs, self.shutdown, self.given = apply, signal, logs, shutdown, given

    @classmethod
    def parse(cls, value):
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise PolicyError("policy: must be an object")
        for key in value:
            if key == "debug":
                if value[key] is not False:
                    raise PolicyError("policy.debug: never allowed (guest_init has no debug op, and no policy adds one)")
            elif key not in POLICY_OPS:
                raise PolicyError("policy: unknown key %r (known: %s, debug)" % (key, ", ".join(POLICY_OPS)))
        apply = value.get("apply", "allowed")
        if apply not in APPLY_MODES:
            raise PolicyError("policy.apply: must be allowed or locked, not %r" % (apply,))
        flags = {}
        for key in ("signal", "logs", "shutdown"):
            flags[key] = value.get(key, True)
            if not isinstance(flags[key], bool):
                raise PolicyError("policy.%s: must be true or false" % key)
        return cls(apply=apply, given=True, **flags)

    def as_dict(self):
        return {"apply": self.apply, "signal": self.signal, "logs": self.logs, "shutdown": self.shutdown, "debug": False}


# ---- the boot guard ----------------------------------------------------------------------

class BootGuard:
    """What the boot spec's verification decided: shown in hello/status, enforced on every op."""

    def __init__(self, state=UNMEASURED, reason="", provider=None, expected=None, actual=None,
                 policy=None, document=None):
        self.state = state
        self.reason = reason
        self.provider = provider
        self.expected = expected
        self.actual = actual
        self.policy = policy or BootPolicy()
        self.document = document  # the verified boot spec (for apply: locked)

    @property
    def sealed(self):
        return self.state in SEALED_STATES

    @property
    def measured(self):
        return self.provider is not None

    def measurement(self):
        return {
            "state": self.state,
            "source": self.provider.name if self.provider else None,
            "field": self.provider.field if self.provider else None,
            "algorithm": self.provider.algorithm if self.provider else None,
            "expected": self.expected.hex() if self.expected else None,
            "actual": self.actual.hex() if self.actual else None,
            "reason": self.reason,
        }

    def hello_fields(self):
        return {"measurement": self.measurement(), "policy": self.policy.as_dict()}

    def check(self, op, args):
        """Raise ProtocolError when the boot state or policy forbids ``op`` with ``args`` (None: no such op)."""
        args = args or {}
        if op in NEVER_OPS:
            raise ProtocolError(protocol.POLICY_DENIED, "op %r is never allowed: no boot policy enables it" % op)
        if self.sealed and op in ("apply", "signal"):
            raise ProtocolError(protocol.MEASUREMENT_FAILED, "%s refused: the boot spec is not verified (%s: %s)"
                                % (op, self.state, self.reason))
        if op == "apply" and self.policy.apply == "locked" and not args.get("dry_run"):
            if not self._is_boot_spec(args):
                raise ProtocolError(protocol.POLICY_DENIED, "apply refused: the boot policy locks the apps to the measured "
                                                            "spec (generation %s); boot a VM with a new spec instead"
                                    % (self.document or {}).get("generation"))
        elif op in ("signal", "logs", "shutdown") and not getattr(self.policy, op):
            raise ProtocolError(protocol.POLICY_DENIED, "%s refused: the boot policy has %s: false" % (op, op))

    def _is_boot_spec(self, args):
        document = self.document or {}
        try:
            return (args.get("generation") == document.get("generation")
                    and canonical_json(args.get("apps")) == canonical_json(document.get("apps", [])))
        except ValueError:
            return False

    def attestation(self, nonce_hex):
        """The platform's report with REPORT_DATA = SHA-512(context || nonce || boot-spec digest)."""
        if not NONCE.match(nonce_hex or "") or len(nonce_hex) % 2:
            raise ProtocolError(protocol.BAD_REQUEST, "nonce: 1-64 bytes as lower-case hex")
        if self.provider is None:
            raise ProtocolError(protocol.UNSUPPORTED, "this guest is not measured (no /dev/sev-guest, /dev/tdx_guest "
                                                      "or declared digest): there is nothing to attest")
        import base64
        import hashlib
        report_data = hashlib.sha512(ATTESTATION_CONTEXT + bytes.fromhex(nonce_hex) + (self.actual or b"")).digest()
        try:
            report = self.provider.report(report_data)
        except OSError as exc:
            raise ProtocolError(protocol.INTERNAL, "reading the %s report failed: %s" % (self.provider.name, exc)) from None
        return {"platform": self.provider.name, "nonce": nonce_hex, "report_data": report_data.hex(),
                "report": base64.b64encode(report).decode("ascii"), "measurement": self.measurement(),
                "policy": self.policy.as_dict()}


def verify(document, provider):
    """BootGuard for the boot spec ``document`` (a dict, or None when there is none) against
    the digest ``provider`` holds (None: an ordinary, unmeasured VM)."""
    try:
        policy = BootPolicy.parse((document or {}).get("policy"))
    except PolicyError as exc:
        return BootGuard(INVALID, str(exc), provider)
    if provider is None:
        return BootGuard(UNMEASURED, "no measured digest (not a confidential guest, none declared)",
                         policy=policy, document=document)
    try:
        expected = provider.measured()
    except OSError as exc:
        return BootGuard(ERROR, "reading %s from %s failed: %s" % (provider.field, provider.name, exc), provider)
    if not any(expected):
        return BootGuard(ABSENT, "%s is all zero: the host measured no spec" % provider.field, provider, expected)
    if document is None:
        return BootGuard(ABSENT, "%s holds a digest but there is no boot spec (goship.json)" % provider.field,
                         provider, expected)
    try:
        actual = digest(document, provider.algorithm)
    except ValueError as exc:
        return BootGuard(MISMATCH, "the boot spec has no canonical form: %s" % exc, provider, expected)
    import hmac
    if len(expected) != len(actual) or not hmac.compare_digest(expected, actual):
        reason = "%s of the boot spec is %s, %s holds %s" % (provider.algorithm, actual.hex(), provider.field, expected.hex())
        return BootGuard(MISMATCH, reason, provider, expected, actual)
    return BootGuard(VERIFIED, "%s of the boot spec matches %s" % (provider.algorithm, provider.field),
                     provider, expected, actual, policy, document)
