"""`make bench`: our hot paths beside bare baselines measured in the same run.

Machines here are noisy, so the report is about ratios (ours / baseline, both measured now),
not absolute numbers. Each measurement takes the best of several repeats.

Writes bench/results.json and bench/results.md.
"""

from __future__ import annotations

import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentfn.adapters.local.env_secrets import EnvSecretStore
from agentfn.adapters.local.sqlite_blobs import SqliteBlobStore
from agentfn.adapters.local.sqlite_queue import SqliteQueue
from agentfn.adapters.models.factory import build_model
from agentfn.engine import Engine
from agentfn.model_spec import ModelSpec
from agentfn.ports import Model
from agentfn.workflows import load_blueprint

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench"
NODES = 200
QUEUE_JOBS = 2000
REPEATS = 3

TOOLS = """
from agentfn.tools import tool


@tool
def add(a: int, b: int) -> int:
    return a + b
"""


def best_of(fn: Callable[[], float], repeats: int = REPEATS) -> float:
    return min(fn() for _ in range(repeats))


def chain_workflow(folder: Path) -> Path:
    (folder / "tools.py").write_text(TOOLS)
    lines = ["name: bench-chain", "tools: [tools.py]", "nodes:"]
    lines.append("  - {id: n0, type: tool, tool: add, args: {a: 0, b: 1}}")
    for i in range(1, NODES):
        lines.append(
            f"  - {{id: n{i}, type: tool, tool: add, args: {{a: '{{{{ steps.n{i - 1}.output }}}}', b: 1}}}}"
        )
    lines.append("edges:")
    lines += [f"  - {{from: n{i - 1}, to: n{i}}}" for i in range(1, NODES)]
    path = folder / "chain.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def engine_in(folder: Path) -> Engine:
    secrets = EnvSecretStore(None)

    def factory(spec: ModelSpec, base_dir: Path) -> Model:
        return build_model(spec, secrets=secrets, base_dir=base_dir)

    database = folder / "agentfn.db"  # the local default: store and queue in one file
    return Engine(SqliteBlobStore(database), SqliteQueue(database), model_factory=factory)


def engine_steps() -> float:
    """Seconds for the engine to run the 200-node chain in one process, on the local default."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loaded = load_blueprint(chain_workflow(folder))
        engine = engine_in(folder)
        started = time.perf_counter()  # steps only: parsing the blueprint is not a step
        run = engine.start(loaded, {})
        while True:
            messages = engine.queue.receive(10, visibility_timeout=60)
            if not messages:
                break
            for message in messages:
                engine.handle(message)
        elapsed = time.perf_counter() - started
        final = engine.store.get(run.id)
        assert final.status.value == "completed" and final.steps_run == NODES, final.status
        return elapsed


def plain_loop() -> float:
    """The same work without the engine: call the tool function 200 times in a loop."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "tools.py").write_text(TOOLS)
        from agentfn.tools import load_tool_module

        add = load_tool_module(folder / "tools.py")[0]
        started = time.perf_counter()
        value = 0
        for _ in range(NODES):
            value = add.invoke({"a": value, "b": 1})
        elapsed = time.perf_counter() - started
        assert value == NODES
        return elapsed


def queue_roundtrips() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        queue = SqliteQueue(Path(tmp) / "q.db")
        started = time.perf_counter()
        for i in range(QUEUE_JOBS):
            queue.send({"i": i})
        handled = 0
        while handled < QUEUE_JOBS:
            for message in queue.receive(10, visibility_timeout=60):
                queue.ack(message)
                handled += 1
        elapsed = time.perf_counter() - started
        queue.close()
        return elapsed


def raw_sqlite() -> float:
    """Bare baseline: raw sqlite3 inserts, then select+delete, same WAL settings."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, body TEXT)")
        started = time.perf_counter()
        for i in range(QUEUE_JOBS):
            db.execute("INSERT INTO jobs (body) VALUES (?)", (json.dumps({"i": i}),))
        while True:
            rows = db.execute("SELECT id FROM jobs ORDER BY id LIMIT 10").fetchall()
            if not rows:
                break
            for (row_id,) in rows:
                db.execute("DELETE FROM jobs WHERE id = ?", (row_id,))
        elapsed = time.perf_counter() - started
        db.close()
        return elapsed


def measure() -> dict[str, Any]:
    engine_s = best_of(engine_steps)
    loop_s = best_of(plain_loop)
    queue_s = best_of(queue_roundtrips)
    raw_s = best_of(raw_sqlite)
    return {
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": [
            {
                "name": "engine steps/s (200-node workflow, local default, 1 process)",
                "ours_per_s": NODES / engine_s,
                "baseline": "plain Python loop calling the same tool",
                "baseline_per_s": NODES / loop_s,
                "slowdown": engine_s / loop_s,
            },
            {
                "name": "SQLite queue send+receive+ack/s",
                "ours_per_s": QUEUE_JOBS / queue_s,
                "baseline": "raw sqlite3 insert + select/delete",
                "baseline_per_s": QUEUE_JOBS / raw_s,
                "slowdown": queue_s / raw_s,
            },
        ],
    }


def markdown(report: dict[str, Any]) -> str:
    rows = [
        "| benchmark | ours (/s) | baseline | baseline (/s) | ours is slower by |",
        "|---|---:|---|---:|---:|",
    ]
    for r in report["results"]:
        rows.append(
            f"| {r['name']} | {r['ours_per_s']:,.0f} | {r['baseline']} | "
            f"{r['baseline_per_s']:,.0f} | {r['slowdown']:.1f}x |"
        )
    note = (
        "\nRatios, not absolute times: both sides are measured in the same run, best of "
        f"{REPEATS}. The engine's per-step cost is durability (a claim, a result record and a "
        "compare-and-swap on the run record per step, plus a queue round trip).\n"
    )
    return "\n".join(rows) + "\n" + note


def durable_execution() -> dict[str, Any]:
    """agentfn's configurations and the peers on the same workloads, interleaved per repeat
    (so drift hits every system alike), medians reported."""
    from tests.bench import peers, workloads

    systems: dict[str, Callable[[str, int], float]] = {}
    for name, config in workloads.CONFIGS.items():
        systems[name] = lambda workload, arg, c=config: _agentfn(c, workload, arg)
    missing = peers.available()
    if missing is None:
        for name in peers.SYSTEMS:
            systems[name] = lambda workload, arg, n=name: peers.run(n, workload, arg)
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in systems}
    plan = [("chain", n) for n in workloads.CHAIN_LENGTHS] + [("small", workloads.SMALL_RUNS)]
    for _ in range(REPEATS):
        for workload, arg in plan:
            for name, measure_one in systems.items():
                samples[name].setdefault(f"{workload}:{arg}", []).append(measure_one(workload, arg))
            print(f"{workload} {arg}: all systems done", file=sys.stderr, flush=True)
    for workers in workloads.FAN_OUT_WORKERS:  # long: once each
        for name, measure_one in systems.items():
            samples[name][f"fan:{workers}"] = [measure_one("fan", workers)]
            print(f"fan-out, {workers} worker(s): {name} done", file=sys.stderr, flush=True)
    median = {n: {k: statistics.median(v) for k, v in s.items()} for n, s in samples.items()}
    durability = {n: c.durability for n, c in workloads.CONFIGS.items()} | dict(peers.DURABILITY)
    fsync = {n: c.fsync_each_commit for n, c in workloads.CONFIGS.items()} | {
        n: True for n in peers.SYSTEMS
    }
    first_step = {n: workloads.first_step_latency_s(c) for n, c in workloads.CONFIGS.items()}
    return {
        "systems": {
            name: {
                "durability": durability[name],
                "fsync_each_commit": fsync[name],
                "ms_per_step": {
                    n: median[name][f"chain:{n}"] * 1000 for n in workloads.CHAIN_LENGTHS
                },
                "flatness_400_vs_25": median[name]["chain:400"] / median[name]["chain:25"],
                **_marginal(median[name]),
                "small_runs_per_s": workloads.SMALL_RUNS
                / median[name][f"small:{workloads.SMALL_RUNS}"],
                "fan_out_fraction_of_ideal": {
                    w: (workloads.FAN_OUT * workloads.FAN_OUT_SLEEP_S / w)
                    / median[name][f"fan:{w}"]
                    for w in workloads.FAN_OUT_WORKERS
                },
                "first_step_ms": first_step[name] * 1000 if name in first_step else None,
            }
            for name in systems
        },
        "peers_missing": missing,
        "repeats": REPEATS,
    }


def _marginal(median: dict[str, float]) -> dict[str, Any]:
    """What each further step costs, with the run's fixed start taken out: from the totals of
    the 25-, 100- and 400-step chains, the time per step added between 25 and 100 steps and
    between 100 and 400. A record growing with the run shows as the second above the first."""
    total = {n: median[f"chain:{n}"] * n for n in (25, 100, 400)}
    early = (total[100] - total[25]) / 75
    late = (total[400] - total[100]) / 300
    return {
        "marginal_ms_per_step": {"25-100": early * 1000, "100-400": late * 1000},
        "marginal_flatness": late / early,
    }


def _agentfn(config: Any, workload: str, arg: int) -> float:
    from tests.bench import workloads

    if workload == "chain":
        return workloads.chain_s_per_step(config, arg)
    if workload == "small":
        return arg / workloads.small_runs_per_s(config, arg)
    return workloads.fan_out_wall_s(config, arg)


def durable_markdown(report: dict[str, Any]) -> str:
    from tests.bench import workloads

    systems = report["systems"]
    dbos = systems.get("DBOS 3.4 (SQLite)")
    lengths = workloads.CHAIN_LENGTHS
    head = (
        "| system | fsync each commit | ms/step at "
        + " / ".join(str(n) for n in lengths)
        + " steps | vs DBOS (100 steps) | 400 vs 25 | each further step, ms: 25-100 / "
        "100-400 (ratio) | fan-out, fraction of ideal at "
        + " / ".join(str(w) for w in workloads.FAN_OUT_WORKERS)
        + " workers | small runs/s | first step (ms) |"
    )
    rows = [head, "|---|---|---|---:|---:|---|---|---:|---:|"]
    for name, r in systems.items():
        ratio = r["ms_per_step"][100] / dbos["ms_per_step"][100] if dbos else float("nan")
        first = f"{r['first_step_ms']:.1f}" if r["first_step_ms"] is not None else "—"
        rows.append(
            f"| {name} | {'yes' if r['fsync_each_commit'] else 'no'} | "
            + " / ".join(f"{r['ms_per_step'][n]:.2f}" for n in lengths)
            + f" | {ratio:.2f}x | {r['flatness_400_vs_25']:.2f} | "
            + f"{r['marginal_ms_per_step']['25-100']:.2f} / "
            + f"{r['marginal_ms_per_step']['100-400']:.2f} ({r['marginal_flatness']:.2f}) | "
            + " / ".join(
                f"{r['fan_out_fraction_of_ideal'][w]:.2f}" for w in workloads.FAN_OUT_WORKERS
            )
            + f" | {r['small_runs_per_s']:.0f} | {first} |"
        )
    notes = ["", "Durability of each system:", ""]
    notes += [f"- **{name}**: {r['durability']}" for name, r in systems.items()]
    if report["peers_missing"]:
        notes.append(f"- DBOS and LangGraph: not measured: {report['peers_missing']}")
    notes.append(
        f"\nChains and small runs: median of {report['repeats']} interleaved repeats, in one "
        f"process. Fan-out: {workloads.FAN_OUT} items of {workloads.FAN_OUT_SLEEP_S * 1000:.0f} ms, "
        "once per worker count: agentfn on that many `agentfn worker` processes, DBOS on a "
        "queue with that worker concurrency, LangGraph with that max_concurrency.\n"
    )
    return "\n".join(rows + notes)


def main() -> None:
    from tests.bench import adapters, collaboration, handlers, roundtrips

    report = measure()
    report["durable_execution"] = durable_execution()
    report["collaboration"] = collaboration.measure()
    report["requests_per_step"] = roundtrips.measure()
    report["handlers"] = handlers.measure()
    report["adapters"] = adapters.measure()
    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    table = "\n".join(
        [
            durable_markdown(report["durable_execution"]),
            collaboration.markdown(report["collaboration"]),
            roundtrips.markdown(report["requests_per_step"]),
            markdown(report),
            handlers.markdown(report["handlers"]),
            adapters.markdown(report["adapters"]),
        ]
    )
    (OUT / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
