"""``agentfn tenants``: the operator sets a tenant's limits (a tenant cannot raise its own) and
sees what it uses, straight on the store the settings name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from agentfn.functions.local.cli_support import State, out, user_errors
from agentfn.tenancy import DEFAULT_TENANT, check_tenant

if TYPE_CHECKING:
    from agentfn.quotas import TenantQuotas

tenants_app = typer.Typer(help="A tenant's limits and usage.", no_args_is_help=True)

Tenant = Annotated[str, typer.Option(help="The tenant.")]
Limit = Annotated[int | None, typer.Option(min=0, help="0 removes the limit.")]


def _quotas(tenant: str) -> TenantQuotas:
    from agentfn.functions.runtime import Runtime

    check_tenant(tenant, "--tenant")
    return Runtime(State.settings()).for_tenant(tenant).quotas


@tenants_app.command("show")
@user_errors
def tenants_show(tenant: Tenant = DEFAULT_TENANT) -> None:
    """The tenant's limits and its use of them now."""
    out.print_json(_quotas(tenant).usage().model_dump_json())


@tenants_app.command("limit")
@user_errors
def tenants_limit(
    tenant: Tenant = DEFAULT_TENANT,
    requests_per_minute: Limit = None,
    concurrent_runs: Limit = None,
    tokens_per_day: Limit = None,
    model_calls_per_minute: Limit = None,
) -> None:
    """Set the tenant's limits; the ones not given stay as they are."""
    quotas = _quotas(tenant)
    given = {
        "requests_per_minute": requests_per_minute,
        "concurrent_runs": concurrent_runs,
        "tokens_per_day": tokens_per_day,
        "model_calls_per_minute": model_calls_per_minute,
    }
    changes = {name: (value or None) for name, value in given.items() if value is not None}
    limits = quotas.set_limits(quotas.limits().model_copy(update=changes))
    out.print_json(limits.model_dump_json())
