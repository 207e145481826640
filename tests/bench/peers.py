"""The same workloads on the durable-execution libraries users would pick instead of agentfn:
DBOS Transact on SQLite and LangGraph with its SQLite checkpointer (the `bench` extra).

Each measurement runs in a fresh interpreter (``python -m tests.bench.peers SYSTEM WORKLOAD
ARG``), as agentfn's workers do, so no library's global state leaks into the next one; it
prints one JSON line. Both libraries keep SQLite's default ``synchronous=FULL`` (neither sets
it), so each of their commits is fsynced; DBOS keeps the rollback journal, LangGraph switches
to WAL. LangGraph runs with ``durability="sync"`` (its default, "async", writes checkpoints
in the background and may lose the last ones): equal durability, as the table says.
"""

from __future__ import annotations

import json
import operator
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from tests.bench.workloads import FAN_OUT, FAN_OUT_SLEEP_S

ROOT = Path(__file__).resolve().parents[2]

DURABILITY = {
    "DBOS 3.4 (SQLite)": "SQLite rollback journal, synchronous=FULL: every commit fsynced",
    "LangGraph 1.2 (SqliteSaver)": "SQLite WAL, synchronous=FULL, durability='sync': "
    "every checkpoint fsynced before the next step",
}
SYSTEMS = {"DBOS 3.4 (SQLite)": "dbos", "LangGraph 1.2 (SqliteSaver)": "langgraph"}


def available() -> str | None:
    """None when the bench extra is installed, else why not."""
    try:
        import dbos  # noqa: F401
        import langgraph.checkpoint.sqlite  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (make bench installs the bench extra)"
    return None


def run(system: str, workload: str, arg: int) -> float:
    """One measurement in a fresh interpreter: seconds (per step, or wall) as it reports."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench.peers", SYSTEMS[system], workload, str(arg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{system} {workload}: {out.stderr[-2000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


# ------------------------------------------------------------------------------- DBOS


def _dbos(workload: str, arg: int, folder: Path) -> float:
    from dbos import DBOS

    @DBOS.step()
    def add(a: int, b: int) -> int:
        return a + b

    @DBOS.workflow()
    def chain(steps: int) -> int:
        value = 0
        for _ in range(steps):
            value = add(value, 1)
        return value

    @DBOS.step()
    def nap(index: int) -> int:
        time.sleep(FAN_OUT_SLEEP_S)
        return index

    @DBOS.workflow()
    def item(index: int) -> int:
        return nap(index)

    @DBOS.workflow()
    def small() -> int:
        return add(1, 1)

    DBOS(config={"name": "bench", "system_database_url": f"sqlite:///{folder / 'dbos.sqlite'}"})
    DBOS.launch()
    try:
        if workload == "chain":
            started = time.perf_counter()
            assert chain(arg) == arg
            return (time.perf_counter() - started) / arg
        if workload == "small":
            started = time.perf_counter()
            for _ in range(arg):
                small()
            return time.perf_counter() - started
        queue = DBOS.register_queue("fan", worker_concurrency=arg, polling_interval_sec=0.01)
        started = time.perf_counter()
        handles = [queue.enqueue(item, i) for i in range(FAN_OUT)]
        assert [h.get_result() for h in handles] == list(range(FAN_OUT))
        return time.perf_counter() - started
    finally:
        DBOS.destroy()


# ------------------------------------------------------------------------------- LangGraph


class _Chain(TypedDict):
    value: int


class _Fan(TypedDict):
    done: Annotated[list[int], operator.add]


def _langgraph(workload: str, arg: int, folder: Path) -> float:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    saver = SqliteSaver(sqlite3.connect(folder / "lg.sqlite", check_same_thread=False))

    def add(state: _Chain) -> dict[str, int]:
        return {"value": state["value"] + 1}

    def chain_graph(steps: int) -> Any:
        graph = StateGraph(_Chain)
        for i in range(steps):
            graph.add_node(f"n{i}", add)
        graph.add_edge(START, "n0")
        for i in range(1, steps):
            graph.add_edge(f"n{i - 1}", f"n{i}")
        graph.add_edge(f"n{steps - 1}", END)
        return graph.compile(checkpointer=saver)

    def config(thread: str, **extra: Any) -> Any:
        return {"configurable": {"thread_id": thread}, "recursion_limit": 10_000, **extra}

    if workload == "chain":
        app = chain_graph(arg)
        started = time.perf_counter()
        out = app.invoke({"value": 0}, config("chain"), durability="sync")
        assert out["value"] == arg
        return (time.perf_counter() - started) / arg
    if workload == "small":
        app = chain_graph(1)
        started = time.perf_counter()
        for i in range(arg):
            app.invoke({"value": 0}, config(f"small-{i}"), durability="sync")
        return time.perf_counter() - started

    def fan(state: _Fan) -> list[Any]:  # not list[Send]: LangGraph reads the hints
        return [Send("nap", {"index": i}) for i in range(FAN_OUT)]

    def nap(task: dict[str, int]) -> dict[str, list[int]]:
        time.sleep(FAN_OUT_SLEEP_S)
        return {"done": [task["index"]]}

    graph = StateGraph(_Fan)
    graph.add_node("nap", nap)
    graph.add_conditional_edges(START, fan, ["nap"])
    graph.add_edge("nap", END)
    app = graph.compile(checkpointer=saver)
    started = time.perf_counter()
    out = app.invoke({"done": []}, config("fan", max_concurrency=arg), durability="sync")
    assert sorted(out["done"]) == list(range(FAN_OUT))
    return time.perf_counter() - started


def main() -> None:
    system, workload, arg = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with tempfile.TemporaryDirectory() as tmp:
        measure = _dbos if system == "dbos" else _langgraph
        seconds = measure(workload, arg, Path(tmp))
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
