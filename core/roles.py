"""Roles and what each may do: the one table every route's permission is checked against.

A route declares the one permission it needs (``Routes.route(..., permission=...)``); a key
carries one role. ``allowed`` is the only check, made once per request before the handler
runs, so no handler decides access on its own.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    read = "read"  # see runs, collaborations, threads, the catalog and tools
    run = "run"  # start, cancel, replay and signal runs and collaborations; call a tool;
    # delete a conversation thread
    register = "register"  # store agents, workflows and HTTP tools
    admin = "admin"  # manage the tenant's API keys; read its usage and audit log


class Role(StrEnum):
    viewer = "viewer"
    developer = "developer"
    tenant_admin = "tenant_admin"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.viewer: frozenset({Permission.read}),
    Role.developer: frozenset({Permission.read, Permission.run, Permission.register}),
    Role.tenant_admin: frozenset(Permission),
}


def allowed(roles: frozenset[str], permission: Permission) -> bool:
    """Whether any of ``roles`` grants ``permission``; a name that is no role grants nothing."""
    return any(permission in GRANTS.get(Role(r), frozenset()) for r in roles if r in _NAMES)


_NAMES = frozenset(r.value for r in Role)
