"""Test your own tools and workflows the way they run, without a server, a disk or a sleep.

``run_workflow("workflow.yaml", {"subject": "x"})`` runs a blueprint to the end on the real
engine — every step a queue job, every outcome recorded, retries and waits included — over
in-memory ports and a fake clock, so a test of a workflow with backoffs and timeouts takes
milliseconds. The in-memory ports keep the documented semantics of their port (etags and
conditional writes, visibility timeouts, attempts, priorities, dead letters), in one process.
For tests of a single port there are :class:`MemoryBlobStore`, :class:`MemoryQueue`,
:class:`MemorySecretStore` and :class:`FakeClock` on their own.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from agentfn.blob_args import (
    as_bytes,
    bare_etag,
    check_etag,
    check_listing,
    content_etag,
    content_hash,
    page_of,
)
from agentfn.errors import NotFound, PreconditionFailed
from agentfn.keys import check_path
from agentfn.ports import CHUNK_SIZE, Blob, DeadLetter, Model, Page, QueueMessage
from agentfn.queue_args import (
    check_limit,
    check_max_attempts,
    check_max_messages,
    check_priority,
    encode_body,
    seconds,
)

if TYPE_CHECKING:
    from agentfn.engine import Engine
    from agentfn.model_spec import ModelSpec
    from agentfn.runs import Run
    from agentfn.workflows import LoadedBlueprint

__all__ = [
    "FakeClock",
    "MemoryBlobStore",
    "MemoryQueue",
    "MemorySecretStore",
    "WorkflowHarness",
    "run_workflow",
]


class FakeClock:
    """Time that moves only when told: ``clock()`` reads it, ``advance(s)`` moves it."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self.now += seconds


def _etag(data: bytes) -> str:
    return content_etag(content_hash(data))


class MemoryBlobStore:
    """A BlobStore in a dict: content-hash etags, linearizable conditional writes."""

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryBlobStore(objects={len(self._objects)})"

    def get(self, key: str) -> Blob:
        check_path(key, "key", allow_empty=False)
        data = self._objects.get(key)
        if data is None:
            raise NotFound(f"blob {key!r} not found")
        return Blob(key=key, data=data, etag=_etag(data))

    def put(self, key: str, data: bytes) -> str:
        check_path(key, "key", allow_empty=False)
        value = as_bytes(data)
        with self._lock:
            self._objects[key] = value
        return _etag(value)

    def put_if_absent(self, key: str, data: bytes) -> str:
        check_path(key, "key", allow_empty=False)
        value = as_bytes(data)
        with self._lock:
            if key in self._objects:
                raise PreconditionFailed(f"blob {key!r} already exists")
            self._objects[key] = value
        return _etag(value)

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        check_path(key, "key", allow_empty=False)
        value = as_bytes(data)
        check_etag(etag)
        with self._lock:
            current = self._objects.get(key)
            if current is None:
                raise PreconditionFailed(f"blob {key!r} does not exist")
            if bare_etag(_etag(current)) != bare_etag(etag):
                raise PreconditionFailed(f"blob {key!r} changed (etag mismatch)")
            self._objects[key] = value
        return _etag(value)

    def list(self, prefix: str = "", *, cursor: str | None = None, limit: int = 1000) -> Page:
        check_path(prefix, "prefix", allow_empty=True)
        check_listing(cursor, limit)
        with self._lock:
            keys = sorted(
                k for k in self._objects if k.startswith(prefix) and (cursor is None or k > cursor)
            )
        return page_of(keys[: limit + 1], limit)

    def delete(self, key: str) -> None:
        check_path(key, "key", allow_empty=False)
        with self._lock:
            self._objects.pop(key, None)

    def upload(self, key: str, stream: BinaryIO) -> str:
        chunks = []
        while chunk := stream.read(CHUNK_SIZE):
            chunks.append(chunk)
        return self.put(key, b"".join(chunks))

    def download(self, key: str, sink: BinaryIO) -> str:
        blob = self.get(key)
        view = memoryview(blob.data)
        for start in range(0, len(view), CHUNK_SIZE):
            sink.write(view[start : start + CHUNK_SIZE])
        return blob.etag


@dataclass
class _Job:
    seq: int
    id: str
    body: dict[str, Any]
    priority: int
    visible_at: float
    attempts: int = 0
    receipt: str | None = None


class MemoryQueue:
    """An at-least-once Queue in memory, on an injectable clock (a :class:`FakeClock`)."""

    def __init__(self, *, max_attempts: int = 5, clock: Callable[[], float] | None = None) -> None:
        self.max_attempts = check_max_attempts(max_attempts)
        self.clock: Callable[[], float] = clock if clock is not None else FakeClock()
        self._jobs: dict[str, _Job] = {}
        self._dead: list[DeadLetter] = []
        self._seq = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryQueue(jobs={len(self._jobs)}, dead={len(self._dead)})"

    def send(self, body: dict[str, Any], *, delay: float = 0.0, priority: int = 0) -> str:
        encode_body(body)  # the same checks as every queue: a JSON object, serialisable
        delay_s = seconds(delay, "delay", positive=False)
        check_priority(priority)
        with self._lock:
            self._seq += 1
            job = _Job(
                seq=self._seq,
                id=uuid.uuid4().hex,
                body=dict(body),
                priority=priority,
                visible_at=self.clock() + delay_s,
            )
            self._jobs[job.id] = job
        return job.id

    def receive(
        self, max_messages: int = 1, *, visibility_timeout: float = 30.0
    ) -> list[QueueMessage]:
        check_max_messages(max_messages, 100)
        timeout = seconds(visibility_timeout, "visibility_timeout", positive=True)
        out: list[QueueMessage] = []
        with self._lock:
            now = self.clock()
            ready = sorted(
                (j for j in self._jobs.values() if j.visible_at <= now),
                key=lambda j: (-j.priority, j.seq),
            )
            for job in ready:
                if len(out) == max_messages:
                    break
                if job.attempts >= self.max_attempts:
                    self._bury(job, f"max attempts ({self.max_attempts}) exceeded", now)
                    continue
                job.attempts += 1
                job.receipt = uuid.uuid4().hex
                job.visible_at = now + timeout
                out.append(
                    QueueMessage(
                        id=job.id,
                        body=dict(job.body),
                        attempts=job.attempts,
                        receipt=job.receipt,
                        priority=job.priority,
                    )
                )
        return out

    def ack(self, message: QueueMessage) -> None:
        with self._lock:
            job = self._held(message)
            if job is not None:
                del self._jobs[job.id]

    def retry(self, message: QueueMessage, *, delay: float = 0.0) -> None:
        delay_s = seconds(delay, "delay", positive=False)
        with self._lock:
            job = self._held(message)
            if job is not None:
                job.visible_at = self.clock() + delay_s
                job.receipt = None

    def extend(self, message: QueueMessage, *, visibility_timeout: float) -> None:
        timeout = seconds(visibility_timeout, "visibility_timeout", positive=True)
        with self._lock:
            job = self._held(message)
            if job is not None:
                job.visible_at = self.clock() + timeout

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        with self._lock:
            job = self._held(message)
            if job is not None:
                self._bury(job, str(reason), self.clock())

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        check_limit(limit)
        with self._lock:
            return list(reversed(self._dead))[:limit]

    def depth(self) -> int:
        """Jobs in the queue, visible or not (dead letters excluded)."""
        return len(self._jobs)

    def next_visible_at(self) -> float | None:
        """When the earliest hidden or delayed job becomes visible (None when empty)."""
        with self._lock:
            return min((j.visible_at for j in self._jobs.values()), default=None)

    def _held(self, message: QueueMessage) -> _Job | None:
        job = self._jobs.get(message.id)
        return job if job is not None and job.receipt == message.receipt else None

    def _bury(self, job: _Job, reason: str, now: float) -> None:
        del self._jobs[job.id]
        self._dead.append(
            DeadLetter(
                id=job.id, body=job.body, attempts=job.attempts, reason=reason, failed_at=now
            )
        )


class MemorySecretStore:
    """Secrets from a mapping; ``NotFound`` for anything else (values are never shown)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    def __repr__(self) -> str:
        return f"MemorySecretStore(names={sorted(self._values)})"

    def get(self, name: str) -> str:
        if name not in self._values:
            raise NotFound(f"secret {name!r} not found")
        return self._values[name]


@dataclass
class WorkflowHarness:
    """An engine on in-memory ports: start runs, deliver their jobs, signal them.

    ``model`` (if given) answers for every model the blueprint names; otherwise each model is
    built from its spec (the scripted model reads its rules file), with ``secrets`` for keys.
    """

    model: Model | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)
    clock: FakeClock = field(default_factory=FakeClock)
    max_attempts: int = 5
    lease_s: float = 60.0
    blobs: MemoryBlobStore = field(default_factory=MemoryBlobStore)
    queue: MemoryQueue = field(init=False)
    engine: Engine = field(init=False)

    def __post_init__(self) -> None:
        from agentfn.engine import Engine

        self.queue = MemoryQueue(max_attempts=self.max_attempts, clock=self.clock)
        self.engine = Engine(
            self.blobs,
            self.queue,
            model_factory=self._model_for,
            lease_s=self.lease_s,
            clock=self.clock,
        )

    def _model_for(self, spec: ModelSpec, base_dir: Path) -> Model:
        if self.model is not None:
            return self.model
        from agentfn.adapters.models.factory import build_model

        return build_model(spec, secrets=MemorySecretStore(self.secrets), base_dir=base_dir)

    def start(
        self, blueprint: str | Path | LoadedBlueprint, input: Mapping[str, Any] | None = None
    ) -> Run:
        """Record a run and enqueue its first steps (nothing runs until :meth:`drain`)."""
        from agentfn.workflows import load_blueprint

        loaded = load_blueprint(blueprint) if isinstance(blueprint, str | Path) else blueprint
        return self.engine.start(loaded, dict(input or {}))

    def drain(self, run_id: str, *, max_jobs: int = 100_000) -> Run:
        """Deliver jobs until the run is over, or parks waiting for a signal.

        When only delayed jobs are left (a retry's backoff, a wait's timeout), the clock jumps
        to the next one instead of sleeping.
        """
        for _ in range(max_jobs):
            messages = self.queue.receive(10, visibility_timeout=self.lease_s)
            for message in messages:
                self.engine.handle(message)
            if messages:
                continue
            run = self.engine.store.get(run_id)
            if run.status.terminal:
                return run
            due = self.queue.next_visible_at()
            if due is None or (run.status.value == "waiting" and due - self.clock() > 0):
                return run  # parked on a wait node: a signal (or advancing the clock) resumes it
            self.clock.advance(max(0.0, due - self.clock()))
        raise AssertionError(f"run {run_id} handled {max_jobs} jobs without finishing")

    def signal(self, run_id: str, name: str, payload: Any = None) -> Run:
        """Deliver a signal to a waiting run, then drain it."""
        self.engine.signal(run_id, name, payload)
        return self.drain(run_id)

    def advance(self, seconds: float) -> None:
        """Move the clock (e.g. past a wait node's timeout), then :meth:`drain` again."""
        self.clock.advance(seconds)


def run_workflow(
    blueprint: str | Path | LoadedBlueprint,
    input: Mapping[str, Any] | None = None,
    *,
    model: Model | None = None,
    secrets: Mapping[str, str] | None = None,
    max_attempts: int = 5,
) -> Run:
    """Run a blueprint to the end on in-memory ports and return the finished run.

    A run that parks on a wait node comes back ``waiting``; use :class:`WorkflowHarness` to
    signal it or move its clock.
    """
    harness = WorkflowHarness(model=model, secrets=dict(secrets or {}), max_attempts=max_attempts)
    run = harness.start(blueprint, input)
    return harness.drain(run.id)
