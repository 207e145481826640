"""Retries with backoff and a circuit breaker, so a flaky model API neither fails a run on the
first hiccup nor gets hammered while it is down.

Pure Python on purpose: every model adapter (and anything else that calls out) can be wrapped
the same way, and tests drive time through injected ``sleep``/``clock`` callables.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentfn.errors import CircuitOpen, ModelError, TransientModelError
from agentfn.ports import ChatReply, ChatRequest, Model

T = TypeVar("T")

BreakerState = Literal["closed", "open", "half_open"]


class Backoff(BaseModel):
    """Exponential backoff; full jitter by default so many clients don't retry in lockstep."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_s: float = Field(default=0.5, ge=0)
    factor: float = Field(default=2.0, ge=1)
    max_s: float = Field(default=30.0, ge=0)
    jitter: bool = True

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> Self:
        if self.max_s < self.base_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= base_s ({self.base_s})")
        return self

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        ``base_s * factor**(attempt-1)`` capped at ``max_s``; with jitter a uniform draw from
        ``[0, that]`` ("full jitter").
        """
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt}")
        try:
            computed = min(self.max_s, self.base_s * self.factor ** (attempt - 1))
        except OverflowError:  # huge attempt numbers: the cap applies anyway
            computed = self.max_s
        if not self.jitter:
            return computed
        return (rng or random).uniform(0.0, computed)


def call_with_retries(
    fn: Callable[[], T],
    *,
    attempts: int,
    backoff: Backoff,
    retry_on: tuple[type[BaseException], ...] = (TransientModelError,),
    sleep: Callable[[float], None] = time.sleep,
    give_up_on: tuple[type[BaseException], ...] = (CircuitOpen,),
) -> T:
    """Call ``fn`` up to ``attempts`` times in total, sleeping between tries.

    Only exceptions in ``retry_on`` are retried; anything else, or the last failure, propagates
    unchanged. ``give_up_on`` wins over ``retry_on``: retrying an open breaker (a subclass of
    ``TransientModelError``) would only sleep to fail fast again.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    attempt = 1
    while True:
        try:
            return fn()
        except give_up_on:
            raise
        except retry_on:
            if attempt >= attempts:
                raise
        sleep(backoff.delay(attempt))
        attempt += 1


class CircuitBreaker:
    """Fails fast after ``failure_threshold`` consecutive transient failures.

    Only ``TransientModelError`` counts as a failure: a non-transient ``ModelError`` (bad
    request, auth) proves the service answered, so it counts as a success for the breaker's
    purpose. Other exceptions (bugs in our own code) neither count nor reset.

    After ``reset_timeout_s`` one trial call is let through (half-open); its success closes the
    breaker, its failure reopens it for another timeout. Concurrent callers during the trial get
    ``CircuitOpen``. The lock is never held while ``fn`` runs.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        name: str | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if reset_timeout_s < 0:
            raise ValueError(f"reset_timeout_s must be >= 0, got {reset_timeout_s}")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """Current state; an open breaker whose timeout has passed reads as half-open."""
        with self._lock:
            return self._current_state()

    @property
    def failures(self) -> int:
        """Consecutive transient failures counted so far."""
        with self._lock:
            return self._failures

    def _current_state(self) -> BreakerState:
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_timeout_s:
            self._state = "half_open"
        return self._state

    def _label(self) -> str:
        return f"circuit breaker for {self.name!r}" if self.name else "circuit breaker"

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` through the breaker, or raise ``CircuitOpen`` without calling it."""
        with self._lock:
            state = self._current_state()
            if state == "open":
                wait = self.reset_timeout_s - (self._clock() - self._opened_at)
                raise CircuitOpen(
                    f"{self._label()} is open after {self._failures} consecutive transient "
                    f"failures; retry in {max(wait, 0.0):.1f}s"
                )
            trial = state == "half_open"
            if trial:
                if self._trial_in_flight:
                    raise CircuitOpen(f"{self._label()} is half-open and a trial call is running")
                self._trial_in_flight = True
        try:
            result = fn()
        except TransientModelError:
            self._record_failure(trial)
            raise
        except ModelError:
            self._record_success(trial)
            raise
        except BaseException:
            if trial:
                with self._lock:
                    self._trial_in_flight = False
            raise
        self._record_success(trial)
        return result

    def _record_success(self, trial: bool) -> None:
        with self._lock:
            if trial:
                self._trial_in_flight = False
            self._failures = 0
            self._state = "closed"

    def _record_failure(self, trial: bool) -> None:
        with self._lock:
            if trial:
                self._trial_in_flight = False
            self._failures += 1
            if trial or self._failures >= self.failure_threshold:
                self._state = "open"
                self._opened_at = self._clock()


class ResilientModel:
    """A ``Model`` that retries transient failures with backoff behind a circuit breaker.

    Each attempt goes through the breaker, so every failed try counts towards opening it; once
    open, the call fails fast with ``CircuitOpen`` instead of sleeping through more retries.
    """

    def __init__(
        self,
        inner: Model,
        *,
        attempts: int = 3,
        backoff: Backoff | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.inner = inner
        self.attempts = attempts
        self.backoff = backoff or Backoff()
        self.breaker = breaker or CircuitBreaker(name=inner.name)
        self._sleep = sleep

    @property
    def name(self) -> str:
        return self.inner.name

    @name.setter
    def name(self, value: str) -> None:
        self.inner.name = value

    def chat(self, request: ChatRequest) -> ChatReply:
        return call_with_retries(
            lambda: self.breaker.call(lambda: self.inner.chat(request)),
            attempts=self.attempts,
            backoff=self.backoff,
            sleep=self._sleep,
        )
