"""The ``agentfn`` command line: scaffold, validate, run and inspect workflows locally.

Every error a user can cause prints one readable line and exits with code 2.
"""

from __future__ import annotations

import json
import shutil
import signal as os_signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Column, Table
from typer.exceptions import TyperException

from agentfn.engine import Engine
from agentfn.functions.local.cli_support import State, err, fail, out, user_errors
from agentfn.functions.local.eval_cli import evaluate, tune
from agentfn.functions.local.keys_cli import keys_app
from agentfn.functions.local.progress import (
    CollaborationPrinter,
    Printer,
    ProgressPrinter,
    diff_table,
    subtask_table,
    summary_table,
    watch,
)
from agentfn.functions.local.tenants_cli import costs, tenants_app
from agentfn.functions.local.threads_cli import threads_app
from agentfn.functions.local.workers import WorkerPool, serve_worker
from agentfn.functions.runtime import build_engine
from agentfn.runs import Run
from agentfn.settings import Settings
from agentfn.workflows import InputSpec, LoadedBlueprint, load_blueprint

if TYPE_CHECKING:
    from agentfn.functions.local.deploy import Stack

EXAMPLE = Path(__file__).parent / "example"
EXAMPLE_FILES = ("workflow.yaml", "tools.py", "model_rules.yaml")

app = typer.Typer(
    name="agentfn",
    help="Run AI agents and multi-agent workflows locally, then on any cloud.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="Inspect runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(keys_app, name="keys")
app.add_typer(tenants_app, name="tenants")
app.add_typer(threads_app, name="threads")
app.command()(costs)
app.command("eval")(evaluate)
app.command()(tune)

EXIT_WAITING = 3  # `run`: 0 completed, 1 failed or timed out, 2 bad usage, 3 parked on a wait


def _version(value: bool) -> None:
    if value:
        from agentfn import __version__

        out.print(f"agentfn {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    home: Annotated[
        Path | None,
        typer.Option(help="Data folder of the local runtime (env AGENTFN_HOME, default .agentfn)."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    folder = home or Settings.from_env().home
    if folder.exists() and not folder.is_dir():
        raise fail(f"--home {str(folder)!r} is a file, not a folder (AGENTFN_HOME or --home)")
    State.home = home


def resolve_run(engine: Engine, run_id: str) -> str:
    """A run id, or a unique prefix of one (as `runs list` prints them)."""
    from agentfn.errors import NotFound

    try:
        return engine.store.get(run_id).id
    except NotFound:
        pass
    matches: list[str] = []
    cursor: str | None = None
    while True:
        runs, cursor = engine.store.list_runs(cursor=cursor, limit=500)
        matches += [r.id for r in runs if r.id.startswith(run_id)]
        if cursor is None:
            break
    if not matches:
        raise fail(f"no run {run_id!r} (see `agentfn runs list`)")
    if len(matches) > 1:
        raise fail(f"{len(matches)} runs start with {run_id!r}: give more of the id")
    return matches[0]


# ---------------------------------------------------------------- project


@app.command()
@user_errors
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the project in.")] = Path("."),
) -> None:
    """Scaffold a project: a sample tool module, agents and a workflow."""
    directory.mkdir(parents=True, exist_ok=True)
    clashes = [name for name in EXAMPLE_FILES if (directory / name).exists()]
    if clashes:
        raise fail(f"{directory / clashes[0]} already exists; choose an empty folder")
    for name in EXAMPLE_FILES:
        shutil.copyfile(EXAMPLE / name, directory / name)
    out.print(f"created {', '.join(EXAMPLE_FILES)} in {directory}")
    out.print(
        f"next: agentfn run {directory / 'workflow.yaml'} --input subject='serverless agents'"
    )


@app.command()
@user_errors
def validate(file: Annotated[Path, typer.Argument(help="Workflow YAML file.")]) -> None:
    """Check a workflow: schema, references, tools, expressions and graph shape."""
    loaded = load_blueprint(file)
    bp = loaded.blueprint
    out.print(f"ok: {file}: workflow {bp.name!r}, {len(bp.nodes)} nodes, {len(bp.edges)} edges")


# ---------------------------------------------------------------- running


def parse_inputs(
    pairs: list[str], as_json: str | None, declared: Mapping[str, InputSpec] | None = None
) -> dict[str, Any]:
    """``-i name=value`` pairs: a value is JSON when it parses as JSON, except for an input
    declared as a string, which takes the text as written (``-i order_id=123``)."""
    declared = declared or {}
    values: dict[str, Any] = {}
    if as_json is not None:
        try:
            loaded = json.loads(as_json)
        except json.JSONDecodeError as exc:
            raise fail(f"--input-json is not valid JSON: {exc.msg}") from None
        if not isinstance(loaded, dict):
            raise fail("--input-json must be a JSON object")
        values.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise fail(f"--input {pair!r} must look like name=value")
        spec = declared.get(key)
        if spec is not None and spec.type == "string":
            values[key] = raw
            continue
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return values


def drive(
    start: Callable[[Engine], Run],
    printer_of: Callable[[Engine], Printer],
    *,
    workers: int,
    timeout: float,
    quiet: bool,
) -> tuple[Engine, Run, float]:
    """Start a run and drive it with worker processes (or in-process), showing progress;
    returns the engine, the run as it ended (or as the time ran out) and the wall time."""
    settings = State.settings()
    engine = build_engine(settings)
    began = time.monotonic()
    run = start(engine)
    if not quiet:
        out.print(
            f"[bold]run {run.id}[/] ({run.workflow}) with {workers or 'in-process'} worker(s)"
        )
    printer = None if quiet else printer_of(engine)
    if workers > 0:
        with WorkerPool(settings, workers) as pool:
            run = watch(
                engine.store, run.id, printer, timeout_s=timeout, alive=lambda: pool.alive() > 0
            )
    else:
        stopping = threading.Event()
        thread = threading.Thread(
            target=engine.work, kwargs={"stop": stopping.is_set, "poll_s": 0.1}
        )
        thread.start()
        try:
            run = watch(engine.store, run.id, printer, timeout_s=timeout)
        finally:
            stopping.set()
            thread.join()
    return engine, run, time.monotonic() - began


def execute(
    start: Callable[[Engine], Run],
    loaded: LoadedBlueprint,
    *,
    workers: int,
    timeout: float,
    quiet: bool,
) -> None:
    """Run a workflow with a line per node as it starts and finishes, then summarise."""
    _, run, wall_s = drive(
        start,
        lambda engine: ProgressPrinter(out, loaded.blueprint),
        workers=workers,
        timeout=timeout,
        quiet=quiet,
    )
    out.print(summary_table(run, wall_s))
    if run.status.value == "completed":
        return
    if run.status.value == "waiting":
        signal_name = next((w.signal for w in run.waiting.values()), "<name>")
        err.print(
            f"run {run.id} is waiting for signal {signal_name!r}: send it with "
            f"`agentfn signal {run.id} {signal_name}`; a worker must then be running to go on "
            "(`agentfn worker`, or `agentfn serve`), and so must one for a wait's timeout",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_WAITING)
    if not run.status.terminal:
        err.print(f"[red]error:[/] run {run.id} did not finish within {timeout:g}s")
    raise typer.Exit(1)


@app.command()
@user_errors
def run(
    file: Annotated[Path, typer.Argument(help="Workflow YAML file.")],
    input: Annotated[
        list[str], typer.Option("--input", "-i", help="name=value (value parsed as JSON if it is)")
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    input_json: Annotated[str | None, typer.Option(help="All inputs as one JSON object.")] = None,
    workers: Annotated[
        int, typer.Option(min=0, max=64, help="Worker processes (0 = in-process).")
    ] = 2,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the run.")] = 600,
    quiet: Annotated[bool, typer.Option(help="Only print the summary.")] = False,
    thread: Annotated[
        str | None,
        typer.Option(help="Continue this conversation thread (created if new; see `threads`)."),
    ] = None,
    thread_ttl: Annotated[
        float | None,
        typer.Option(min=1, help="Seconds the thread lives after this run's messages."),
    ] = None,
) -> None:
    """Run a workflow locally to completion, with a progress display."""
    if thread_ttl is not None and thread is None:
        raise fail("--thread-ttl needs --thread")
    loaded = load_blueprint(file)
    values = parse_inputs(input, input_json, loaded.blueprint.inputs)
    execute(
        lambda e: e.start(loaded, values, thread=thread, thread_ttl_s=thread_ttl),
        loaded,
        workers=workers,
        timeout=timeout,
        quiet=quiet,
    )


@app.command()
@user_errors
def collaborate(
    file: Annotated[
        Path, typer.Argument(help="Collaboration YAML file: team, and subtasks or a task.")
    ],
    workers: Annotated[
        int, typer.Option(min=0, max=64, help="Worker processes (0 = in-process).")
    ] = 2,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for it.")] = 600,
    quiet: Annotated[bool, typer.Option(help="Only print the summary.")] = False,
) -> None:
    """Run a collaboration locally: its subtasks on the team's agents, with live progress.

    Exit code 0: every subtask completed; 1: some failed (the others' results are kept) or
    it did not finish; 2: the file or plan cannot run."""
    from agentfn.collaboration import collaboration_view
    from agentfn.collaboration.files import load_collaboration
    from agentfn.collaboration.planner import log_planning

    def start(engine: Engine) -> Run:
        loaded, given, planning = load_collaboration(file, engine.model_factory)
        run = engine.start(loaded, given)
        if planning is not None:
            log_planning(engine.prompts, run.id, planning, at=run.created_at)
        return run

    engine, run, wall_s = drive(
        start,
        lambda e: CollaborationPrinter(out, e.store),
        workers=workers,
        timeout=timeout,
        quiet=quiet,
    )
    view = collaboration_view(engine.store, run.id)
    out.print(subtask_table(view))
    out.print(summary_table(run, wall_s, status=view.status))
    if view.status == "completed":
        return
    if view.status == "partially_failed":
        failed = ", ".join(f"{sub} ({e.type})" for sub, e in sorted(view.failures.items()))
        err.print(
            f"{len(view.failures)} subtask(s) failed: {failed}; "
            f"{view.progress['skipped']} skipped behind them, {view.progress['completed']} "
            "completed (their results are kept)",
            highlight=False,
            soft_wrap=True,
        )
    elif not run.status.terminal:
        err.print(f"[red]error:[/] collaboration {run.id} did not finish within {timeout:g}s")
    raise typer.Exit(1)


@app.command()
@user_errors
def replay(
    run_id: Annotated[str, typer.Argument(help="Run to replay.")],
    live: Annotated[
        bool, typer.Option(help="Call the models again instead of the prompt log.")
    ] = False,
    model: Annotated[
        str | None, typer.Option(help="Another model name for every model of the blueprint.")
    ] = None,
    temperature: Annotated[
        float | None, typer.Option(min=0, max=2, help="Another temperature for every agent.")
    ] = None,
    instructions: Annotated[
        list[str] | None,
        typer.Option(help="AGENT=TEXT: other instructions for an agent (repeatable)."),
    ] = None,
    workers: Annotated[int, typer.Option(min=0, max=64)] = 2,
    timeout: Annotated[float, typer.Option(min=1)] = 600,
    quiet: bool = False,
) -> None:
    """Re-run a run on its blueprint and input — served from its prompt log, or with another
    model, temperature or instructions — then show what changed, step by step."""
    from agentfn.replay import ReplayChanges, diff_runs

    pairs = {}
    for item in instructions or []:
        agent, sep, text = item.partition("=")
        if not sep or not agent.strip():
            raise fail(f"--instructions {item!r}: give AGENT=TEXT")
        pairs[agent.strip()] = text
    changes = ReplayChanges(model=model, temperature=temperature, instructions=pairs)
    engine = build_engine(State.settings())
    run_id = resolve_run(engine, run_id)
    original = engine.store.get(run_id)
    loaded = engine.store.load_blueprint(original.blueprint_key)
    if changes.any:
        loaded = changes.apply(loaded)  # refused here, before anything runs
    started: list[Run] = []

    def start(e: Engine) -> Run:
        started.append(e.replay(run_id, live=live, changes=changes))
        return started[-1]

    try:
        execute(start, loaded, workers=workers, timeout=timeout, quiet=quiet)
    finally:
        if started:
            out.print(diff_table(diff_runs(engine.store, run_id, started[-1].id)))


@app.command("signal")
@user_errors
def send_signal(
    run_id: str,
    name: str,
    payload: Annotated[str, typer.Option(help="JSON payload of the signal.")] = "null",
) -> None:
    """Send a named signal (an approval, a callback) to a run parked on a wait node."""
    try:
        value = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise fail(f"--payload is not valid JSON: {exc.msg}") from None
    engine = build_engine(State.settings())
    run = engine.signal(resolve_run(engine, run_id), name, value)
    out.print(f"signal {name!r} delivered to {run.id}; status {run.status.value}")
    if run.status.value == "waiting" or not run.status.terminal:
        out.print("a worker carries the run on: `agentfn worker` or `agentfn serve`")


@app.command()
@user_errors
def cancel(run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")]) -> None:
    """Cancel a run: steps still queued are skipped when they arrive."""
    engine = build_engine(State.settings())
    run = engine.cancel(resolve_run(engine, run_id))
    out.print(f"run {run.id}: {run.status.value}")


@app.command()
@user_errors
def worker(
    poll: Annotated[
        float,
        typer.Option(
            min=0.001,
            help="Seconds between an idle worker's looks at the queue; a new local job "
            "wakes it at once.",
        ),
    ] = 0.5,
) -> None:
    """Process jobs from the queue until stopped (SIGTERM finishes the job in hand)."""
    serve_worker(State.settings(), poll_s=poll)


@app.command()
@user_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0 = any free port).")] = 8080,
    workers: Annotated[int, typer.Option(min=0, max=64, help="Worker processes.")] = 2,
) -> None:
    """Serve the HTTP API and run workers on the local default."""
    from agentfn.functions.local.server import serve as bind
    from agentfn.functions.runtime import Runtime
    from agentfn.json_logs import install_json_logging

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    os_signal.signal(os_signal.SIGTERM, stop)  # stop the workers too, not just this process
    settings = State.settings()
    install_json_logging()  # the API's lines, with each request's correlation id
    runtime = Runtime(settings)
    try:
        server = bind(runtime.api, host, port)
    except OSError as exc:  # a busy port, an address this machine does not have
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    out.print(f"agentfn API on http://{host}:{server.server_address[1]} with {workers} worker(s)")
    with WorkerPool(settings, workers, log_level="INFO") as pool:
        if workers:  # `--workers 0` serves the API alone, like an HTTP function
            runtime.probes["workers"] = pool.state
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            out.print("stopping")
        finally:
            server.server_close()


@app.command()
@user_errors
def package(
    cloud: Annotated[str, typer.Option(help="aws, gcp or azure")],
    dest: Annotated[Path, typer.Option("--out", help="Folder for the artifact.")] = Path("dist"),
    project: Annotated[
        Path | None, typer.Option(help="Project folder (workflows, tools) to ship.")
    ] = None,
) -> None:
    """Build the deployable artifact for one cloud and print its size."""
    from agentfn.functions.local.packaging import package as build

    artifact = build(cloud, dest, project)
    out.print(
        f"{artifact.cloud}: {artifact.path} ({artifact.size_bytes / 2**20:.1f} MiB, "
        f"sha256 {artifact.sha256[:12]})"
    )


# ---------------------------------------------------------------- deploying

CloudOption = Annotated[str, typer.Option("--cloud", help="aws, gcp or azure")]
NameOption = Annotated[str, typer.Option("--name", help="Stack name.")]
RegionOption = Annotated[
    str | None, typer.Option("--region", help="Region (AWS, GCP) or location (Azure).")
]
VarOption = Annotated[
    list[str], typer.Option("--var", help="Extra Terraform variable, name=value (repeatable).")
]
WorkdirOption = Annotated[
    Path | None, typer.Option("--workdir", help="Folder holding the stack's Terraform state.")
]


def stack_of(
    cloud: str, name: str, region: str | None, extra: list[str], workdir: Path | None
) -> Stack:
    from agentfn.functions.local.deploy import LOCATION_VARIABLE, Stack

    variables = {"name": name}
    if region:
        variables[LOCATION_VARIABLE.get(cloud, "region")] = region
    for pair in extra:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"--var {pair!r} must look like name=value")
        variables[key] = value
    home = Settings.from_env(home=State.home).home
    return Stack(cloud, workdir or home / "deploy" / f"{cloud}-{name}", variables)


@app.command()
@user_errors
def deploy(
    cloud: CloudOption,
    name: NameOption = "agentfn",
    region: RegionOption = None,
    var: VarOption = [],  # noqa: B006 - typer reads the default, never mutates it
    project: Annotated[Path | None, typer.Option(help="Project folder to ship.")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Only show the plan.")] = False,
    workdir: WorkdirOption = None,
) -> None:
    """Package, then terraform init/plan/apply; record the version in the stack's bucket."""
    from agentfn.functions.local.deploy import deploy as run_deploy

    deployed = run_deploy(
        stack_of(cloud, name, region, var, workdir), project=project, plan_only=plan
    )
    if deployed is not None:
        out.print(
            f"deployed version {deployed.number} ({deployed.artifact_sha256[:12]}) "
            f"by {deployed.deployed_by}"
        )


@app.command()
@user_errors
def deployments(
    cloud: CloudOption,
    name: NameOption = "agentfn",
    region: RegionOption = None,
    workdir: WorkdirOption = None,
) -> None:
    """List the recorded versions of a stack."""
    from agentfn.functions.local.deploy import bucket_store, deployments as list_versions

    stack = stack_of(cloud, name, region, [], workdir)
    versions = list_versions(bucket_store(cloud, stack.outputs()["bucket"]))
    table = Table("version", "artifact", "deployed", "by", "rollback of")
    for d in versions:
        table.add_row(
            str(d.number),
            d.artifact_sha256[:12],
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.deployed_at)),
            d.deployed_by,
            str(d.rollback_of or ""),
        )
    out.print(table)


@app.command()
@user_errors
def rollback(
    cloud: CloudOption,
    to: Annotated[int, typer.Option("--to", min=1, help="Version number to redeploy.")],
    name: NameOption = "agentfn",
    region: RegionOption = None,
    var: VarOption = [],  # noqa: B006 - typer reads the default, never mutates it
    workdir: WorkdirOption = None,
) -> None:
    """Redeploy the artifact of version N (recorded as a new version)."""
    from agentfn.functions.local.deploy import rollback as run_rollback

    deployed = run_rollback(stack_of(cloud, name, region, var, workdir), to)
    out.print(f"rolled back to version {to}: now version {deployed.number}")


@app.command()
@user_errors
def destroy(
    cloud: CloudOption,
    name: NameOption = "agentfn",
    region: RegionOption = None,
    var: VarOption = [],  # noqa: B006 - typer reads the default, never mutates it
    workdir: WorkdirOption = None,
) -> None:
    """terraform destroy the stack."""
    from agentfn.functions.local.deploy import destroy as run_destroy

    run_destroy(stack_of(cloud, name, region, var, workdir))
    out.print(f"destroyed {cloud} stack {name}")


@app.command()
@user_errors
def demo(
    workers: Annotated[int, typer.Option(min=0, max=16)] = 2,
) -> None:
    """Run the bundled example workflow on the local default, in a fresh data folder."""
    home = State.home or Path(".agentfn-demo")
    shutil.rmtree(home, ignore_errors=True)
    State.home = home
    loaded = load_blueprint(EXAMPLE / "workflow.yaml")
    values = {"subject": "serverless AI agents"}
    out.print(
        "[bold]agentfn demo[/]: files + SQLite queue + scripted model, "
        f"{workers} worker processes, data in {home}/"
    )
    execute(lambda e: e.start(loaded, values), loaded, workers=workers, timeout=300, quiet=False)


# ---------------------------------------------------------------- inspecting


@runs_app.command("list")
@user_errors
def runs_list(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
) -> None:
    """List runs, newest first (ids in full; any unique prefix works where a run id goes)."""
    runs, _ = build_engine(State.settings()).runs(limit=limit)
    if as_json:
        for r in runs:
            sys.stdout.write(r.model_dump_json() + "\n")
        return
    width = max((len(r.id) for r in runs), default=3)  # ids are copied: never cut them
    run_column = Column("run", no_wrap=True, min_width=width)
    table = Table(run_column, "workflow", "status", "steps", "tokens", "cost", "created")
    for r in runs:
        table.add_row(
            r.id,
            r.workflow,
            r.status.value,
            str(r.steps_run),
            str(r.usage.total_tokens),
            f"${r.cost_usd:.6f}",
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at)),
        )
    out.print(table)


@runs_app.command("show")
@user_errors
def runs_show(
    run_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run record as JSON.")] = False,
) -> None:
    """Show a run: status, every step, tokens, cost and output."""
    engine = build_engine(State.settings())
    run_id = resolve_run(engine, run_id)
    record = engine.run(run_id)
    steps = sorted(engine.store.steps(run_id), key=lambda s: s.started_at)
    if as_json:
        doc = {
            "run": record.model_dump(mode="json"),
            "steps": [s.model_dump(mode="json", exclude={"outcome"}) for s in steps],
            "prompts": [p.model_dump(mode="json") for p in engine.prompts.entries(run_id)],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    out.print(summary_table(record))
    table = Table("step", "status", "attempt", "ms", "tokens", "cost", "error")
    for s in steps:
        usage = s.outcome.usage.total_tokens if s.outcome else 0
        cost = s.outcome.cost_usd if s.outcome else 0.0
        table.add_row(
            s.key,
            s.status,
            str(s.attempt),
            f"{s.duration_ms:.1f}" if s.duration_ms is not None else "",
            str(usage),
            f"${cost:.6f}",
            s.error or "",
        )
    out.print(table)


def main() -> None:
    """Run the command; a usage error (an unknown option, a value out of range) is one line
    and exit code 2, like every other error a user can cause."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except TyperException as exc:  # the parser's errors: typer's click raises these
        form = getattr(exc, "format_message", None)
        message = form() if form is not None else str(exc)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        err.print(f"[red]error:[/] {escape(message)}{hint}", highlight=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
