"""Token format and checking: ``gsp_<id>_<secret>``.

The id (public, 12 hex digits) finds the row; the secret (32 random bytes, URL-safe base64) is
kept only as its SHA-256. A slow hash would add nothing: the secret has 256 bits of entropy.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "gsp"
TOKEN_PATTERN = re.compile(r"gsp_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class NewToken:
    token_id: str
    secret_sha256: str
    plaintext: str


def new_token() -> NewToken:
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewToken(token_id, digest(secret), "%s_%s_%s" % (PREFIX, token_id, secret))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def split(plaintext: str) -> tuple[str, str] | None:
    """(token id, secret), or None when the text is not a GoShip token at all."""
    match = TOKEN_PATTERN.fullmatch(plaintext)
    return (match.group(1), match.group(2)) if match else None


def secret_matches(secret: str, secret_sha256: str) -> bool:
    return hmac.compare_digest(digest(secret), secret_sha256)
