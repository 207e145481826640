"""Storage and queue requests per step: on a cloud each one is a billed request and a network
round trip, so the count matters more than a millisecond saved locally.

Counted by wrapping the ports the engine is given: reads (get, list, download), writes (put,
put_if_absent, put_if_match, delete, upload) and queue operations (send, receive, ack,
retry, extend, dead_letter). A chain of tool steps runs on the local default and on the AWS
adapters (S3 + SQS) against moto (left running for the adapter benchmark, which stops it);
the run's start is not counted, only its steps. On the local default the commits are counted
too (each is an fsync with ``?synchronous=full``): the engine batches what follows a step, so
there are fewer commits than writes.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO

from agentfn.ports import Blob, BlobStore, Page, Queue, QueueMessage
from tests.bench import workloads

STEPS = 30
READS = ("get", "list", "download")
WRITES = ("put", "put_if_absent", "put_if_match", "delete", "upload")
QUEUE_OPS = ("send", "receive", "ack", "retry", "extend", "dead_letter")


class CountingBlobStore:
    def __init__(self, inner: BlobStore, counts: Counter[str]) -> None:
        self.inner, self.counts = inner, counts

    def get(self, key: str) -> Blob:
        self.counts["get"] += 1
        return self.inner.get(key)

    def list(self, prefix: str = "", *, cursor: str | None = None, limit: int = 1000) -> Page:
        self.counts["list"] += 1
        return self.inner.list(prefix, cursor=cursor, limit=limit)

    def download(self, key: str, sink: BinaryIO) -> str:
        self.counts["download"] += 1
        return self.inner.download(key, sink)

    def put(self, key: str, data: bytes) -> str:
        self.counts["put"] += 1
        return self.inner.put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> str:
        self.counts["put_if_absent"] += 1
        return self.inner.put_if_absent(key, data)

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        self.counts["put_if_match"] += 1
        return self.inner.put_if_match(key, data, etag)

    def delete(self, key: str) -> None:
        self.counts["delete"] += 1
        self.inner.delete(key)

    def upload(self, key: str, stream: BinaryIO) -> str:
        self.counts["upload"] += 1
        return self.inner.upload(key, stream)


class CountingQueue:
    def __init__(self, inner: Queue, counts: Counter[str]) -> None:
        self.inner, self.counts = inner, counts
        self.max_attempts = inner.max_attempts

    def send(self, body: dict[str, Any], *, delay: float = 0.0, priority: int = 0) -> str:
        self.counts["send"] += 1
        return self.inner.send(body, delay=delay, priority=priority)

    def receive(
        self, max_messages: int = 1, *, visibility_timeout: float = 30.0
    ) -> list[QueueMessage]:
        got = self.inner.receive(max_messages, visibility_timeout=visibility_timeout)
        self.counts["receive"] += 1
        return got

    def ack(self, message: QueueMessage) -> None:
        self.counts["ack"] += 1
        self.inner.ack(message)

    def retry(self, message: QueueMessage, *, delay: float = 0.0) -> None:
        self.counts["retry"] += 1
        self.inner.retry(message, delay=delay)

    def extend(self, message: QueueMessage, *, visibility_timeout: float) -> None:
        self.counts["extend"] += 1
        self.inner.extend(message, visibility_timeout=visibility_timeout)

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        self.counts["dead_letter"] += 1
        self.inner.dead_letter(message, reason)


def per_step(blobs: BlobStore, queue: Queue, folder: Path) -> dict[str, float]:
    """Run a chain of ``STEPS`` tool steps one job at a time; requests per step."""
    from agentfn.engine import Engine

    counts: Counter[str] = Counter()
    eng = Engine(
        CountingBlobStore(blobs, counts),  # type: ignore[arg-type]
        CountingQueue(queue, counts),  # type: ignore[arg-type]
        model_factory=workloads.model_factory(),
    )
    loaded = workloads.blueprint(folder, workloads.chain_yaml(STEPS), "chain")
    run = eng.start(loaded, {})
    counts.clear()
    for _ in range(STEPS):
        [message] = eng.queue.receive(1, visibility_timeout=60)
        eng.handle(message)
    assert eng.store.get(run.id).status.value == "completed"
    reads = sum(counts[op] for op in READS) - 1  # the completion check above
    writes = sum(counts[op] for op in WRITES)
    queue_ops = sum(counts[op] for op in QUEUE_OPS)
    return {
        "reads": reads / STEPS,
        "writes": writes / STEPS,
        "queue_ops": queue_ops / STEPS,
        "requests": (reads + writes + queue_ops) / STEPS,
        "by_op": {op: n / STEPS for op, n in sorted(counts.items())},  # type: ignore[dict-item]
    }


def commits_per_step(config: workloads.Config, folder: Path) -> float:
    """SQLite commits per step of the same chain, on the real (unwrapped) local adapters."""
    from agentfn.adapters.registry import open_blobstore, open_queue
    from agentfn.engine import Engine

    storage, queue_url = config.urls(folder)
    blobs, queue = open_blobstore(storage), open_queue(queue_url)
    eng = Engine(blobs, queue, model_factory=workloads.model_factory())
    loaded = workloads.blueprint(folder, workloads.chain_yaml(STEPS), "chain")
    run = eng.start(loaded, {})
    commits = 0

    def count(sql: str) -> None:
        nonlocal commits
        commits += sql == "COMMIT"

    # This thread's connection of each database the adapters use (one, when they share a file).
    databases = {id(a._db): a._db for a in (blobs, queue)}  # type: ignore[attr-defined]
    for db in databases.values():
        db.get().set_trace_callback(count)
    for _ in range(STEPS):
        [message] = eng.queue.receive(1, visibility_timeout=60)
        eng.handle(message)
    for db in databases.values():
        db.get().set_trace_callback(None)
    assert eng.store.get(run.id).status.value == "completed"
    return commits / STEPS


def measure() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    from agentfn.adapters.registry import open_blobstore, open_queue

    config = workloads.CONFIGS["agentfn (local default: SQLite)"]
    with tempfile.TemporaryDirectory() as counted, tempfile.TemporaryDirectory() as traced:
        storage, queue_url = config.urls(Path(counted))
        rows.append(
            {"backend": "local default (SQLite store + queue, one file)"}
            | per_step(open_blobstore(storage), open_queue(queue_url), Path(counted))
            | {"commits": commits_per_step(config, Path(traced))}
        )
    try:
        from tests.contract.conftest import BLOBSTORES, QUEUES, build_blobstore, build_queue

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            blob_spec = BLOBSTORES["aws"].spec(folder / "b")
            queue_spec = QUEUES["aws"].spec(folder / "q")
            blobs = build_blobstore(("aws", blob_spec))
            queue = build_queue(("aws", queue_spec))
            rows.append(
                {"backend": "AWS adapters (S3 + SQS) on moto"} | per_step(blobs, queue, folder)
            )
    except Exception as exc:  # report, never hide: the row says why it is missing
        rows.append(
            {"backend": "AWS adapters (S3 + SQS) on moto", "error": f"{type(exc).__name__}: {exc}"}
        )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | storage reads / step | storage writes / step | queue ops / step "
        "| requests / step | commits / step |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['backend']} | not measured: {r['error']} | | | | |")
            continue
        commits = f"{r['commits']:.2f}" if "commits" in r else "each request"
        lines.append(
            f"| {r['backend']} | {r['reads']:.2f} | {r['writes']:.2f} | {r['queue_ops']:.2f} | "
            f"{r['requests']:.2f} | {commits} |"
        )
    detail = ", ".join(f"{op} {n:.2f}" for op, n in rows[0].get("by_op", {}).items())
    return "\n".join(lines) + f"\n\nPer step on the local default, by operation: {detail}.\n"
