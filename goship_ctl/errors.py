"""Errors of the control service, shared by the API (HTTP status) and the CLI (exit code).

Exit codes are part of the CLI's contract (docs/control-service.md): scripts may rely on them.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_INVALID = 5
EXIT_DENIED = 6
EXIT_UNSCHEDULABLE = 7
EXIT_UNREACHABLE = 8
EXIT_NOT_CONVERGED = 9  # --wait / reconcile: a node failed or the desired state was not reached in time


class ControlError(Exception):
    """Base class; ``status`` is the HTTP status, ``exit_code`` the CLI's exit status."""

    status = 500
    exit_code = EXIT_ERROR
    code = "internal"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class NotFound(ControlError):
    status = 404
    exit_code = EXIT_NOT_FOUND
    code = "not_found"


class Conflict(ControlError):
    """A stale resource version, or a name that is already taken."""

    status = 409
    exit_code = EXIT_CONFLICT
    code = "conflict"


class Forbidden(ControlError):
    status = 403
    exit_code = EXIT_DENIED
    code = "forbidden"


class Unauthorized(ControlError):
    status = 401
    exit_code = EXIT_DENIED
    code = "unauthorized"


class TooManyFailures(ControlError):
    """Failed authentication from one client went over the limit."""

    status = 429
    exit_code = EXIT_DENIED
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Invalid(ControlError):
    """A document or request that fails validation; ``problems`` are ``{path, message}``."""

    status = 422
    exit_code = EXIT_INVALID
    code = "invalid"

    def __init__(self, problems: list[dict]):
        self.problems = problems
        super().__init__("; ".join("%s: %s" % (item["path"], item["message"]) for item in problems))

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "problems": self.problems}}


class BadRequest(ControlError):
    """A body that is not a document at all (not YAML/JSON, wrong media type)."""

    status = 400
    exit_code = EXIT_INVALID
    code = "bad_request"


class Unreachable(ControlError):
    """The CLI could not reach the API."""

    status = 503
    exit_code = EXIT_UNREACHABLE
    code = "unreachable"


ERRORS_BY_CODE = {cls.code: cls for cls in (NotFound, Conflict, Forbidden, Unauthorized, Invalid, BadRequest, Unreachable)}
