"""Create, list, revoke and check API tokens."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from goship_ctl.auth import tokens
from goship_ctl.auth.principal import Principal
from goship_ctl.errors import Invalid, NotFound
from goship_ctl.service import events
from goship_ctl.spec.project import DNS_LABEL_PATTERN
from goship_ctl.store.models import Token
from goship_ctl.store.types import utcnow

LAST_USED_RESOLUTION = timedelta(minutes=1)  # fewer writes: last_used_at is a hint, not an audit log


def create(session: Session, name: str, project: str | None, actor: str) -> dict:
    """The new token, including its plaintext: the only time it is shown."""
    problems = [{"path": field, "message": "must be a DNS label"} for field, value in (("name", name), ("project", project))
                if value is not None and not (isinstance(value, str) and re.fullmatch(DNS_LABEL_PATTERN, value))]
    if problems:
        raise Invalid(problems)
    issued = tokens.new_token()
    row = Token(token_id=issued.token_id, name=name, project=project, secret_sha256=issued.secret_sha256)
    session.add(row)
    session.flush()
    scope = "project %s" % project if project else "admin"
    events.record(session, "token.created", "token %s (%s, %s) created by %s" % (name, issued.token_id, scope, actor),
                  project=project)
    return dict(view(row), token=issued.plaintext)


def listing(session: Session) -> list[dict]:
    return [view(row) for row in session.scalars(select(Token).order_by(Token.id))]


def revoke(session: Session, token_id: str, actor: str) -> None:
    row = session.scalars(select(Token).where(Token.token_id == token_id)).one_or_none()
    if row is None:
        raise NotFound("token %r not found" % token_id)
    session.delete(row)
    events.record(session, "token.revoked", "token %s (%s) revoked by %s" % (row.name, token_id, actor),
                  project=row.project)


def authenticate(session: Session, plaintext: str) -> tuple[Principal, bool] | None:
    """The token's Principal, and whether its ``last_used_at`` is due an update (``mark_used``).

    Reads only: every API request authenticates, and reads never wait for a writer.
    """
    parts = tokens.split(plaintext)
    if parts is None:
        return None
    token_id, secret = parts
    row = session.scalars(select(Token).where(Token.token_id == token_id)).one_or_none()
    if row is None or not tokens.secret_matches(secret, row.secret_sha256):
        return None
    due = row.last_used_at is None or utcnow() - row.last_used_at > LAST_USED_RESOLUTION
    return Principal(token_name=row.name, project=row.project), due


def mark_used(session: Session, plaintext: str) -> None:
    token_id, _secret = tokens.split(plaintext)
    row = session.scalars(select(Token).where(Token.token_id == token_id)).one_or_none()
    if row is not None:  # revoked in between
        row.last_used_at = utcnow()


def view(row: Token) -> dict:
    return {"id": row.token_id, "name": row.name, "project": row.project,
            "scope": "project" if row.project else "admin", "createdAt": row.created_at.isoformat(),
            "lastUsedAt": row.last_used_at.isoformat() if row.last_used_at else None}
