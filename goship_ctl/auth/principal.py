"""Who a request acts as: an admin, or one project."""

from __future__ import annotations

from dataclasses import dataclass

from goship_ctl.errors import Forbidden, NotFound


@dataclass(frozen=True)
class Principal:
    """``project`` None means admin. ``token_name`` is for logs and events, never the token itself."""

    token_name: str
    project: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.project is None

    def may_see(self, project: str) -> bool:
        return self.is_admin or self.project == project

    def require_project(self, project: str, kind: str = "project") -> None:
        """A project token asking for another project gets the same 404 as for a missing one."""
        if not self.may_see(project):
            raise NotFound("%s %r not found" % (kind, project))

    def require_admin(self, what: str) -> None:
        if not self.is_admin:
            raise Forbidden("%s: needs an admin token (this token is scoped to project %r)" % (what, self.project))


LOCAL_ADMIN = Principal(token_name="local")
"""The CLI working on the embedded store directly: whoever can open the data directory is admin."""
