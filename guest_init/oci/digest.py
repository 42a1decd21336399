"""Content digests (`sha256:<hex>`): parsing, and hashing while a blob is read."""

import hashlib
import re

_SHA256 = re.compile(r"sha256:([0-9a-f]{64})")
CHUNK = 1 << 20


class DigestError(ValueError):
    """A blob's content does not match its descriptor, or a digest is malformed."""


def parse(digest):
    """Return the hex part of a sha256 digest; anything else is a DigestError."""
    match = _SHA256.fullmatch(digest) if isinstance(digest, str) else None
    if match is None:
        raise DigestError("unsupported or malformed digest %r (only sha256:<64 hex> is accepted)" % (digest,))
    return match.group(1)


class VerifyingReader:
    """File-like wrapper that hashes and counts what is read; `check()` compares at the end."""

    def __init__(self, raw, digest, size=None):
        self._raw = raw
        self._expected = parse(digest)
        self._digest = digest
        self._size = size
        self._hash = hashlib.sha256()
        self._count = 0

    def read(self, amount=-1):
        data = self._raw.read(amount)
        self._hash.update(data)
        self._count += len(data)
        if self._size is not None and self._count > self._size:
            raise DigestError("%s: more than the declared %d bytes" % (self._digest, self._size))
        return data

    def drain(self):
        """Read what is left, so the digest covers the whole stream."""
        while self.read(CHUNK):
            pass

    def check(self):
        self.drain()
        if self._size is not None and self._count != self._size:
            raise DigestError("%s: %d bytes, descriptor says %d" % (self._digest, self._count, self._size))
        if self._hash.hexdigest() != self._expected:
            raise DigestError("%s: content hashes to sha256:%s" % (self._digest, self._hash.hexdigest()))


def verify_file(path, digest, size=None):
    """Hash the whole file at path; raise DigestError unless it matches digest (and size)."""
    with open(path, "rb") as blob:
        reader = VerifyingReader(blob, digest, size)
        reader.check()
