"""What every ``agentfn`` command shares: the consoles, the settings of this invocation, and
the one mapping of typed errors to a readable line and exit code 2."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from agentfn.errors import AgentfnError
from agentfn.settings import Settings

out = Console()
err = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


class State:
    home: Path | None = None

    @classmethod
    def settings(cls) -> Settings:
        return Settings.from_env(home=cls.home)


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Map typed errors to one line on stderr and exit code 2."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except AgentfnError as exc:
            err.print(f"[red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def fail(message: str) -> typer.Exit:
    # escape: a message quoting `agentfn[aws,openai]` is text, not rich markup
    err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(2)
