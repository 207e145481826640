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

from pydantic import BaseModel, Field, ValidationError

from agentfn.cas_json import read_json, write_json
from agentfn.errors import Conflict, CorruptRecord, NotFound, ValidationFailed
from agentfn.ports import BlobStore, Message

THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PREFIX = "threads/"
MAX_CAS_ATTEMPTS = 64
"""Writers racing on one thread each win within this many rounds (one per concurrent writer)."""


class Thread(BaseModel):
    id: str
    messages: list[Message] = Field(default_factory=list)
    created_at: float
    updated_at: float
    ttl_s: float | None = Field(default=None, gt=0)
    """Seconds the thread lives after its last append; None: until deleted."""

    @property
    def expires_at(self) -> float | None:
        return None if self.ttl_s is None else self.updated_at + self.ttl_s


def check_thread_id(thread_id: str) -> str:
    if not isinstance(thread_id, str) or not THREAD_ID.match(thread_id):
        raise ValidationFailed(
            "thread: 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit",
            field="thread",
        )
    return thread_id


class ThreadStore:
    """Threads in ``blobs`` (a tenant's view of the store, where tenants apply)."""

    def __init__(self, blobs: BlobStore, *, clock: Callable[[], float] = time.time) -> None:
        self.blobs = blobs
        self.clock = clock

    def get(self, thread_id: str) -> Thread:
        """The thread; ``NotFound`` when it never was, was deleted or has expired."""
        thread, etag = self._read(check_thread_id(thread_id))
        if thread is None:
            if etag is not None:  # expired: gone from the store too
                self.delete(thread_id)
            raise NotFound(f"thread {thread_id} not found")
        return thread

    def append(
        self, thread_id: str, messages: Sequence[Message], *, ttl_s: float | None = None
    ) -> Thread:
        """Add ``messages`` at the end (creating the thread); ``ttl_s`` replaces the TTL when
        given. Safe against concurrent appends: none is lost."""
        key = _key(check_thread_id(thread_id))
        for _ in range(MAX_CAS_ATTEMPTS):
            current, etag = self._read(thread_id)
            now = self.clock()
            if current is None:
                current = Thread(id=thread_id, created_at=now, updated_at=now)
            updated = current.model_copy(
                update={
                    "messages": [*current.messages, *messages],
                    "updated_at": now,
                    "ttl_s": ttl_s if ttl_s is not None else current.ttl_s,
                }
            )
            if write_json(self.blobs, key, updated.model_dump(mode="json"), etag):
                return updated
        raise Conflict(f"thread {thread_id}: too many concurrent appends, try again")

    def delete(self, thread_id: str) -> None:
        """Gone for good; deleting a missing thread is not an error (``delete`` is
        idempotent on every store)."""
        self.blobs.delete(_key(check_thread_id(thread_id)))

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


def _key(thread_id: str) -> str:
    return f"{PREFIX}{thread_id}.json"
