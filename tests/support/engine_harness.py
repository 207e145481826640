"""Build an engine on the real local adapters in a temp folder and drive runs to the end."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from agentfn.adapters.local.env_secrets import EnvSecretStore
from agentfn.adapters.local.filesystem import FileBlobStore
from agentfn.adapters.local.sqlite_queue import SqliteQueue
from agentfn.adapters.models.factory import build_model
from agentfn.engine import Engine
from agentfn.model_spec import ModelSpec
from agentfn.ports import Model
from agentfn.runs import Run

TOOLS = '''
import time
from pathlib import Path

from agentfn.tools import tool

LEDGER = Path(__file__).with_name("ledger.txt")


def note(text: str) -> None:
    with LEDGER.open("a") as f:
        f.write(text + "\\n")


@tool
def record(label: str) -> str:
    """Append a label to the ledger and return it upper-cased."""
    note(label)
    return label.upper()


@tool
def slow(label: str, seconds: float = 0.0) -> str:
    """Sleep, noting start and end in the ledger."""
    note("start:" + label)
    time.sleep(seconds)
    note("end:" + label)
    return label


@tool
def explode(message: str) -> str:
    """Always fails."""
    note("explode")
    raise RuntimeError(message)


@tool
def flaky(label: str) -> str:
    """Fails the first time it sees a label, then succeeds (a transient outage)."""
    seen = LEDGER.read_text().splitlines() if LEDGER.exists() else []
    if "fail:" + label not in seen:
        note("fail:" + label)
        raise RuntimeError("transient failure for " + label)
    note(label)
    return label


@tool
def count(n: int) -> list[int]:
    return list(range(n))


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def length(text: str) -> int:
    """A score: how long a text is (noted, to count the calls)."""
    note("score:" + text)
    return len(text)


@tool
def verdict(text: str) -> str:
    """Not a score: a word."""
    return "good"
'''

RULES = """
model: scripted-test
rules:
  - agent: looper
    reply:
      tool_calls:
        - name: record
          arguments: {label: again}
  - agent: helper
    after_tool: false
    match: "label (?P<label>\\\\w+)"
    reply:
      tool_calls:
        - name: record
          arguments: {label: "{label}"}
  - agent: helper
    after_tool: true
    reply:
      content: "helper saw {tool_result}"
default:
  content: "echo: {last_user}"
"""

HEADER = """
tools: [tools.py]
models:
  default: {provider: scripted, rules: rules.yaml}
prices:
  scripted-test: {input_per_mtok: 1.0, output_per_mtok: 2.0}
agents:
  echo: {instructions: Repeat the prompt.}
  helper: {instructions: Use the record tool., tools: [record]}
  looper: {instructions: Never stop., tools: [record], max_steps: 3}
"""


def project(tmp_path: Path, body: str, *, name: str = "wf") -> Path:
    """Write a workflow (HEADER + body) with the test tools and rules; return its path."""
    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    (folder / "tools.py").write_text(TOOLS)
    (folder / "rules.yaml").write_text(RULES)
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\n" + HEADER + textwrap.dedent(body))
    return path


def ledger(workflow: Path) -> list[str]:
    path = workflow.parent / "ledger.txt"
    return path.read_text().splitlines() if path.exists() else []


def make_engine(
    tmp_path: Path, *, lease_s: float = 5.0, max_attempts: int = 5, worker: str | None = None
) -> Engine:
    blobs = FileBlobStore(tmp_path / "store")
    queue = SqliteQueue(tmp_path / "queue.db", max_attempts=max_attempts)
    secrets = EnvSecretStore(None)

    def factory(spec: ModelSpec, base_dir: Path) -> Model:
        return build_model(spec, secrets=secrets, base_dir=base_dir)

    return Engine(
        blobs,
        queue,
        model_factory=factory,
        lease_s=lease_s,
        worker=worker,
        delivery_limit=max_attempts,
    )


def drain(
    engine: Engine, run_id: str, *, timeout_s: float = 20.0, stop_when_waiting: bool = True
) -> Run:
    """Handle jobs until the run ends or parks on a wait node with nothing else to do."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        messages = engine.queue.receive(10, visibility_timeout=engine.lease_s)
        for message in messages:
            engine.handle(message)
        run = engine.store.get(run_id)
        if run.status.terminal:
            return run
        if not messages:
            if run.status.value == "waiting" and stop_when_waiting:
                return run
            time.sleep(0.01)
    raise AssertionError(f"run {run_id} did not finish in {timeout_s}s: {engine.store.get(run_id)}")


def run_to_end(engine: Engine, workflow: Path, inputs: dict[str, object] | None = None) -> Run:
    """Start ``workflow`` (a blueprint file) and drain it (see ``drain``)."""
    from agentfn.workflows import load_blueprint

    return drain(engine, engine.start(load_blueprint(workflow), inputs or {}).id)


def recorded(engine: Engine, run_id: str) -> set[str]:
    """The steps of a run whose records say done: the run record itself lists none."""
    return {r.key for r in engine.store.steps(run_id) if r.status == "done"}
