"""``agentfn tenants`` and ``agentfn costs``: the operator sets a tenant's limits (a tenant
cannot raise its own) and sees what it uses and spends, straight on the store the settings
name."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from agentfn.functions.local.cli_support import State, out, user_errors
from agentfn.ledger import MAX_DAYS
from agentfn.tenancy import DEFAULT_TENANT, check_tenant

if TYPE_CHECKING:
    from agentfn.functions.runtime import TenantServices
    from agentfn.quotas import TenantQuotas

tenants_app = typer.Typer(help="A tenant's limits and usage.", no_args_is_help=True)

Tenant = Annotated[str, typer.Option(help="The tenant.")]
Limit = Annotated[int | None, typer.Option(min=0, help="0 removes the limit.")]


def _tenant(tenant: str) -> TenantServices:
    from agentfn.functions.runtime import Runtime

    check_tenant(tenant, "--tenant")
    return Runtime(State.settings()).for_tenant(tenant)


def _quotas(tenant: str) -> TenantQuotas:
    return _tenant(tenant).quotas


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


@user_errors
def costs(
    tenant: Tenant = DEFAULT_TENANT,
    days: Annotated[int, typer.Option(min=1, max=MAX_DAYS, help="Days back, today included.")] = 30,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="CSV on stdout, for a spreadsheet.")
    ] = False,
) -> None:
    """What the tenant's runs cost, per day, workflow and agent."""
    from agentfn.ledger import costs_csv

    rows = _tenant(tenant).ledger.costs(days)
    if as_csv:
        sys.stdout.write(costs_csv(rows))
        return
    table = Table("day", "workflow", "agent", "calls", "tokens", "cost")
    for r in rows:
        tokens = r.prompt_tokens + r.completion_tokens
        table.add_row(r.day, r.workflow, r.agent, str(r.calls), str(tokens), f"${r.cost_usd:.6f}")
    out.print(table)
    out.print(f"total ${sum(r.cost_usd for r in rows):.6f} over {days} day(s)")
