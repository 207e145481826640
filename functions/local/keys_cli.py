"""``agentfn keys``: the operator's hand on every tenant's API keys, straight on the store the
settings name (the local default, or a cloud's bucket with its credentials).

This is how a tenant gets its first admin key; from then on its admin manages its keys over
``/v1/api-keys``. Secrets are printed once, at ``create`` and ``rotate``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from agentfn.functions.local.cli_support import State, fail, out, user_errors
from agentfn.roles import Role
from agentfn.tenancy import DEFAULT_TENANT, check_tenant

if TYPE_CHECKING:
    from agentfn.api_keys import ApiKeyView, KeyStore
    from agentfn.audit import Action

keys_app = typer.Typer(
    help="Create, list, rotate and revoke tenants' API keys.", no_args_is_help=True
)

Tenant = Annotated[str, typer.Option(help="The tenant the key belongs to.")]
OPERATOR = "operator"  # the actor the audit log names for these commands


def _keys() -> KeyStore:
    from agentfn.functions.runtime import Runtime

    return Runtime(State.settings()).keys


def _audit(tenant: str, action: Action, target: str) -> None:
    from agentfn.functions.runtime import Runtime

    Runtime(State.settings()).for_tenant(tenant).audit.record(OPERATOR, action, target)


def _when(at: float | None) -> str:
    return "" if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _show(key: ApiKeyView, secret: str | None = None) -> None:
    out.print(f"{key.prefix}  {key.name}  role={key.role.value}  status={key.status}")
    if secret is not None:
        out.print(secret, highlight=False, soft_wrap=True)
        out.print("[dim]The key is shown this once: store it now.[/]")


@keys_app.command("create")
@user_errors
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for (shown in listings).")],
    role: Annotated[Role, typer.Option(help="viewer, developer or tenant_admin.")] = Role.developer,
    tenant: Tenant = DEFAULT_TENANT,
    expires: Annotated[
        datetime | None,
        typer.Option(help="When the key stops working (ISO date or time, UTC unless given)."),
    ] = None,
) -> None:
    """Create a key and print it (once)."""
    check_tenant(tenant, "--tenant")
    if not 1 <= len(name) <= 64:
        raise fail("--name must be 1 to 64 characters")
    expires_at = None
    if expires is not None:
        expires_at = (expires if expires.tzinfo else expires.replace(tzinfo=UTC)).timestamp()
        if expires_at <= time.time():
            raise fail(f"--expires {expires.isoformat()} is not in the future")
    created = _keys().create(tenant, role, name=name, created_by=OPERATOR, expires_at=expires_at)
    _audit(tenant, "key.created", created.id)
    _show(created, created.key)


@keys_app.command("list")
@user_errors
def keys_list(tenant: Tenant = DEFAULT_TENANT) -> None:
    """List a tenant's keys (never their secrets)."""
    check_tenant(tenant, "--tenant")
    table = Table("prefix", "name", "role", "status", "created", "expires")
    for key in _keys().list(tenant):
        table.add_row(
            key.prefix,
            key.name,
            key.role.value,
            key.status,
            _when(key.created_at),
            _when(key.expires_at),
        )
    out.print(table)


def _key_id(value: str) -> str:
    """A key id as listings show it (``afn_<id>``) or bare."""
    return value.removeprefix("afn_")


@keys_app.command("rotate")
@user_errors
def keys_rotate(
    key: Annotated[str, typer.Argument(help="The key's prefix (afn_<id>) or id.")],
    tenant: Tenant = DEFAULT_TENANT,
) -> None:
    """Give a key a new secret and print it (once); the old secret stops working."""
    check_tenant(tenant, "--tenant")
    rotated = _keys().rotate(tenant, _key_id(key))
    _audit(tenant, "key.rotated", rotated.id)
    _show(rotated, rotated.key)


@keys_app.command("revoke")
@user_errors
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's prefix (afn_<id>) or id.")],
    tenant: Tenant = DEFAULT_TENANT,
) -> None:
    """Revoke a key: it stops working at once."""
    check_tenant(tenant, "--tenant")
    revoked = _keys().revoke(tenant, _key_id(key))
    _audit(tenant, "key.revoked", revoked.id)
    _show(revoked)
