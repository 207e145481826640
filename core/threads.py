"""Conversation threads: the messages of earlier runs that an agent's turns start from.

A thread is one JSON record in the BlobStore (``threads/{id}.json``), so it lives under its
tenant's prefix and works the same on every cloud and locally. A run appends its new messages
when it completes; appends are compare-and-swap (read, add, write if unchanged, else again), so
two runs finishing on one thread at once both land and neither loses a message. A thread may
carry a TTL, renewed by each append: past it, it reads as missing (reading it deletes it, and
an append starts it afresh).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field, ValidationError, computed_field

from agentfn.cas_json import read_json, write_json
from agentfn.errors import Conflict, CorruptRecord, NotFound, ValidationFailed
from agentfn.ports import BlobStore, Message

THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PREFIX = "threads/"
MAX_CAS_ATTEMPTS = 64
"""Writers racing on one thread each win within this many rounds (one per concurrent writer)."""
MAX_RUNS_KEPT = 1000
"""Run ids a thread remembers having appended: a run's append redone later is a no-op."""
MAX_MESSAGES_KEPT = 1000
"""A thread keeps its newest messages up to this many: every run on it reads the record and
every completion rewrites it, so it stays bounded (an agent sees at most its token budget of
it anyway, and a summariser condenses what that leaves out)."""


class Thread(BaseModel):
    id: str
    messages: list[Message] = Field(default_factory=list)
    created_at: float
    updated_at: float
    ttl_s: float | None = Field(default=None, gt=0)
    """Seconds the thread lives after its last append; None: until deleted."""
    runs: list[str] = Field(default_factory=list)
    """The runs whose messages were appended (the last ``MAX_RUNS_KEPT``), oldest first."""
    trimmed: int = Field(default=0, ge=0)
    """How many of its oldest messages were dropped to keep it within its bound."""

    @property
    def appended(self) -> int:
        """Messages ever appended: a position in the thread that trimming does not move."""
        return self.trimmed + len(self.messages)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def expires_at(self) -> float | None:
        return None if self.ttl_s is None else self.updated_at + self.ttl_s


class RunThread(BaseModel):
    """The thread a run converses on, as it stood when the run started: its agents start from
    those messages, so a redelivered turn (or a replay) sees the same history however the
    thread has grown since."""

    id: str
    created_at: float | None = None
    """The thread's creation time; None: it did not exist (the run starts it)."""
    upto: int = Field(default=0, ge=0)
    """The thread's messages the run's agents start from: those before this position
    (``Thread.appended`` when the run started)."""
    ttl_s: float | None = Field(default=None, gt=0)
    """Set on the thread when the run's messages are appended."""


def check_thread_id(thread_id: str) -> str:
    if not isinstance(thread_id, str) or not THREAD_ID.match(thread_id):
        raise ValidationFailed(
            "thread: 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit",
            field="thread",
        )
    return thread_id


class ThreadStore:
    """Threads in ``blobs`` (a tenant's view of the store, where tenants apply).

    ``on_delete`` hears of each thread deleted or found expired before its record goes, so
    whatever refers to it (runs' prompt logs, facts remembered in it) can go too."""

    def __init__(
        self,
        blobs: BlobStore,
        *,
        clock: Callable[[], float] = time.time,
        on_delete: Callable[[str], None] | None = None,
        max_messages: int = MAX_MESSAGES_KEPT,
    ) -> None:
        self.blobs = blobs
        self.clock = clock
        self.on_delete = on_delete
        self.max_messages = max_messages

    def get(self, thread_id: str) -> Thread:
        """The thread; ``NotFound`` when it never was, was deleted or has expired."""
        thread, etag = self._read(check_thread_id(thread_id))
        if thread is None:
            if etag is not None:  # expired: gone from the store too
                self.delete(thread_id)
            raise NotFound(f"thread {thread_id} not found")
        return thread

    def sweep(self, thread_id: str) -> bool:
        """Delete the thread if it has expired (with what refers to it); whether it had."""
        thread, etag = self._read(check_thread_id(thread_id))
        if thread is None and etag is not None:
            self.delete(thread_id)
            return True
        return False

    def append(
        self,
        thread_id: str,
        messages: Sequence[Message],
        *,
        ttl_s: float | None = None,
        run_id: str | None = None,
    ) -> Thread:
        """Add ``messages`` at the end (creating the thread); ``ttl_s`` replaces the TTL when
        given. Safe against concurrent appends: none is lost. With ``run_id``, an append the
        thread already has from that run (a redelivered completion) changes nothing."""
        key = _key(check_thread_id(thread_id))
        for _ in range(MAX_CAS_ATTEMPTS):
            current, etag = self._read(thread_id)
            now = self.clock()
            if current is None and etag is not None and self.on_delete is not None:
                self.on_delete(thread_id)  # expired: what referred to it goes first
            if current is None:
                current = Thread(id=thread_id, created_at=now, updated_at=now)
            elif run_id is not None and run_id in current.runs:
                return current
            runs = current.runs if run_id is None else [*current.runs, run_id][-MAX_RUNS_KEPT:]
            kept, cut = _bounded([*current.messages, *messages], self.max_messages)
            updated = current.model_copy(
                update={
                    "messages": kept,
                    "trimmed": current.trimmed + cut,
                    "updated_at": now,
                    "ttl_s": ttl_s if ttl_s is not None else current.ttl_s,
                    "runs": runs,
                }
            )
            if write_json(self.blobs, key, updated.model_dump(mode="json"), etag):
                return updated
        raise Conflict(f"thread {thread_id}: too many concurrent appends, try again")

    def delete(self, thread_id: str) -> None:
        """Gone for good, with what refers to it (``on_delete``); deleting a missing thread is
        not an error (``delete`` is idempotent on every store)."""
        key = _key(check_thread_id(thread_id))
        if self.on_delete is not None:
            self.on_delete(thread_id)
        self.blobs.delete(key)

    def _read(self, thread_id: str) -> tuple[Thread | None, str | None]:
        """The live thread and its etag; an expired one is deleted and reads as missing (its
        etag is kept, so an append replaces it by compare-and-swap)."""
        key = _key(thread_id)
        raw, etag = read_json(self.blobs, key)
        if raw is None:
            return None, None
        try:
            thread = Thread.model_validate(raw)
        except ValidationError as exc:
            raise CorruptRecord(f"{key} is not a thread: {exc.errors()[0]['msg']}") from None
        expires = thread.expires_at
        if expires is not None and expires <= self.clock():
            return None, etag
        return thread, etag


def _bounded(messages: list[Message], most: int) -> tuple[list[Message], int]:
    """The newest ``most`` messages at the most, starting with a user message; and how many
    were cut."""
    cut = max(0, len(messages) - most)
    while cut and cut < len(messages) and messages[cut].role != "user":
        cut += 1
    return messages[cut:], cut


def _key(thread_id: str) -> str:
    return f"{PREFIX}{thread_id}.json"
