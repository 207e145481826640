"""``agentfn eval SUITE`` and ``agentfn tune SUITE --grid ...``: run a suite's cases on the local
runtime and score them; for a grid, once per configuration, ranked (docs/observability.md)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from agentfn.functions.local.cli_support import State, out, user_errors
from agentfn.functions.local.progress import watch
from agentfn.functions.local.workers import WorkerPool
from agentfn.functions.runtime import build_engine

if TYPE_CHECKING:
    from agentfn.engine import Engine
    from agentfn.evaluation import JudgeCall, JudgeSpec, Suite, SuiteResult
    from agentfn.replay import ReplayChanges
    from agentfn.workflows import LoadedBlueprint

SuiteFile = Annotated[Path, typer.Argument(help="Suite YAML file.")]
Workers = Annotated[int, typer.Option(min=0, max=64, help="Worker processes (0: in-process).")]
Timeout = Annotated[float, typer.Option(min=1, help="Seconds a configuration may take.")]
AsJson = Annotated[bool, typer.Option("--json", help="The results as JSON on stdout.")]


def judge_of(engine: Engine, loaded: LoadedBlueprint, spec: JudgeSpec) -> JudgeCall:
    """The suite's judge: the named agent of the workflow, asked for PASS or FAIL."""
    from agentfn.agents import opening_messages
    from agentfn.errors import UserError
    from agentfn.ports import ChatRequest

    bp = loaded.blueprint
    agent = bp.agents.get(spec.agent)
    if agent is None:
        raise UserError(f"judge agent {spec.agent!r} is not an agent of {bp.name}", field="judge")
    model_spec = bp.models[agent.model]
    model = engine.model_factory(model_spec, loaded.base_path)

    def judge(criteria: str, text: str) -> str:
        prompt = f"Criteria: {criteria}\nAnswer PASS or FAIL, then why.\n\n{text}"
        request = ChatRequest(
            messages=opening_messages(agent, prompt),
            model=model_spec.model,
            agent=spec.agent,
            temperature=agent.temperature,
        )
        return model.chat(request).content or ""

    return judge


def run_suite(
    suite: Suite,
    workflow: Path,
    changes: ReplayChanges | None,
    *,
    workers: int,
    timeout: float,
    advance: Callable[[], None] | None = None,
) -> SuiteResult:
    """Start every case, drive them to the end, score them."""
    from agentfn.errors import UserError
    from agentfn.evaluation import score_case, summarize
    from agentfn.workflows import load_blueprint

    settings = State.settings()
    engine = build_engine(settings)
    loaded = load_blueprint(workflow)
    if changes is not None and changes.any:
        loaded = changes.apply(loaded)
    judge = judge_of(engine, loaded, suite.judge) if suite.judge is not None else None
    started = []
    for case in suite.cases:
        try:
            started.append(engine.start(loaded, case.input))
        except UserError as exc:
            raise UserError(f"case {case.name!r}: {exc.message}", field=exc.field) from None
    deadline = time.monotonic() + timeout
    with ExitStack() as stack:
        if workers > 0:
            pool = stack.enter_context(WorkerPool(settings, workers))
            alive = lambda: pool.alive() > 0  # noqa: E731
        else:
            stopping = threading.Event()
            work = {"stop": stopping.is_set, "poll_s": 0.05}
            thread = threading.Thread(target=engine.work, kwargs=work)
            thread.start()
            stack.callback(thread.join)
            stack.callback(stopping.set)
            alive = lambda: True  # noqa: E731
        ended = []
        for run in started:
            left = max(0.1, deadline - time.monotonic())
            ended.append(watch(engine.store, run.id, None, timeout_s=left, alive=alive))
            if advance is not None:
                advance()
    config = changes.model_dump(exclude_defaults=True) if changes is not None else {}
    cases = [score_case(c, r, engine.store, judge) for c, r in zip(suite.cases, ended, strict=True)]
    return summarize(suite, cases, config)


def _cases_table(result: SuiteResult) -> Table:
    table = Table("case", "status", "checks", "tokens", "cost", "s", "failed")
    for c in result.cases:
        passed = sum(r.passed for r in c.checks)
        failed = "; ".join(
            f"{r.check}: {r.detail}" if r.detail else r.check for r in c.checks if not r.passed
        )
        seconds = f"{c.seconds:.2f}" if c.seconds is not None else ""
        checks = f"{passed}/{len(c.checks)}"
        cost = f"${c.cost_usd:.6f}"
        table.add_row(c.case, c.status, checks, str(c.tokens), cost, seconds, failed[:120])
    return table


@user_errors
def evaluate(
    suite_file: SuiteFile, workers: Workers = 0, timeout: Timeout = 600, as_json: AsJson = False
) -> None:
    """Run a suite's cases and score them: exit 0 when every check passed, 1 otherwise."""
    from agentfn.evaluation import load_suite

    suite, workflow = load_suite(suite_file)
    result = run_suite(suite, workflow, None, workers=workers, timeout=timeout)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        out.print(_cases_table(result))
        mean = f"{result.mean_seconds:.2f} s" if result.mean_seconds is not None else "-"
        out.print(f"score {result.score:.3f}  cost ${result.cost_usd:.6f}  mean latency {mean}")
    if result.score < 1:
        raise typer.Exit(1)


@user_errors
def tune(
    suite_file: SuiteFile,
    grid: Annotated[
        list[str],
        typer.Option(help="NAME=V1,V2...: model, temperature or instructions.<agent> (@file)."),
    ],
    workers: Workers = 0,
    timeout: Timeout = 600,
    as_json: AsJson = False,
) -> None:
    """Run the suite once per configuration of the grid and rank them by score, then cost."""
    from agentfn.evaluation import changes, load_suite, parse_grid, rank

    suite, workflow = load_suite(suite_file)
    configs = parse_grid(grid)
    results = []
    with Progress(console=out, transient=True, disable=as_json) as progress:
        task = progress.add_task("tuning", total=len(configs) * len(suite.cases))
        for config in configs:
            label = ", ".join(f"{k}={str(v)[:20]}" for k, v in config.items())
            progress.update(task, description=label)
            results.append(
                run_suite(
                    suite,
                    workflow,
                    changes(config),
                    workers=workers,
                    timeout=timeout,
                    advance=lambda: progress.advance(task),
                )
            )
    ranked = rank(results)
    if as_json:
        sys.stdout.write("[" + ",".join(r.model_dump_json() for r in ranked) + "]\n")
        return
    table = Table("rank", "configuration", "score", "cost", "mean s")
    for i, r in enumerate(ranked, 1):
        label = ", ".join(f"{k}={str(v)[:30]}" for k, v in sorted(r.config.items()))
        mean = f"{r.mean_seconds:.2f}" if r.mean_seconds is not None else ""
        table.add_row(str(i), label or "(as written)", f"{r.score:.3f}", f"${r.cost_usd:.6f}", mean)
    out.print(table)
