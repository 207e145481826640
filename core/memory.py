"""Long-term memory: facts an agent remembers across runs, recalled by key or by text.

Facts live in the BlobStore under ``memory/{agent}/{scope}/``, so a tenant's view of the store
scopes them per tenant, the path per agent, and ``scope`` per thread when one is given (else
the agent's shared scope). A fact's key is the agent's (model-chosen, so untrusted): it is
stored inside the record and the blob is named by its hash. A fact may expire; expired facts
are never recalled and are removed when met.

Recall by query matches words by default; a deployment may plug in a ``FactSearch`` (a vector
index, say), which is told of every fact saved and forgotten and answers queries with keys.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import suppress

from pydantic import BaseModel, Field, ValidationError

from agentfn.errors import CorruptRecord, NotFound, ValidationFailed
from agentfn.ports import BlobStore, FactSearch
from agentfn.runs import iter_keys
from agentfn.threads import check_thread_id

PREFIX = "memory/"
SHARED_SCOPE = "_shared"
AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_KEY_CHARS = 200
MAX_VALUE_CHARS = 8_000
_WORD = re.compile(r"\w+")


class Fact(BaseModel):
    key: str = Field(min_length=1, max_length=MAX_KEY_CHARS)
    value: str = Field(max_length=MAX_VALUE_CHARS)
    agent: str
    thread: str | None = None
    saved_at: float
    expires_at: float | None = None


class MemoryStore:
    """Facts of one tenant's agents in ``blobs`` (the tenant's view of the store).

    ``tenant`` names the tenant to a ``search`` index, which (unlike the store) is shared."""

    def __init__(
        self,
        blobs: BlobStore,
        *,
        clock: Callable[[], float] = time.time,
        search: FactSearch | None = None,
        tenant: str = "default",
    ) -> None:
        self.blobs = blobs
        self.clock = clock
        self.search = search
        self.tenant = tenant

    def remember(
        self,
        agent: str,
        key: str,
        value: str,
        *,
        thread: str | None = None,
        ttl_s: float | None = None,
    ) -> Fact:
        """Save ``value`` under ``key`` (replacing what the key held)."""
        if ttl_s is not None and ttl_s <= 0:
            raise ValidationFailed("ttl_s: must be more than 0 seconds", field="ttl_s")
        now = self.clock()
        try:
            fact = Fact(
                key=key,
                value=value,
                agent=_agent(agent),
                thread=None if thread is None else check_thread_id(thread),
                saved_at=now,
                expires_at=None if ttl_s is None else now + ttl_s,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise ValidationFailed(f"{field}: {first['msg']}", field=field) from None
        self.blobs.put(self._blob(agent, thread, key), fact.model_dump_json().encode())
        if self.search is not None:
            self.search.index(self._space(agent, thread), key, f"{key}: {value}")
        return fact

    def recall(
        self,
        agent: str,
        *,
        key: str | None = None,
        query: str | None = None,
        thread: str | None = None,
        limit: int = 10,
    ) -> list[Fact]:
        """The fact under ``key``, or the facts matching ``query`` best first (the most of its
        words in a fact's key and value; ties: the newest first), or the newest facts."""
        if key is not None:
            fact = self._read(self._blob(agent, thread, key))
            return [] if fact is None else [fact]
        if query is not None and self.search is not None:
            keys = self.search.search(self._space(agent, thread), query, max(limit, 0))
            found = (self._read(self._blob(agent, thread, k)) for k in keys)
            return [f for f in found if f is not None][: max(limit, 0)]
        facts = list(self._facts(agent, thread))
        if query is not None:
            words = set(_WORD.findall(query.lower()))
            scored = [(len(words & _words(f)), f.saved_at, f) for f in facts]
            scored = [s for s in scored if s[0]]
            scored.sort(key=lambda s: s[:2], reverse=True)
            facts = [f for _, _, f in scored]
        else:
            facts.sort(key=lambda f: f.saved_at, reverse=True)
        return facts[: max(limit, 0)]

    def forget(self, agent: str, key: str, *, thread: str | None = None) -> bool:
        """Whether there was something (unexpired) to forget."""
        blob_key = self._blob(agent, thread, key)
        existed = self._read(blob_key) is not None
        self.blobs.delete(blob_key)  # deleting a missing key is no error on any store
        if self.search is not None:
            self.search.remove(self._space(agent, thread), key)
        return existed

    def forget_thread(self, thread: str) -> int:
        """Forget every agent's facts remembered in ``thread`` (the thread is deleted);
        returns how many there were."""
        scope = f"/t.{check_thread_id(thread)}/"
        doomed = [k for k in iter_keys(self.blobs, PREFIX) if scope in k]
        for blob_key in doomed:
            fact = self._read(blob_key)
            self.blobs.delete(blob_key)
            if fact is not None and self.search is not None:
                self.search.remove(self._space(fact.agent, thread), fact.key)
        return len(doomed)

    def _space(self, agent: str, thread: str | None) -> str:
        return f"{self.tenant}/{self._scope(agent, thread)}"

    def _facts(self, agent: str, thread: str | None) -> Iterator[Fact]:
        for blob_key in iter_keys(self.blobs, self._scope(agent, thread)):
            fact = self._read(blob_key)
            if fact is not None:
                yield fact

    def _read(self, blob_key: str) -> Fact | None:
        try:
            data = self.blobs.get(blob_key).data
        except NotFound:
            return None
        try:
            fact = Fact.model_validate(json.loads(data))
        except (ValueError, ValidationError) as exc:
            raise CorruptRecord(f"{blob_key} is not a fact: {exc}") from None
        if fact.expires_at is not None and fact.expires_at <= self.clock():
            with suppress(NotFound):  # another reader may have removed it first
                self.blobs.delete(blob_key)
            return None
        return fact

    def _scope(self, agent: str, thread: str | None) -> str:
        scope = SHARED_SCOPE if thread is None else f"t.{check_thread_id(thread)}"
        return f"{PREFIX}{_agent(agent)}/{scope}/"

    def _blob(self, agent: str, thread: str | None, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()[:40]
        return f"{self._scope(agent, thread)}{digest}.json"


def _agent(name: str) -> str:
    if not AGENT_NAME.match(name):
        raise ValidationFailed(f"agent: {name!r} is not an agent's name", field="agent")
    return name


def _words(fact: Fact) -> set[str]:
    return set(_WORD.findall(f"{fact.key} {fact.value}".lower()))
