"""Watching a run: progress lines as nodes start and finish, then a summary.

Plain lines rather than a live-redrawn table, so the output reads the same in a terminal,
in `make demo` logs and in CI.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Protocol

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentfn.collaboration import CollaborationView, SubtaskView, collaboration_view
from agentfn.replay import RunDiff, StepSide
from agentfn.runs import Run, RunStore
from agentfn.workflows import Blueprint

_MARK = {"started": "[cyan]>[/]", "finished": "[green]✓[/]", "skipped": "[yellow]-[/]"}
_SUBTASK_MARK = {
    "queued": "[dim]·[/]",
    "running": "[cyan]>[/]",
    "completed": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "skipped": "[yellow]-[/]",
    "stopped": "[dim]x[/]",
}


_SETTLED = frozenset({"completed", "failed", "skipped"})


class Printer(Protocol):
    def update(self, run: Run) -> None: ...


class ProgressPrinter:
    def __init__(self, console: Console, blueprint: Blueprint) -> None:
        self.console = console
        self.blueprint = blueprint
        self.seen: dict[str, str] = {}
        self.status = ""

    def update(self, run: Run) -> None:
        for node in self.blueprint.nodes:
            state = (
                "finished"
                if node.id in run.finished
                else "skipped"
                if node.id in run.skipped
                else "started"
                if node.id in run.started
                else ""
            )
            if state and self.seen.get(node.id) != state:
                self.seen[node.id] = state
                extra = ""
                if node.id in run.fan_out:
                    extra = f" ({run.fan_out[node.id]} branches)"
                self.console.print(f"  {_MARK[state]} {node.id} [dim]{node.type}[/] {state}{extra}")
        if run.status.value != self.status:
            self.status = run.status.value
            if run.status.value == "waiting":
                signals = ", ".join(sorted({w.signal for w in run.waiting.values()}))
                self.console.print(f"  [yellow]…[/] waiting for signal {signals}")


class CollaborationPrinter:
    """A line each time a subtask changes state (with its agent, attempts and tokens) and how
    many of all are done; ``view`` is the last state seen, for the closing table."""

    def __init__(self, console: Console, store: RunStore) -> None:
        self.console = console
        self.store = store
        self.seen: dict[str, str] = {}
        self.view: CollaborationView | None = None

    def update(self, run: Run) -> None:
        self.view = view = collaboration_view(self.store, run.id)
        for sub in view.subtasks:
            if sub.status == "waiting" or self.seen.get(sub.id) == sub.status:
                continue
            self.seen[sub.id] = sub.status
            settled = sum(s in _SETTLED for s in self.seen.values())
            self.console.print(
                f"  {_SUBTASK_MARK[sub.status]} [{settled}/{len(view.subtasks)}] {sub.id} "
                f"[dim]{sub.agent}[/] {sub.status}{_detail(sub)}",
                highlight=False,
            )


def _detail(sub: SubtaskView) -> str:
    if sub.status == "failed":
        return f" after {sub.attempts} attempt(s): {escape(sub.error or '')}"
    if sub.status == "skipped":
        return f" ({escape(sub.error or '')})"
    if sub.status == "completed":
        retried = f", {sub.attempts} attempts" if sub.attempts > sub.steps else ""
        return f" [dim]({sub.tokens} tokens{retried})[/]"
    return ""


def subtask_table(view: CollaborationView) -> Table:
    table = Table("subtask", "agent", "status", "attempts", "tokens", "cost", "ms", box=None)
    for sub in view.subtasks:
        table.add_row(
            sub.id,
            sub.agent,
            sub.status,
            str(sub.attempts),
            str(sub.tokens),
            f"${sub.cost_usd:.6f}",
            f"{sub.duration_ms:.0f}",
        )
    return table


def watch(
    store: RunStore,
    run_id: str,
    printer: Printer | None,
    *,
    timeout_s: float,
    poll_s: float = 0.1,
    alive: Callable[[], bool] = lambda: True,
) -> Run:
    """Poll the run until it ends (or parks on a wait node), the time runs out, or workers die."""
    deadline = time.monotonic() + timeout_s
    while True:
        run = store.get(run_id)
        if printer is not None:
            printer.update(run)
        if run.status.terminal or run.status.value == "waiting":
            return run
        if time.monotonic() > deadline or not alive():
            return run
        time.sleep(poll_s)


def summary_table(run: Run, wall_s: float | None = None, *, status: str | None = None) -> Table:
    """``status``: what to call the outcome where the run's own status says less (a
    collaboration that completed with failed subtasks is ``partially_failed``)."""
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("run", run.id)
    table.add_row("workflow", run.workflow)
    table.add_row("status", status or run.status.value)
    table.add_row("steps", str(run.steps_run))
    table.add_row(
        "tokens",
        f"{run.usage.total_tokens} ({run.usage.prompt_tokens} in, "
        f"{run.usage.completion_tokens} out)",
    )
    table.add_row("cost", f"${run.cost_usd:.6f}")
    elapsed = wall_s if wall_s is not None else (run.finished_at or run.updated_at) - run.created_at
    table.add_row("wall time", f"{elapsed:.2f}s")
    if run.error is not None:
        table.add_row("error", f"{run.error.step}: {run.error.type}: {run.error.message}")
    if run.output is not None:
        text = run.output if isinstance(run.output, str) else json.dumps(run.output, indent=2)
        table.add_row("output", text)
    return table


def diff_table(diff: RunDiff) -> Table:
    """A run and its replay side by side: each step's tokens, cost and time; each node's
    output, same or changed."""
    table = Table("step", "status", "tokens", "cost", "ms", title=f"{diff.a.id}  →  {diff.b.id}")
    columns: list[Callable[[StepSide], str]] = [
        lambda s: s.status,
        lambda s: str(s.tokens),
        lambda s: f"${s.cost_usd:.6f}",
        lambda s: f"{s.duration_ms or 0:.1f}",
    ]
    for step in diff.steps:
        cells = [
            " → ".join(pick(x) if x is not None else "—" for x in (step.a, step.b))
            for pick in columns
        ]
        table.add_row(step.key, *cells)
    changed = [n.node for n in diff.nodes if not n.same]
    outputs = f"outputs changed: {', '.join(changed)}" if changed else "outputs: the same"
    table.caption = (
        f"{outputs}; total ${diff.a.cost_usd:.6f} → ${diff.b.cost_usd:.6f}, "
        f"{diff.a.tokens} → {diff.b.tokens} tokens"
    )
    return table
