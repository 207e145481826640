"""Per-tenant quotas, kept in the tenant's prefix of the BlobStore by compare-and-swap, so a
limit holds across every function instance and worker process, not per process.

- ``requests_per_minute``: API calls, a counter per minute window (429 + ``Retry-After``).
- ``concurrent_runs``: runs not yet ended, a set of run ids kept with or without a limit
  (starting one more than the limit is a 429).
- ``tokens_per_day``: model tokens, a counter per UTC day; a model call past it fails its
  step, and starting a run past it is a 429.
- ``model_calls_per_minute``: model calls, a counter per minute window; a call past it waits
  for the next window (throttling: the step is slower, not failed).

A tenant without limits pays a cached read of them, and two writes a run (its start and end
in the set of active runs). The first refusal of
each window is written to the audit log (later ones of the same window only answer 429).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentfn.cached_record import CachedRecord
from agentfn.cas_json import holders_of, read_json, write_json
from agentfn.errors import CorruptRecord, PreconditionFailed, QuotaExceeded
from agentfn.ports import BlobStore

LIMITS_KEY = "limits.json"
ACTIVE_RUNS_KEY = "quota/active-runs.json"
MINUTE_S = 60.0
DAY_S = 86400.0
_CONTENDED_TRIES = 200  # a window's counter under a burst: each round, one writer wins

Quota = Literal[
    "requests_per_minute", "concurrent_runs", "tokens_per_day", "model_calls_per_minute"
]


class Limits(BaseModel):
    """A tenant's limits; ``None`` is unlimited."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int | None = Field(default=None, ge=1)
    concurrent_runs: int | None = Field(default=None, ge=1)
    tokens_per_day: int | None = Field(default=None, ge=1)
    model_calls_per_minute: int | None = Field(default=None, ge=1)


class Usage(BaseModel):
    """What a tenant has used in the current windows, beside its limits."""

    limits: Limits
    requests_this_minute: int
    model_calls_this_minute: int
    tokens_today: int
    active_runs: int


class TenantQuotas:
    """One tenant's quotas over its view of the store (``blobs`` is already the tenant's)."""

    def __init__(
        self,
        blobs: BlobStore,
        *,
        clock: Callable[[], float] = time.time,
        on_refusal: Callable[[str, Quota, dict[str, Any]], None] | None = None,
    ) -> None:
        self.blobs = blobs
        self.clock = clock
        self.on_refusal = on_refusal
        self._limits = CachedRecord(blobs, LIMITS_KEY, Limits)

    # ------------------------------------------------------------------ limits

    def limits(self) -> Limits:
        """The tenant's limits, read at most every few seconds per process."""
        return self._limits.get()

    def set_limits(self, limits: Limits) -> Limits:
        return self._limits.put(limits)

    # ------------------------------------------------------------------ checks

    def admit_request(self, actor: str) -> None:
        """Count one API call, or raise :class:`QuotaExceeded` (429) past the minute's limit."""
        limit = self.limits().requests_per_minute
        if limit is not None:
            self._take("requests_per_minute", MINUTE_S, limit, 1, actor=actor)

    def check_tokens(self, actor: str = "engine") -> None:
        """Refuse (429) while today's tokens are spent."""
        limit = self.limits().tokens_per_day
        if limit is None:
            return
        start, key = self._window("tokens", DAY_S)
        used = self._read_count(key)[0]
        if used >= limit:
            self._refuse("tokens_per_day", limit, used, start, DAY_S, actor=actor)

    def add_tokens(self, tokens: int) -> None:
        """Count tokens a model call used (always: the limit may be set later today)."""
        if tokens > 0 and self.limits().tokens_per_day is not None:
            self._add(self._window("tokens", DAY_S)[1], tokens)

    def throttle_model_call(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Wait until a model call fits this minute's limit, then count it."""
        limit = self.limits().model_calls_per_minute
        while limit is not None:
            try:
                self._take("model_calls_per_minute", MINUTE_S, limit, 1, actor=None)
                return
            except QuotaExceeded as exc:
                sleep(exc.retry_after + random.uniform(0, 0.5))  # not all at the window's edge

    def admit_run(
        self, run_id: str, is_active: Callable[[str], bool], actor: str = "engine"
    ) -> None:
        """Count a run as active, or raise (429) when ``concurrent_runs`` are. Runs are counted
        with or without a limit, so a limit set later counts the runs already going. Runs that
        ended without being released (a worker died at the wrong moment) are pruned at the
        limit."""
        limit = self.limits().concurrent_runs
        for _ in range(_CONTENDED_TRIES):
            active, etag = self._read_active()
            if limit is not None and len(active) >= limit:
                # a run admitted moments ago may not be recorded yet: young entries stay
                now = self.clock()
                active = {r: t for r, t in active.items() if now - t < 60 or is_active(r)}
            if limit is not None and len(active) >= limit:
                # when a run ends is unknown: a minute's window bounds the audit, 5 s the wait
                start = self._window("concurrent_runs", MINUTE_S)[0]
                used = len(active)
                self._refuse(
                    "concurrent_runs", limit, used, start, MINUTE_S, actor=actor, wait_s=5.0
                )
            active[run_id] = self.clock()
            if self._write_active(active, etag):
                return
        raise QuotaExceeded("too many runs are starting at once; try again", retry_after=1.0)

    def release_run(self, run_id: str) -> None:
        """The run ended: its slot is free."""
        for _ in range(_CONTENDED_TRIES):
            active, etag = self._read_active()
            if run_id not in active:
                return
            del active[run_id]
            if self._write_active(active, etag):
                return

    def usage(self) -> Usage:
        return Usage(
            limits=self.limits(),
            requests_this_minute=self._read_count(self._window("requests_per_minute", MINUTE_S)[1])[
                0
            ],
            model_calls_this_minute=self._read_count(
                self._window("model_calls_per_minute", MINUTE_S)[1]
            )[0],
            tokens_today=self._read_count(self._window("tokens", DAY_S)[1])[0],
            active_runs=len(self._read_active()[0]),
        )

    # ------------------------------------------------------------------ counters

    def _window(self, name: str, length_s: float) -> tuple[float, str]:
        index = int(self.clock() // length_s)
        return index * length_s, f"quota/{name}/{index}.json"

    def _read_count(self, key: str) -> tuple[int, str | None]:
        value, etag = read_json(self.blobs, key)
        if value is None:
            return 0, None
        try:
            return int(value["count"]), etag
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptRecord(f"quota counter {key} does not parse: {exc}") from None

    def _write_count(self, key: str, count: int, etag: str | None) -> bool:
        return write_json(self.blobs, key, {"count": count}, etag)

    def _take(
        self, quota: Quota, length_s: float, limit: int, amount: int, *, actor: str | None
    ) -> None:
        for attempt in range(_CONTENDED_TRIES):
            start, key = self._window(quota, length_s)
            count, etag = self._read_count(key)
            if count + amount > limit:
                self._refuse(quota, limit, count, start, length_s, actor=actor)
            if self._write_count(key, count + amount, etag):
                if etag is None:
                    self._forget(f"quota/{quota}/{int(start // length_s) - 2}.json")
                return
            time.sleep(random.uniform(0, 0.002 * min(attempt, 10)))
        raise QuotaExceeded(f"{quota} is contended; try again", retry_after=1.0)

    def _add(self, key: str, amount: int) -> None:
        for attempt in range(_CONTENDED_TRIES):
            count, etag = self._read_count(key)
            if self._write_count(key, count + amount, etag):
                return
            time.sleep(random.uniform(0, 0.002 * min(attempt, 10)))
        raise QuotaExceeded("token usage is contended; try again", retry_after=1.0)

    def _forget(self, key: str) -> None:
        """A new window began: the one before last will never be read again."""
        self.blobs.delete(key)

    def _refuse(
        self,
        quota: Quota,
        limit: int,
        used: int,
        start: float,
        length_s: float,
        *,
        actor: str | None,
        wait_s: float | None = None,
    ) -> None:
        """Raise the 429; the window's first refusal is also audited (``actor`` None: not)."""
        retry_after = max(1.0, wait_s if wait_s is not None else start + length_s - self.clock())
        if (
            actor is not None
            and self.on_refusal is not None
            and self._first_refusal(quota, start, length_s)
        ):
            self.on_refusal(actor, quota, {"limit": limit, "used": used})
        raise QuotaExceeded(
            f"the tenant's {quota} quota of {limit} is used up; retry in {retry_after:.0f} s",
            retry_after=retry_after,
        )

    def _first_refusal(self, quota: Quota, start: float, length_s: float) -> bool:
        index = int(start // length_s)
        try:
            self.blobs.put_if_absent(f"quota/{quota}/{index}.refused", b"1")
        except PreconditionFailed:
            return False
        self._forget(f"quota/{quota}/{index - 2}.refused")
        return True

    # ------------------------------------------------------------------ active runs

    def _read_active(self) -> tuple[dict[str, float], str | None]:
        value, etag = read_json(self.blobs, ACTIVE_RUNS_KEY)
        return holders_of(value, ACTIVE_RUNS_KEY), etag

    def _write_active(self, active: dict[str, float], etag: str | None) -> bool:
        return write_json(self.blobs, ACTIVE_RUNS_KEY, active, etag)
