from __future__ import annotations

import contextlib
import random
import threading

import pytest
from hypothesis import given, strategies as st
from pydantic import ValidationError

from agentfn.errors import CircuitOpen, ModelError, TransientModelError
from agentfn.ports import ChatReply, ChatRequest, Message
from agentfn.resilience import Backoff, CircuitBreaker, ResilientModel, call_with_retries


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """Raises the queued exceptions in order, then returns ``result``."""

    def __init__(self, *errors: BaseException, result: str = "ok") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.result = result

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


# --------------------------------------------------------------------------- backoff


def test_backoff_grows_exponentially_then_caps() -> None:
    b = Backoff(base_s=0.5, factor=2, max_s=5, jitter=False)
    assert [b.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_huge_attempt_is_capped_not_overflowing() -> None:
    assert Backoff(base_s=1, factor=10, max_s=7, jitter=False).delay(10_000) == 7


@given(attempt=st.integers(min_value=1, max_value=200), seed=st.integers(0, 2**32))
def test_backoff_full_jitter_stays_in_bounds(attempt: int, seed: int) -> None:
    b = Backoff(base_s=0.5, factor=2, max_s=30)
    cap = Backoff(base_s=0.5, factor=2, max_s=30, jitter=False).delay(attempt)
    d = b.delay(attempt, random.Random(seed))
    assert 0.0 <= d <= cap


def test_backoff_jitter_is_seeded_and_varies() -> None:
    b = Backoff(base_s=1, factor=2, max_s=100)
    first = [b.delay(5, random.Random(7)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    draws = {b.delay(5, random.Random(s)) for s in range(20)}
    assert len(draws) > 10


@pytest.mark.parametrize(
    "kwargs", [{"base_s": -1}, {"factor": 0.5}, {"base_s": 2, "max_s": 1}, {"bogus": 1}]
)
def test_backoff_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Backoff(**kwargs)


def test_backoff_is_frozen_and_rejects_attempt_zero() -> None:
    b = Backoff()
    with pytest.raises(ValidationError):
        b.base_s = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        b.delay(0)


# --------------------------------------------------------------------------- retries


def test_retries_until_success_and_sleeps_with_backoff() -> None:
    fn = Flaky(TransientModelError("a"), TransientModelError("b"))
    slept: list[float] = []
    result = call_with_retries(
        fn, attempts=5, backoff=Backoff(base_s=1, jitter=False), sleep=slept.append
    )
    assert result == "ok"
    assert fn.calls == 3
    assert slept == [1.0, 2.0]


def test_retries_stop_after_attempts_and_raise_last_error() -> None:
    fn = Flaky(*(TransientModelError(f"e{i}") for i in range(10)))
    slept: list[float] = []
    with pytest.raises(TransientModelError, match="e2"):
        call_with_retries(fn, attempts=3, backoff=Backoff(jitter=False), sleep=slept.append)
    assert fn.calls == 3
    assert len(slept) == 2


def test_non_transient_errors_are_not_retried() -> None:
    fn = Flaky(ModelError("bad request"))
    with pytest.raises(ModelError, match="bad request"):
        call_with_retries(fn, attempts=5, backoff=Backoff(), sleep=lambda s: None)
    assert fn.calls == 1


def test_circuit_open_is_not_retried() -> None:
    fn = Flaky(CircuitOpen("open"))
    slept: list[float] = []
    with pytest.raises(CircuitOpen):
        call_with_retries(fn, attempts=5, backoff=Backoff(), sleep=slept.append)
    assert fn.calls == 1
    assert slept == []


def test_retry_on_is_configurable() -> None:
    fn = Flaky(KeyError("x"))
    assert (
        call_with_retries(
            fn, attempts=2, backoff=Backoff(), retry_on=(KeyError,), sleep=lambda s: None
        )
        == "ok"
    )


def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        call_with_retries(lambda: 1, attempts=0, backoff=Backoff())


# --------------------------------------------------------------------------- breaker


def _trip(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(TransientModelError):
            breaker.call(Flaky(TransientModelError("down")))


def test_breaker_opens_after_threshold_and_fails_fast() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=10, clock=clock)
    _trip(breaker, 2)
    assert breaker.state == "closed"
    _trip(breaker, 1)
    assert breaker.state == "open"
    fn = Flaky()
    with pytest.raises(CircuitOpen):
        breaker.call(fn)
    assert fn.calls == 0


def test_breaker_counts_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=FakeClock())
    _trip(breaker, 1)
    assert breaker.call(Flaky()) == "ok"
    _trip(breaker, 1)
    assert breaker.state == "closed"


def test_non_transient_model_error_does_not_trip() -> None:
    breaker = CircuitBreaker(failure_threshold=1, clock=FakeClock())
    for _ in range(3):
        with pytest.raises(ModelError):
            breaker.call(Flaky(ModelError("400")))
    assert breaker.state == "closed"


def test_half_open_trial_success_closes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=10, clock=clock)
    _trip(breaker, 1)
    clock.now += 9.9
    assert breaker.state == "open"
    clock.now += 0.1
    assert breaker.state == "half_open"
    fn = Flaky()
    assert breaker.call(fn) == "ok"
    assert fn.calls == 1
    assert breaker.state == "closed"
    assert breaker.failures == 0


def test_half_open_trial_failure_reopens_for_another_timeout() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=10, clock=clock)
    _trip(breaker, 3)
    clock.now += 10
    _trip(breaker, 1)  # the one trial fails
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.call(Flaky())
    clock.now += 10
    assert breaker.state == "half_open"


def test_half_open_allows_only_one_trial_at_a_time() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=1, clock=clock)
    _trip(breaker, 1)
    clock.now += 1
    entered, release = threading.Event(), threading.Event()

    def slow() -> str:
        entered.set()
        release.wait(5)
        return "trial"

    results: list[str] = []
    t = threading.Thread(target=lambda: results.append(breaker.call(slow)))
    t.start()
    assert entered.wait(5)
    with pytest.raises(CircuitOpen, match="trial"):
        breaker.call(Flaky())
    release.set()
    t.join(5)
    assert results == ["trial"]
    assert breaker.state == "closed"


def test_breaker_is_thread_safe_under_concurrent_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=1000, clock=FakeClock())

    def worker() -> None:
        for _ in range(100):
            with contextlib.suppress(TransientModelError):
                breaker.call(Flaky(TransientModelError("x")))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert breaker.failures == 800
    assert breaker.state == "closed"


def test_breaker_validation() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(reset_timeout_s=-1)


# --------------------------------------------------------------------------- ResilientModel


class FlakyModel:
    def __init__(self, *errors: Exception) -> None:
        self.name = "flaky-1"
        self.errors = list(errors)
        self.calls = 0

    def chat(self, request: ChatRequest) -> ChatReply:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return ChatReply(content="fine", model=self.name)


REQ = ChatRequest(messages=[Message(role="user", content="hi")])


def test_resilient_model_retries_and_forwards_name() -> None:
    inner = FlakyModel(TransientModelError("503"), TransientModelError("503"))
    model = ResilientModel(inner, attempts=3, sleep=lambda s: None)
    assert model.name == "flaky-1"
    assert model.chat(REQ).content == "fine"
    assert inner.calls == 3


def test_resilient_model_opens_breaker_and_stops_retrying() -> None:
    clock = FakeClock()
    inner = FlakyModel(*(TransientModelError("503") for _ in range(10)))
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=30, clock=clock)
    slept: list[float] = []
    model = ResilientModel(inner, attempts=5, breaker=breaker, sleep=slept.append)
    with pytest.raises(CircuitOpen):
        model.chat(REQ)
    assert inner.calls == 2  # third attempt hit the open breaker and gave up at once
    assert len(slept) == 2
    with pytest.raises(CircuitOpen):
        model.chat(REQ)
    assert inner.calls == 2


def test_resilient_model_does_not_retry_permanent_errors() -> None:
    inner = FlakyModel(ModelError("401"))
    model = ResilientModel(inner, attempts=3, sleep=lambda s: None)
    with pytest.raises(ModelError, match="401"):
        model.chat(REQ)
    assert inner.calls == 1
