"""Run and step records, stored in a BlobStore and updated only by compare-and-swap.

Layout under the store (one prefix per run, so a run can be listed, copied or deleted alone)::

    runs/<id>/run.json             the Run: status, frontier, join arrivals, totals (CAS)
    runs/<id>/input.json           a large input, written once (the run record omits it)
    runs/<id>/steps/<key>.json     one StepRecord per step: claim, then result (CAS)
    runs/<id>/nodes/<node>.json    a finished node's output, from its completing step's record
    runs/<id>/items/<node>[<i>]    empty marker: fan-out item i is done and accounted for
    runs/<id>/prompts/<key>.json   the prompt log entry of the model call made by a step
    runs/<id>/calls/<key>/<i>.json the result of tool call i made inside an agent turn
    blueprints/<sha256>.json       the blueprint snapshot a run executes
    index/runs/<inverted-ms>_<id>  empty marker: lists runs newest first
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from enum import StrEnum
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, Field, model_validator

from agentfn.errors import CorruptRecord, NotFound, PreconditionFailed
from agentfn.ports import BlobStore, Usage
from agentfn.threads import RunThread
from agentfn.workflows import LoadedBlueprint

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

_MAX_CAS_ATTEMPTS = 200
_INDEX = "index/runs/"
INLINE_INPUT_BYTES = 4096  # a larger input is kept apart from the run record
_INPUTS_CACHED = 256  # inputs kept apart, remembered per process


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    waiting = "waiting"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (RunStatus.completed, RunStatus.failed, RunStatus.cancelled)


class RunError(BaseModel):
    step: str
    type: str
    message: str
    attempts: int = 0


class Waiting(BaseModel):
    signal: str
    deadline: float


class Run(BaseModel):
    id: str
    workflow: str
    status: RunStatus = RunStatus.queued
    input: dict[str, Any] = Field(default_factory=dict)
    # A large input lives in its own object (``runs/<id>/input.json``), written once: every
    # step rewrites the run record, so its size is paid on each compare-and-swap.
    input_apart: bool = False
    blueprint_key: str
    created_at: float
    updated_at: float
    finished_at: float | None = None
    correlation_id: str = ""
    replay_of: str | None = None
    live_replay: bool = False
    # The conversation thread the run continues, as it stood when the run started.
    thread: RunThread | None = None
    # The frontier: step keys enqueued and not yet folded. A step is folded once, when it
    # leaves ``pending``; finished steps are not listed here (their records say so), so the
    # record is bounded by the blueprint and the frontier, never by the steps a run has taken.
    pending: set[str] = Field(default_factory=set)
    # Graph bookkeeping: nodes started (and not yet finished), skipped (dead paths),
    # finished, and the arrivals of edges at nodes not yet started (joins: not yet finished).
    started: set[str] = Field(default_factory=set)
    skipped: set[str] = Field(default_factory=set)
    finished: set[str] = Field(default_factory=set)
    arrivals: dict[str, dict[str, bool]] = Field(default_factory=dict)
    # Fan-outs: items dispatched per node. Items that finish are counted by their markers
    # (``items/``), not here, so arrivals do not contend for this record; ``items_done`` only
    # counts items folded by versions that kept the count here (a run in flight across an
    # upgrade still gathers).
    fan_out: dict[str, int] = Field(default_factory=dict)
    items_done: dict[str, int] = Field(default_factory=dict)
    waiting: dict[str, Waiting] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    cached_calls: int = 0  # model calls answered from the reply cache (no tokens, no cost)
    steps_run: int = 0
    # Tokens and cost per agent, for the tenant's cost ledger (``agentfn.ledger``).
    agent_usage: dict[str, AgentUsage] = Field(default_factory=dict)
    error: RunError | None = None
    # Nodes with ``on_failure: continue`` whose step failed for good, with the error: the
    # run went on without them (the paths through them were skipped).
    failures: dict[str, RunError] = Field(default_factory=dict)
    output: Any = None
    # Tool outputs flagged as possible prompt injection (the first MAX_FLAGS of them).
    flags: list[ToolFlag] = Field(default_factory=list)
    # Agents with ``max_concurrency``: the units each has at work (holding a slot), and the
    # first steps of units waiting for one, in the order they became ready. A held step is
    # pending but not sent; the fold sends it when a unit of its agent completes or fails.
    slots: dict[str, list[str]] = Field(default_factory=dict)
    held: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _from_done_set(cls, data: Any) -> Any:
        """Records written before ``items_done`` listed every finished step in ``done``: count
        their finished fan-out items, so a run in flight across an upgrade still gathers."""
        if isinstance(data, dict) and "done" in data and "items_done" not in data:
            counts: dict[str, int] = {}
            for key in data.get("done") or ():
                node, bracket, rest = str(key).partition("[")
                if bracket and rest.endswith("]") and rest[:-1].isdigit():
                    counts[node] = counts.get(node, 0) + 1
            data = {k: v for k, v in data.items() if k != "done"} | {"items_done": counts}
        return data


class AgentUsage(BaseModel):
    calls: int = 0  # model calls (agent turns that called the model)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached_calls: int = 0  # of ``calls``: answered from the reply cache


class ToolFlag(BaseModel):
    """A tool output that read like instructions to the model (see ``agentfn.injection``)."""

    step: str
    tool: str
    signals: list[str]
    excerpt: str


MAX_FLAGS = 50  # per run: enough to see a pattern, bounded so the record stays small


class StepOutcome(BaseModel):
    """What a step produced; recorded before the run advances, replayed on redelivery.

    A step that ``completes`` a node or fan-out item completes it with ``output``.
    """

    output: Any = None
    # What the step worked on, for people reading it: a tool's rendered arguments, an agent's
    # prompt (on its first turn). Never read back by the engine.
    input: Any = None
    # An agent turn's messages so far: the next turn continues from them.
    conversation: list[dict[str, Any]] | None = None
    continue_with: list[str] = Field(default_factory=list)
    completes: str | None = None
    edges: dict[str, bool] = Field(default_factory=dict)
    wait: Waiting | None = None
    fan_out: int | None = None
    fail_run: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    cached_calls: int = 0  # model calls the reply cache answered
    flags: list[ToolFlag] = Field(default_factory=list)
    # An agent node's last turn on a thread: its prompt and final answer, which the thread
    # gets when the run completes.
    exchange: list[dict[str, Any]] | None = None


class StepRecord(BaseModel):
    key: str
    status: Literal["running", "done", "failed"]
    attempt: int = 1
    worker: str = ""
    started_at: float
    lease_until: float = 0.0
    finished_at: float | None = None
    outcome: StepOutcome | None = None
    error: str | None = None
    duration_ms: float | None = None


def new_run_id(now: float | None = None) -> str:
    """Sortable by creation time, unguessable, safe in URLs and keys."""
    ms = int((time.time() if now is None else now) * 1000)
    return f"run_{ms:013x}{secrets.token_hex(5)}"


def dump(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


def _dump_run(run: Run) -> bytes:
    return run.model_dump_json(exclude={"input"} if run.input_apart else None).encode()


def key_part(step_key: str) -> str:
    """Step keys hold '[', ']', '@', '~': quote them so every store accepts the key."""
    return quote(step_key, safe="")


class RunStore:
    def __init__(self, blobs: BlobStore, *, worker: str | None = None) -> None:
        self.blobs = blobs
        self.worker = worker or f"{os.uname().nodename}:{os.getpid()}"
        self._inputs: dict[str, dict[str, Any]] = {}  # inputs kept apart, oldest first
        self._inputs_lock = threading.Lock()

    # ------------------------------------------------------------------ blueprints

    def save_blueprint(self, loaded: LoadedBlueprint) -> str:
        data = loaded.model_dump_json(by_alias=True).encode()
        key = f"blueprints/{hashlib.sha256(data).hexdigest()}.json"
        with suppress(PreconditionFailed):  # content-addressed: already stored
            self.blobs.put_if_absent(key, data)
        return key

    def load_blueprint(self, key: str) -> LoadedBlueprint:
        return LoadedBlueprint.model_validate_json(self.blobs.get(key).data)

    # ------------------------------------------------------------------ runs

    def create(self, run: Run) -> None:
        data = json.dumps(run.input, ensure_ascii=False, separators=(",", ":")).encode()
        if len(data) > INLINE_INPUT_BYTES:
            with suppress(PreconditionFailed):  # the same input from a retried create
                self.blobs.put_if_absent(f"runs/{run.id}/input.json", data)
            run.input_apart = True
            self._remember(run.id, json.loads(data))  # a copy the caller cannot change
        self.blobs.put_if_absent(f"runs/{run.id}/run.json", _dump_run(run))
        inverted = 10**13 - int(run.created_at * 1000)
        self.blobs.put(f"{_INDEX}{inverted:013d}_{run.id}", b"")

    def delete(self, run_id: str) -> None:
        """Delete a run and everything under it (steps, outputs, prompt log); its record goes
        last, so a delete cut short can be done again. The blueprint snapshot, shared, stays."""
        try:
            run = self.get(run_id)
        except NotFound:
            run = None
        if run is not None:
            inverted = 10**13 - int(run.created_at * 1000)
            self.blobs.delete(f"{_INDEX}{inverted:013d}_{run.id}")
        record = f"runs/{run_id}/run.json"
        for key in list(iter_keys(self.blobs, f"runs/{run_id}/")):
            if key != record:
                self.blobs.delete(key)
        self.blobs.delete(record)
        with self._inputs_lock:
            self._inputs.pop(run_id, None)

    def get(self, run_id: str) -> Run:
        return self.read(run_id)[0]

    def read(self, run_id: str) -> tuple[Run, str]:
        """The run and the etag it was read at: pass both to ``update`` as ``current`` to
        spare the read its first compare-and-swap attempt would make."""
        try:
            blob = self.blobs.get(f"runs/{run_id}/run.json")
        except NotFound:
            raise NotFound(f"run {run_id!r} not found", field="run_id") from None
        try:
            run = Run.model_validate_json(blob.data)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise CorruptRecord(f"run {run_id!r}: its record does not parse: {exc}") from None
        if run.input_apart:
            run.input = self._input(run_id)
        return run, blob.etag

    def _input(self, run_id: str) -> dict[str, Any]:
        """A run's input kept apart: read once per process (it never changes), then shared
        read-only by every read of the run."""
        with self._inputs_lock:
            cached = self._inputs.get(run_id)
        if cached is not None:
            return cached
        try:
            value = json.loads(self.blobs.get(f"runs/{run_id}/input.json").data)
        except (NotFound, ValueError) as exc:
            raise CorruptRecord(f"run {run_id!r}: its input cannot be read: {exc}") from None
        if not isinstance(value, dict):
            raise CorruptRecord(f"run {run_id!r}: its input is not a mapping")
        self._remember(run_id, value)
        return value

    def _remember(self, run_id: str, value: dict[str, Any]) -> None:
        with self._inputs_lock:
            self._inputs[run_id] = value
            while len(self._inputs) > _INPUTS_CACHED:
                self._inputs.pop(next(iter(self._inputs)))

    def update(
        self,
        run_id: str,
        change: Callable[[Run], bool],
        *,
        current: tuple[Run, str] | None = None,
    ) -> Run:
        """Apply ``change`` under compare-and-swap; it returns False to leave the run as is.

        ``change`` may run several times (after lost races), so it must be a pure function of
        the run it is given. ``current`` (a record from ``read``, which ``change`` may then
        modify) is tried first; a lost race reads the record afresh.
        """
        for attempt in range(_MAX_CAS_ATTEMPTS):
            run, etag = current if current is not None else self.read(run_id)
            current = None
            if not change(run):
                return run
            run.updated_at = time.time()
            try:
                self.blobs.put_if_match(f"runs/{run_id}/run.json", _dump_run(run), etag)
                return run
            except PreconditionFailed:
                time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))
        raise PreconditionFailed(f"run {run_id!r}: too much contention, update not applied")

    def list_runs(
        self, *, cursor: str | None = None, limit: int = 50
    ) -> tuple[list[Run], str | None]:
        page = self.blobs.list(_INDEX, cursor=cursor, limit=limit)
        runs = []
        for key in page.keys:
            run_id = key[len(_INDEX) :].split("_", 1)[1]
            try:
                runs.append(self.get(run_id))
            except NotFound:
                continue
            except CorruptRecord as exc:  # one broken record must not hide every other run
                log.error("skipping a run in the listing: %s", exc.message)
                continue
        return runs, page.cursor

    # ------------------------------------------------------------------ steps

    def step_key(self, run_id: str, step: str) -> str:
        return f"runs/{run_id}/steps/{key_part(step)}.json"

    def get_step(self, run_id: str, step: str) -> tuple[StepRecord, str] | None:
        try:
            blob = self.blobs.get(self.step_key(run_id, step))
        except NotFound:
            return None
        return StepRecord.model_validate_json(blob.data), blob.etag

    def put_step(self, run_id: str, record: StepRecord, etag: str | None) -> str:
        key = self.step_key(run_id, record.key)
        if etag is None:
            return self.blobs.put_if_absent(key, dump(record))
        return self.blobs.put_if_match(key, dump(record), etag)

    def steps(self, run_id: str) -> Iterator[StepRecord]:
        for key in iter_keys(self.blobs, f"runs/{run_id}/steps/"):
            yield StepRecord.model_validate_json(self.blobs.get(key).data)

    # ------------------------------------------------------------------ fan-out items

    def mark_item(self, run_id: str, unit: str) -> None:
        """Say fan-out item ``unit`` (``node[i]``) is done; idempotent."""
        with suppress(PreconditionFailed):
            self.blobs.put_if_absent(f"runs/{run_id}/items/{key_part(unit)}", b"")

    def items_marked(self, run_id: str, node: str) -> int:
        """How many of ``node``'s fan-out items are marked done: one listing, no reads."""
        return sum(1 for _ in iter_keys(self.blobs, f"runs/{run_id}/items/{key_part(node + '[')}"))

    # ------------------------------------------------------------------ node outputs

    def record_once(self, key: str, value: Any) -> Any:
        """Write ``value`` unless a value is there; return whichever value won."""
        try:
            self.blobs.put_if_absent(key, json.dumps(value, ensure_ascii=False).encode())
            return value
        except PreconditionFailed:
            return json.loads(self.blobs.get(key).data)

    def read_json(self, key: str) -> Any:
        return json.loads(self.blobs.get(key).data)

    def node_key(self, run_id: str, node: str) -> str:
        return f"runs/{run_id}/nodes/{key_part(node)}.json"

    def put_node_output(self, run_id: str, unit: str, value: Any) -> None:
        """Store the output a recorded step completed ``unit`` with; rewriting it is harmless
        (the same step's record gives the same bytes)."""
        self.blobs.put(self.node_key(run_id, unit), json.dumps(value, ensure_ascii=False).encode())

    def node_output(self, run_id: str, node: str) -> Any:
        try:
            return self.read_json(self.node_key(run_id, node))
        except NotFound:
            raise NotFound(f"node {node!r} has no output in run {run_id!r}") from None


def iter_keys(blobs: BlobStore, prefix: str) -> Iterator[str]:
    """Every key under ``prefix``, following the listing's pages."""
    cursor: str | None = None
    while True:
        page = blobs.list(prefix, cursor=cursor)
        yield from page.keys
        if page.cursor is None:
            return
        cursor = page.cursor
