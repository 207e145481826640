"""Per-adapter latency (p50/p95) of get/put/CAS and send/receive/ack, every adapter beside the
local one, measured in the same run against the same emulators the contract suite uses.

Informational only: emulators are not the clouds (no network, no replication, no throttling),
so these numbers say how much client-side work each adapter does, not how fast a cloud is.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OPS = 60


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000,
    }


def _timed(fn: Callable[[int], Any]) -> list[float]:
    out = []
    for i in range(OPS):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def _blob_rows(name: str, store: Any) -> list[dict[str, Any]]:
    payload = b"x" * 1024
    etags: dict[int, str] = {}

    def put(i: int) -> None:
        etags[i] = store.put(f"bench/{i}", payload)

    def get(i: int) -> None:
        store.get(f"bench/{i}")

    def cas(i: int) -> None:
        etags[i] = store.put_if_match(f"bench/{i}", payload + b"!", etags[i])

    return [
        {"adapter": name, "port": "blob", "op": op, **_percentiles(_timed(fn))}
        for op, fn in (("put", put), ("get", get), ("cas", cas))
    ]


def measure() -> list[dict[str, Any]]:
    from tests.contract.conftest import BLOBSTORES, QUEUES, build_blobstore, build_queue
    from tests.support.emulators import stop_all

    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, factory in sorted(BLOBSTORES.items()):
                kwargs = factory.spec(Path(tmp) / f"blob-{name}")
                rows += _blob_rows(name, build_blobstore((name, kwargs)))
                if factory.cleanup:
                    factory.cleanup(kwargs)
            for name, factory in sorted(QUEUES.items()):
                kwargs = factory.spec(Path(tmp) / f"queue-{name}")
                queue = build_queue((name, kwargs))
                sends = _timed(lambda i, q=queue: q.send({"i": i}))
                receives: list[float] = []
                acks: list[float] = []
                got = 0
                deadline = time.monotonic() + 60
                while got < OPS and time.monotonic() < deadline:
                    t0 = time.perf_counter()
                    messages = queue.receive(1, visibility_timeout=30)
                    if not messages:
                        continue
                    receives.append(time.perf_counter() - t0)
                    t1 = time.perf_counter()
                    queue.ack(messages[0])
                    acks.append(time.perf_counter() - t1)
                    got += 1
                for op, samples in (("send", sends), ("receive", receives), ("ack", acks)):
                    if samples:
                        rows.append(
                            {"adapter": name, "port": "queue", "op": op, **_percentiles(samples)}
                        )
                if factory.cleanup:
                    factory.cleanup(kwargs)
    finally:
        stop_all()
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| adapter | port | op | p50 (ms) | p95 (ms) |", "|---|---|---|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['adapter']} | {r['port']} | {r['op']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} |"
        )
    return "\n".join(lines) + (
        f"\n\n{OPS} operations each, against the emulators the contract suite uses (moto, "
        "fake-gcs-server, the Pub/Sub emulator, Azurite, libcloud's local driver) beside the "
        "local adapters. Informational: emulators are not the clouds.\n"
    )
