"""Concurrency keys: at most N steps of one key running at once across every worker.

A blueprint limits all its steps (``concurrency:`` at the top), an agent the steps that work
for it (``concurrency:`` in its spec) — e.g. ten workflows calling one rate-limited API
through one agent share its key. A key's slots are one record in the tenant's store,
``concurrency/<key>.json``: the holders (one per step execution) with when each slot frees
itself. A worker takes slots by compare-and-swap before it claims a step; with none free the
job goes back to the queue as a new message, so waiting burns none of the step's attempts.
A worker that dies holding a slot loses it when the step's timeout would have ended it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from agentfn.cas_json import holders_of, read_json, write_json
from agentfn.ports import BlobStore

PREFIX = "concurrency/"
_TRIES = 50


class ConcurrencySpec(BaseModel):
    """``{key, limit}``: at most ``limit`` steps under ``key`` run at once, across all runs."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    limit: int = Field(ge=1, le=1000)


class Slots:
    """The slots of every key of one tenant (``blobs`` is the tenant's view)."""

    def __init__(self, blobs: BlobStore, *, clock: Callable[[], float] = time.time) -> None:
        self.blobs = blobs
        self.clock = clock

    def acquire(self, specs: list[ConcurrencySpec], holder: str, hold_s: float) -> bool:
        """Take a slot of every key in ``specs`` for ``holder``, or none of them (False).

        Taking them one by one and giving back what was taken when one is full cannot
        deadlock: nobody waits while holding a slot.
        """
        taken: list[str] = []
        for spec in sorted(specs, key=lambda s: s.key):
            if not self._take(spec, holder, hold_s):
                for key in taken:
                    self.release(key, holder)
                return False
            taken.append(spec.key)
        return True

    def release(self, key: str, holder: str) -> None:
        for _ in range(_TRIES):
            holders, etag = self._read(key)
            if holder not in holders:
                return
            del holders[holder]
            if self._write(key, holders, etag):
                return

    def holders(self, key: str) -> dict[str, float]:
        """Who holds ``key``'s slots now, with when each frees itself."""
        now = self.clock()
        return {h: t for h, t in self._read(key)[0].items() if t > now}

    def _take(self, spec: ConcurrencySpec, holder: str, hold_s: float) -> bool:
        for _ in range(_TRIES):
            holders, etag = self._read(spec.key)
            now = self.clock()
            live = {h: t for h, t in holders.items() if t > now}
            if holder not in live and len(live) >= spec.limit:
                return False
            live[holder] = now + hold_s
            if self._write(spec.key, live, etag):
                return True
        return False  # contended: as good as full, the job comes back

    def _read(self, key: str) -> tuple[dict[str, float], str | None]:
        value, etag = read_json(self.blobs, f"{PREFIX}{key}.json")
        return holders_of(value, f"{PREFIX}{key}.json"), etag

    def _write(self, key: str, holders: dict[str, float], etag: str | None) -> bool:
        return write_json(self.blobs, f"{PREFIX}{key}.json", holders, etag)
