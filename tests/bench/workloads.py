"""The durable-execution workloads every system runs, as data, and agentfn's side of them.

Each workload is the same for agentfn, DBOS and LangGraph (tests/bench/peers.py): a chain of
trivial steps, each taking the previous step's output; a fan-out of items that each sleep;
many one-step runs. agentfn runs on every configuration of ``CONFIGS``: a new store or a new
durability setting is one line there.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentfn.adapters.local.env_secrets import EnvSecretStore
from agentfn.adapters.models.factory import build_model
from agentfn.engine import Engine
from agentfn.functions.local.workers import WorkerPool
from agentfn.model_spec import ModelSpec
from agentfn.ports import Model
from agentfn.settings import Settings
from agentfn.workflows import LoadedBlueprint, load_blueprint

CHAIN = 100  # steps of the headline chain
CHAIN_LENGTHS = (25, 100, 400)  # per-step time must stay flat across these
FAN_OUT = 200  # items of the fan-out
FAN_OUT_SLEEP_S = 0.05  # what each item does: wait, as a model call would
FAN_OUT_WORKERS = (1, 2, 4)
SMALL_RUNS = 200  # one-step runs, end to end


@dataclass(frozen=True)
class Config:
    """One way to deploy agentfn locally: its store and queue URLs, and what a commit means."""

    storage: str  # a URL template; {dir} is the run's folder
    queue: str
    durability: str
    fsync_each_commit: bool

    def urls(self, folder: Path) -> tuple[str, str]:
        return self.storage.format(dir=folder), self.queue.format(dir=folder)


CONFIGS: dict[str, Config] = {
    "agentfn (local default: SQLite)": Config(
        "sqlite://{dir}/agentfn.db",
        "sqlite://{dir}/agentfn.db",
        "SQLite WAL, synchronous=NORMAL, store and queue in one file: every commit survives "
        "a crashed process; fsync at checkpoints, so a power cut may roll back the last commits",
        fsync_each_commit=False,
    ),
    "agentfn (SQLite, fsync each commit)": Config(
        "sqlite://{dir}/agentfn.db?synchronous=full",
        "sqlite://{dir}/agentfn.db?synchronous=full",
        "SQLite WAL, synchronous=FULL, store and queue in one file: every commit fsynced",
        fsync_each_commit=True,
    ),
    "agentfn (file per object)": Config(
        "file://{dir}/store",
        "sqlite://{dir}/queue.db",
        "files renamed into place, never fsynced; queue as the default",
        fsync_each_commit=False,
    ),
}

TOOLS = """
import time

from agentfn.tools import tool


@tool
def add(a: int, b: int) -> int:
    return a + b


@tool
def nap(seconds: float, index: int) -> int:
    time.sleep(seconds)
    return index
"""


def chain_yaml(steps: int) -> str:
    lines = ["name: bench-chain", "tools: [tools.py]", "nodes:"]
    lines.append("  - {id: n0, type: tool, tool: add, args: {a: 0, b: 1}}")
    for i in range(1, steps):
        lines.append(
            f"  - {{id: n{i}, type: tool, tool: add, "
            f"args: {{a: '{{{{ steps.n{i - 1}.output }}}}', b: 1}}}}"
        )
    lines.append("edges:")
    lines += [f"  - {{from: n{i - 1}, to: n{i}}}" for i in range(1, steps)]
    return "\n".join(lines) + "\n"


def fan_out_yaml(items: int, sleep_s: float) -> str:
    return (
        "name: bench-fan-out\ntools: [tools.py]\nnodes:\n"
        f"  - {{id: each, type: parallel, for_each: 'input.items', max_items: {items}, "
        f"tool: nap, args: {{seconds: {sleep_s}, index: '{{{{ index }}}}'}}}}\n"
        "inputs:\n  items: {type: array}\n"
    )


SMALL_YAML = (
    "name: bench-small\ntools: [tools.py]\n"
    "nodes:\n  - {id: one, type: tool, tool: add, args: {a: 1, b: 1}}\n"
)


def blueprint(folder: Path, yaml: str, name: str) -> LoadedBlueprint:
    (folder / "tools.py").write_text(TOOLS)
    path = folder / f"{name}.yaml"
    path.write_text(yaml)
    return load_blueprint(path)


def engine(config: Config, folder: Path) -> Engine:
    from agentfn.adapters.registry import open_blobstore, open_queue

    storage, queue_url = config.urls(folder)
    blobs, queue = open_blobstore(storage), open_queue(queue_url)
    return Engine(blobs, queue, model_factory=model_factory())


def model_factory() -> Callable[[ModelSpec, Path], Model]:
    secrets = EnvSecretStore(None)

    def factory(spec: ModelSpec, base_dir: Path) -> Model:
        return build_model(spec, secrets=secrets, base_dir=base_dir)

    return factory


def drain(engine: Engine) -> None:
    """Handle jobs in this process until the queue is empty (one worker, no polling)."""
    while messages := engine.queue.receive(10, visibility_timeout=60):
        for message in messages:
            engine.handle(message)


def chain_s_per_step(config: Config, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loaded = blueprint(folder, chain_yaml(steps), "chain")
        eng = engine(config, folder)
        started = time.perf_counter()
        run = eng.start(loaded, {})
        drain(eng)
        elapsed = time.perf_counter() - started
        final = eng.store.get(run.id)
        assert final.status.value == "completed" and final.steps_run == steps, final.error
        return elapsed / steps


def small_runs_per_s(config: Config, runs: int = SMALL_RUNS) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loaded = blueprint(folder, SMALL_YAML, "small")
        eng = engine(config, folder)
        started = time.perf_counter()
        ids = [eng.start(loaded, {}).id for _ in range(runs)]
        drain(eng)
        elapsed = time.perf_counter() - started
        assert all(eng.store.get(i).status.value == "completed" for i in ids)
        return runs / elapsed


def fan_out_wall_s(config: Config, workers: int) -> float:
    """Wall time of one fan-out run on ``workers`` worker processes (started and idle first)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loaded = blueprint(folder, fan_out_yaml(FAN_OUT, FAN_OUT_SLEEP_S), "fan")
        storage, queue_url = config.urls(folder)
        env = {"AGENTFN_STORAGE": storage, "AGENTFN_QUEUE": queue_url, "AGENTFN_HOME": str(folder)}
        settings = Settings.from_env({**os.environ, **env})
        eng = engine(config, folder)
        with WorkerPool(settings, workers):
            time.sleep(3.0)  # the workers have imported, connected and sleep on the doorbell
            started = time.perf_counter()
            run = eng.start(loaded, {"items": list(range(FAN_OUT))})
            while not (final := eng.store.get(run.id)).status.terminal:
                time.sleep(0.005)
            elapsed = time.perf_counter() - started
        assert final.status.value == "completed", final.error
        return elapsed


def first_step_latency_s(config: Config) -> float:
    """From start() to the first step's record, with one idle worker process waiting."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loaded = blueprint(folder, SMALL_YAML, "small")
        storage, queue_url = config.urls(folder)
        env = {"AGENTFN_STORAGE": storage, "AGENTFN_QUEUE": queue_url, "AGENTFN_HOME": str(folder)}
        settings = Settings.from_env({**os.environ, **env})
        eng = engine(config, folder)
        samples = []
        with WorkerPool(settings, 1):
            time.sleep(3.0)
            for _ in range(5):
                started = time.perf_counter()
                run = eng.start(loaded, {})
                while eng.store.get_step(run.id, "one") is None:
                    time.sleep(0.0005)
                samples.append(time.perf_counter() - started)
                time.sleep(0.3)  # idle again
        return sorted(samples)[len(samples) // 2]
