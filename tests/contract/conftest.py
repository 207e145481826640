"""Fixtures for the port contract suite: every adapter of a port must pass the same tests.

To add an adapter (AWS, GCP, Azure...), append an :class:`AdapterFactory` to ``BLOBSTORES`` or
``QUEUES``, or a :class:`SecretHarness` subclass to ``SECRET_STORES`` (secret tests must also
write secrets at the source, so they need more than a factory). A factory turns ``tmp_path``
into picklable kwargs (the "spec"), so a child process can rebuild the very same adapter with
``build_blobstore(spec)`` / ``build_queue(spec)``; cross-process tests run the ``*_worker``
functions below in fresh interpreters via the ``run_workers`` fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentfn.adapters.local import EnvSecretStore, FileBlobStore, SqliteBlobStore, SqliteQueue
from agentfn.errors import PreconditionFailed
from agentfn.ports import BlobStore, Queue, SecretStore
from agentfn.testing import MemoryBlobStore, MemoryQueue
from tests.contract.harness import AdapterFactory, FakeClock, SecretHarness

Spec = tuple[str, dict[str, Any]]  # (factory name, picklable kwargs)

REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- registries


def _load_backends() -> list[Any]:
    import importlib
    import pkgutil

    folder = Path(__file__).with_name("backends")
    names = sorted(m.name for m in pkgutil.iter_modules([str(folder)]))
    return [importlib.import_module(f"tests.contract.backends.{name}") for name in names]


_MEMORY: dict[str, Any] = {}  # in-process adapters by spec id, so a spec rebuilds its instance


def _memory_spec(tmp_path: Path) -> dict[str, Any]:
    return {"instance": uuid.uuid4().hex}


def _memory(kind: Callable[..., Any]) -> Callable[..., Any]:
    def build(instance: str, **kwargs: Any) -> Any:
        if instance not in _MEMORY:
            _MEMORY[instance] = kind(**kwargs)
        return _MEMORY[instance]

    return build


def _local_queue_spec(tmp_path: Path) -> dict[str, Any]:
    return {"path": str(tmp_path / "queue.db"), "name": f"q-{uuid.uuid4().hex[:8]}"}


def _tenant_view(path: str) -> BlobStore:
    """A tenant's view of a SQLite store: every contract must hold through the prefix."""
    from agentfn.tenant_blobs import tenant_blobs

    return tenant_blobs(SqliteBlobStore(path), "acme")


BLOBSTORES: dict[str, AdapterFactory] = {
    "local": AdapterFactory(
        spec=lambda tmp_path: {"root": str(tmp_path / "blobs")},
        build=FileBlobStore,
    ),
    "memory": AdapterFactory(spec=_memory_spec, build=_memory(MemoryBlobStore), in_process=True),
    "sqlite": AdapterFactory(
        spec=lambda tmp_path: {"path": str(tmp_path / "blobs.db")}, build=SqliteBlobStore
    ),
    "tenant-view": AdapterFactory(
        spec=lambda tmp_path: {"path": str(tmp_path / "blobs.db")}, build=_tenant_view
    ),
}

QUEUES: dict[str, AdapterFactory] = {
    "local": AdapterFactory(spec=_local_queue_spec, build=SqliteQueue, fake_clock=True),
    "memory": AdapterFactory(
        spec=_memory_spec, build=_memory(MemoryQueue), fake_clock=True, in_process=True
    ),
}


class LocalSecretHarness(SecretHarness):
    """Secrets live in a .env file; the process environment is an empty injected mapping."""

    name = "local"
    fake_clock = True

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / ".env"
        self.values: dict[str, str] = {}
        self.path.write_text("")

    def set_secret(self, name: str, value: str) -> None:
        self.values[name] = value
        lines = [f"{k}={json.dumps(v)}" for k, v in self.values.items()]
        self.path.write_text("\n".join(lines) + "\n")

    def make(self, *, ttl_s: float = 60.0, clock: Callable[[], float] | None = None) -> SecretStore:
        return EnvSecretStore(
            self.path, ttl_s=ttl_s, environ={}, clock=clock if clock else time.monotonic
        )


SECRET_STORES: dict[str, Callable[[Path], SecretHarness]] = {
    "local": LocalSecretHarness,
}


# Cloud backends live in tests/contract/backends/<cloud>.py, each defining its own BLOBSTORES,
# QUEUES and SECRET_STORES dicts; they are merged here so every contract test runs on them.
for _backend in _load_backends():
    BLOBSTORES.update(getattr(_backend, "BLOBSTORES", {}))
    QUEUES.update(getattr(_backend, "QUEUES", {}))
    SECRET_STORES.update(getattr(_backend, "SECRET_STORES", {}))


def build_blobstore(spec: Spec) -> BlobStore:
    name, kwargs = spec
    store: BlobStore = BLOBSTORES[name].build(**kwargs)
    return store


def build_queue(spec: Spec, **overrides: Any) -> Queue:
    name, kwargs = spec
    queue: Queue = QUEUES[name].build(**{**kwargs, **overrides})
    return queue


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(params=sorted(BLOBSTORES))
def blobstore_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Spec]:
    factory = BLOBSTORES[request.param]
    kwargs = factory.spec(tmp_path)
    yield request.param, kwargs
    if factory.cleanup:
        factory.cleanup(kwargs)


@pytest.fixture
def blobstore(blobstore_spec: Spec) -> BlobStore:
    return build_blobstore(blobstore_spec)


@pytest.fixture(params=sorted(QUEUES))
def queue_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Spec]:
    factory = QUEUES[request.param]
    kwargs = factory.spec(tmp_path)
    yield request.param, kwargs
    if factory.cleanup:
        factory.cleanup(kwargs)


@pytest.fixture
def queue(queue_spec: Spec) -> Queue:
    return build_queue(queue_spec)


@dataclass
class QueueHarness:
    """Builds queues on one backend with a controllable clock.

    ``advance`` moves the fake clock when the adapter takes one, else really sleeps, so tests
    keep their delays small (<= 0.3 s).
    """

    spec: Spec
    fake_clock: bool
    clock: FakeClock = field(default_factory=FakeClock)
    tmp_path: Path | None = None
    unit: float = 0.1
    priority: bool = True

    def make(self, *, fresh: bool = False, **overrides: Any) -> Queue:
        """A queue on the test's backend; ``fresh`` gives a new, empty queue each call."""
        name, kwargs = self.spec
        if fresh:
            assert self.tmp_path is not None
            kwargs = QUEUES[name].spec(self.tmp_path)
        if self.fake_clock:
            overrides.setdefault("clock", self.clock)
        return build_queue((name, kwargs), **overrides)

    def advance(self, seconds: float) -> None:
        if self.fake_clock:
            self.clock.advance(seconds)
        else:
            time.sleep(seconds)


@pytest.fixture
def queue_factory(queue_spec: Spec, tmp_path: Path) -> QueueHarness:
    factory = QUEUES[queue_spec[0]]
    return QueueHarness(
        spec=queue_spec,
        fake_clock=factory.fake_clock,
        tmp_path=tmp_path,
        unit=factory.unit,
        priority=factory.priority,
    )


@pytest.fixture(params=sorted(SECRET_STORES))
def secret_store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> SecretHarness:
    return SECRET_STORES[request.param](tmp_path)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


# --------------------------------------------------------------------------- processes

_BOOTSTRAP = """
import importlib.util, json, os, sys, time
conftest_path, worker, args_json, ready, go = sys.argv[1:6]
spec = importlib.util.spec_from_file_location("_contract_conftest", conftest_path)
mod = importlib.util.module_from_spec(spec)
sys.modules["_contract_conftest"] = mod
spec.loader.exec_module(mod)
args = json.loads(args_json)
open(ready, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("never got the go signal")
    time.sleep(0.002)
result = getattr(mod, worker)(*args)
sys.stdout.write("\\n" + json.dumps(result) + "\\n")
"""


def _run_workers(
    tmp_path: Path, worker: str, args_list: list[list[Any]], timeout: float = 60.0
) -> list[Any]:
    """Run ``worker(*args)`` from this file in one fresh interpreter per args, all at once.

    Children start together (a ready/go barrier) so they really race, and need neither pickling
    nor this file being importable by name: they load it by path.
    """
    sync = tmp_path / f"sync-{uuid.uuid4().hex[:8]}"
    sync.mkdir()
    go = sync / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])}
    procs = []
    for i, args in enumerate(args_list):
        cmd = [
            sys.executable,
            "-c",
            _BOOTSTRAP,
            __file__,
            worker,
            json.dumps(args),
            str(sync / f"ready-{i}"),
            str(go),
        ]
        procs.append(
            subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT, env=env
            )
        )
    try:
        deadline = time.monotonic() + timeout
        while sum(1 for p in sync.iterdir() if p.name.startswith("ready-")) < len(procs):
            if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.005)
        go.touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if p.returncode != 0:
                raise AssertionError(f"worker {worker} failed ({p.returncode}):\n{err.decode()}")
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _run_threads(worker: str, args_list: list[list[Any]], timeout: float) -> list[Any]:
    """The in-process stand-in for :func:`_run_workers`: one thread per args, started together."""
    import threading

    fn = globals()[worker]
    barrier = threading.Barrier(len(args_list))
    results: list[Any] = [None] * len(args_list)
    errors: list[BaseException] = []

    def body(i: int, args: list[Any]) -> None:
        try:
            barrier.wait(timeout)
            results[i] = fn(*json.loads(json.dumps(args)))
        except BaseException as exc:  # reported below, with the worker's name
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i, a)) for i, a in enumerate(args_list)]
    # Switch threads every few microseconds, not every 5 ms: in-memory calls are so fast that
    # one thread would otherwise finish its whole share before the other ever ran.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout)
    finally:
        sys.setswitchinterval(interval)
    if errors or any(t.is_alive() for t in threads):
        raise AssertionError(f"worker {worker} failed: {errors or 'timed out'}")
    return results


def _in_process(args_list: list[list[Any]]) -> bool:
    specs = [a for args in args_list for a in args if isinstance(a, tuple | list) and len(a) == 2]
    factories = [{**BLOBSTORES, **QUEUES}.get(s[0]) for s in specs if isinstance(s[0], str)]
    return any(f is not None and f.in_process for f in factories)


@pytest.fixture
def run_workers(tmp_path: Path) -> Callable[..., list[Any]]:
    def run(worker: str, args_list: list[list[Any]], timeout: float = 60.0) -> list[Any]:
        if _in_process(args_list):
            return _run_threads(worker, args_list, timeout)
        return _run_workers(tmp_path, worker, args_list, timeout)

    return run


def _spec(raw: list[Any]) -> Spec:
    return raw[0], raw[1]  # JSON turns the tuple into a list


def blob_cas_worker(raw_spec: list[Any], key: str, increments: int) -> dict[str, int]:
    """Increment a JSON counter ``increments`` times with get -> put_if_match retries."""
    store = build_blobstore(_spec(raw_spec))
    conflicts = 0
    for _ in range(increments):
        while True:
            blob = store.get(key)
            value = json.loads(blob.data)["n"]
            try:
                store.put_if_match(key, json.dumps({"n": value + 1}).encode(), blob.etag)
                break
            except PreconditionFailed:
                conflicts += 1
    return {"conflicts": conflicts}


def blob_claim_worker(raw_spec: list[Any], keys: list[str], me: str) -> list[str]:
    """Try put_if_absent on every key; return the keys this worker won."""
    store = build_blobstore(_spec(raw_spec))
    won = []
    for key in keys:
        try:
            store.put_if_absent(key, me.encode())
            won.append(key)
        except PreconditionFailed:
            pass
    return won


def queue_consume_worker(raw_spec: list[Any], batch: int, visibility_timeout: float) -> list[str]:
    """Receive and ack until the queue looks empty; return the ids this worker got."""
    queue = build_queue(_spec(raw_spec))
    got: list[str] = []
    empty = 0
    while empty < 3:  # a few empty polls in a row: everything is claimed
        messages = queue.receive(batch, visibility_timeout=visibility_timeout)
        if not messages:
            empty += 1
            time.sleep(0.01)
            continue
        empty = 0
        for m in messages:
            got.append(m.id)
            queue.ack(m)
        # Let the other consumer in: SQLite's lock is not fair, and a writer whose busy
        # handler sleeps (up to 100 ms a try) can lose every race to one that never pauses.
        time.sleep(0.002)
    return got


def blob_churn_worker(raw_spec: list[Any], name: str, rounds: int) -> int:
    """Write, CAS and delete sibling keys while another worker does the same next door."""
    store = build_blobstore(_spec(raw_spec))
    for i in range(rounds):
        key = f"churn/shared/{name}"
        store.put(key, b"1")
        store.put_if_match(key, b"2", store.get(key).etag)
        store.delete(key)
        other = f"churn/d{i % 3}/{name}"
        store.put_if_absent(other, b"z")
        store.delete(other)
    store.put(f"churn/final/{name}", b"done")
    return rounds
