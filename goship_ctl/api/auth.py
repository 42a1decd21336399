"""Bearer-token authentication for every API route, with failed attempts limited and logged.

The log names the client address, the reason and the path, never the token.
"""

from __future__ import annotations

import logging

from fastapi import Request

from goship_ctl.auth.principal import Principal
from goship_ctl.errors import TooManyFailures, Unauthorized

log = logging.getLogger("goship_ctl.api.auth")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def principal(request: Request) -> Principal:
    """FastAPI dependency: the Principal of the request's token, or 401/429."""
    state = request.app.state
    client = client_address(request)
    retry_after = state.limiter.retry_after(client)
    if retry_after:
        state.metrics.auth_failures.labels(reason="rate_limited").inc()
        raise TooManyFailures("too many failed authentications from %s; retry in %d s" % (client, retry_after),
                              retry_after)
    scheme, separator, token = request.headers.get("authorization", "").partition(" ")
    if not separator or scheme.lower() != "bearer" or not token.strip():
        _fail(request, client, "missing", "send Authorization: Bearer <token>")
    found = state.service.authenticate(token.strip())
    if found is None:
        _fail(request, client, "invalid", "invalid or revoked token")
    return found


def _fail(request: Request, client: str, reason: str, message: str) -> None:
    state = request.app.state
    failures = state.limiter.record_failure(client)
    state.metrics.auth_failures.labels(reason=reason).inc()
    log.warning("authentication failed: client=%s reason=%s path=%s failures_in_window=%d",
                client, reason, request.url.path, failures)
    raise Unauthorized(message)
