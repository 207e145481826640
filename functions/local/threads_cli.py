"""``agentfn threads``: read and delete the conversation threads runs continue (``agentfn run
--thread``), on the store the settings name."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from agentfn.functions.local.cli_support import State, out, user_errors
from agentfn.tenancy import DEFAULT_TENANT, check_tenant

if TYPE_CHECKING:
    from agentfn.conversations import Conversations

threads_app = typer.Typer(help="Show and delete conversation threads.", no_args_is_help=True)

ThreadId = Annotated[str, typer.Argument(help="The thread's id.")]
Tenant = Annotated[str, typer.Option(help="The tenant whose thread it is.")]


def _conversations(tenant: str) -> Conversations:
    from agentfn.functions.runtime import Runtime

    return Runtime(State.settings()).for_tenant(check_tenant(tenant)).engine.conversations


@threads_app.command("show")
@user_errors
def threads_show(
    thread_id: ThreadId,
    as_json: Annotated[bool, typer.Option("--json", help="Print the thread as JSON.")] = False,
    tenant: Tenant = DEFAULT_TENANT,
) -> None:
    """Show a thread's messages, the runs that added them and when it expires."""
    thread = _conversations(tenant).get(thread_id)
    if as_json:
        sys.stdout.write(thread.model_dump_json(indent=2) + "\n")
        return
    expires = (
        "never"
        if thread.expires_at is None
        else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(thread.expires_at))
    )
    out.print(
        f"thread {escape(thread.id)}: {len(thread.messages)} messages from {len(thread.runs)} "
        f"run(s), expires {expires}",
        highlight=False,
    )
    for message in thread.messages:
        who = message.name or message.role
        out.print(f"[bold]{escape(who)}:[/] {escape(message.content or '')}", highlight=False)


@threads_app.command("delete")
@user_errors
def threads_delete(thread_id: ThreadId, tenant: Tenant = DEFAULT_TENANT) -> None:
    """Delete a thread everywhere: its messages, the runs that continued it (records, steps,
    prompt log), and the facts agents remembered in it."""
    runs = _conversations(tenant).delete(thread_id)
    out.print(f"deleted thread {escape(thread_id)} with its {len(runs)} run(s)")
