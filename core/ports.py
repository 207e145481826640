"""The only seams between core and the outside world.

Core talks to storage, queues, secrets and models through these protocols and nothing else.
Every adapter of a port passes the same contract suite (tests/contract/), so core can rely on
the documented semantics below on every cloud.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

# --------------------------------------------------------------------------- blobs


@dataclass(frozen=True, slots=True)
class Blob:
    key: str
    data: bytes
    etag: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; pass ``cursor`` back to get the next page."""

    keys: list[str]
    cursor: str | None = None


CHUNK_SIZE = 1 << 20  # streaming moves objects in 1 MiB chunks, never whole


@runtime_checkable
class BlobStore(Protocol):
    """Key/value objects with etags.

    - ``get`` raises :class:`agentfn.errors.NotFound`.
    - ``put_if_absent`` raises :class:`agentfn.errors.PreconditionFailed` if the key exists.
    - ``put_if_match`` raises ``PreconditionFailed`` if the key is missing or its etag differs;
      exactly one of several racing writers with the same etag wins.
    - ``list`` returns keys under ``prefix`` in lexicographic order, at most ``limit`` a page.
    - ``delete`` is idempotent.
    - ``upload`` streams a readable binary file object into ``key`` and ``download`` streams
      ``key`` into a writable one, both in chunks, so large objects never sit whole in memory.
      Both return the etag of what was written/read.
    """

    def get(self, key: str) -> Blob: ...

    def put(self, key: str, data: bytes) -> str: ...

    def put_if_absent(self, key: str, data: bytes) -> str: ...

    def put_if_match(self, key: str, data: bytes, etag: str) -> str: ...

    def list(self, prefix: str = "", *, cursor: str | None = None, limit: int = 1000) -> Page: ...

    def delete(self, key: str) -> None: ...

    def upload(self, key: str, stream: BinaryIO) -> str: ...

    def download(self, key: str, sink: BinaryIO) -> str: ...


# --------------------------------------------------------------------------- queues


@dataclass(slots=True)
class QueueMessage:
    """A received job. ``attempts`` counts deliveries, this one included."""

    id: str
    body: dict[str, Any]
    attempts: int
    receipt: str
    priority: int = 0


@dataclass(slots=True)
class DeadLetter:
    id: str
    body: dict[str, Any]
    attempts: int
    reason: str
    failed_at: float


@runtime_checkable
class Queue(Protocol):
    """At-least-once job queue.

    - ``send``: ``delay`` seconds before the job becomes visible; higher ``priority`` is
      received first among visible jobs.
    - ``receive``: hides each returned job for ``visibility_timeout`` seconds; a job not acked
      by then is delivered again. A job already delivered ``max_attempts`` times is moved to the
      dead-letter queue instead of being delivered again.
    - ``ack``: deletes the job; acking with a stale receipt is a no-op.
    - ``retry``: makes the job visible again after ``delay`` seconds.
    - ``dead_letter``: moves the job to the dead-letter queue with a reason.
    - ``extend``: keeps a received job hidden ``visibility_timeout`` more seconds from now (a
      long step renews it); with a stale receipt it is a no-op.
    """

    max_attempts: int

    def send(self, body: dict[str, Any], *, delay: float = 0.0, priority: int = 0) -> str: ...

    def receive(
        self, max_messages: int = 1, *, visibility_timeout: float = 30.0
    ) -> list[QueueMessage]: ...

    def ack(self, message: QueueMessage) -> None: ...

    def retry(self, message: QueueMessage, *, delay: float = 0.0) -> None: ...

    def dead_letter(self, message: QueueMessage, reason: str) -> None: ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    def extend(self, message: QueueMessage, *, visibility_timeout: float) -> None: ...


@runtime_checkable
class Doorbell(Protocol):
    """A queue an idle worker can sleep on instead of polling it.

    ``wait`` returns once a job may have become receivable (one was sent or released, or a
    hidden or delayed one fell due) or after ``timeout`` seconds, whichever comes first; it
    may return early, never late. A worker's next ``receive`` says whether there is work.
    """

    def wait(self, timeout: float) -> None: ...


@runtime_checkable
class Batching(Protocol):
    """A store or queue whose writes can commit together (the local SQLite adapters).

    Every write made inside ``batch()`` through the adapter, and through any adapter sharing
    its database, commits when the block ends, or none does if it raises; a write that fails
    inside (a lost compare-and-swap) undoes only itself. Reads inside see those writes. The
    engine batches what follows a step, so a step costs one commit (one fsync) there instead
    of one per write; adapters without it commit each write on its own, in the same order.
    ``after_commit`` calls ``fn`` once this thread's writes so far are committed (at once
    outside a batch; never, if the batch rolls back): what must follow a commit, such as a
    run's ending event or a doorbell, waits for it.
    """

    def batch(self) -> AbstractContextManager[None]: ...

    def after_commit(self, fn: Callable[[], None]) -> None: ...


# --------------------------------------------------------------------------- secrets


@runtime_checkable
class SecretStore(Protocol):
    """Named secrets. Raises ``NotFound``; implementations cache with a TTL and never log values."""

    def get(self, name: str) -> str: ...


# --------------------------------------------------------------------------- models


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


class ToolSpec(BaseModel):
    """What a model sees of a tool: its name, purpose and JSON schema of arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ChatRequest(BaseModel):
    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    model: str | None = None
    agent: str | None = None
    temperature: float | None = None


class ChatReply(BaseModel):
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    finish_reason: str = "stop"


@runtime_checkable
class Model(Protocol):
    """A chat model.

    Raises ``TransientModelError`` for what retrying may fix, else ``ModelError``.
    """

    name: str

    def chat(self, request: ChatRequest) -> ChatReply: ...


# --------------------------------------------------------------------------- memory search


@runtime_checkable
class FactSearch(Protocol):
    """A search index over remembered facts (a vector store, say) a deployment plugs in; by
    default facts are recalled by simple text match instead.

    A ``space`` names whose facts they are (tenant, agent and scope): the index keeps spaces
    apart. ``index`` replaces what ``key`` had, ``remove`` of a missing key is no error, and
    ``search`` returns keys of the space best first. The facts themselves stay in the
    BlobStore: a key the index returns that is gone (forgotten, expired) is skipped.
    """

    def index(self, space: str, key: str, text: str) -> None: ...

    def remove(self, space: str, key: str) -> None: ...

    def search(self, space: str, query: str, limit: int) -> list[str]: ...
