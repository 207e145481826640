"""A small settings record of a tenant, read through a per-process cache: every request and
job consults it, so it is read from the store at most every ``ttl_s``; a change holds on every
instance within that long (at once on the instance that made it)."""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

from pydantic import BaseModel

from agentfn.errors import CorruptRecord, NotFound
from agentfn.ports import BlobStore

M = TypeVar("M", bound=BaseModel)
TTL_S = 10.0


class CachedRecord(Generic[M]):
    def __init__(self, blobs: BlobStore, key: str, model: type[M], *, ttl_s: float = TTL_S) -> None:
        self.blobs = blobs
        self.key = key
        self.model = model
        self.ttl_s = ttl_s
        self._cached: tuple[float, M] | None = None
        self._lock = threading.Lock()

    def get(self) -> M:
        now = time.monotonic()
        with self._lock:
            cached = self._cached
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        try:
            data = self.blobs.get(self.key).data
        except NotFound:
            value = self.model()
        else:
            try:
                value = self.model.model_validate_json(data)
            except ValueError as exc:
                raise CorruptRecord(f"{self.key} does not parse: {exc}") from None
        with self._lock:
            self._cached = (now, value)
        return value

    def put(self, value: M) -> M:
        self.blobs.put(self.key, value.model_dump_json().encode())
        with self._lock:
            self._cached = (time.monotonic(), value)
        return value
