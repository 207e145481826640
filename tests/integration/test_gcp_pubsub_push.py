"""PubSubQueue behind a push subscription (the deployed worker), on the Pub/Sub emulator.

Pub/Sub's push retry backoff is at most 600 s and a subscription keeps a message at most its
retention: a job due later is nacked until its copy nears either limit, then re-published (a
hop) and acked. The tests take the subscription's part (tests.support.pubsub_push) and move a
fake clock by the longest backoff at each nack, so days of waiting take a few hundred
deliveries; the emulator's own dead-letter policy (``max_deliveries``) is real.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from agentfn.adapters.gcp.pubsub import MAX_DEADLINE_S, PubSubQueue, PushDelivery
from agentfn.errors import ConfigError
from agentfn.ports import QueueMessage
from tests.support.emulators.gcp import PROJECT, ensure_pubsub
from tests.support.pubsub_push import PushSubscription

DAY = 86_400.0


class Clock:
    """A fake clock starting at the real time, moved on by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_queue(clock: Clock) -> Iterator[Callable[..., PubSubQueue]]:
    """A fresh topic and subscription whose dead-letter policy is ``max_deliveries`` (5)."""
    ensure_pubsub()
    made: list[PubSubQueue] = []

    def make(**options: Any) -> PubSubQueue:
        # create() sets max_delivery_attempts = max_attempts + 1, clamped to 5..100.
        queue = PubSubQueue.create(
            PROJECT, f"p-{uuid.uuid4().hex[:16]}", max_attempts=4, clock=clock, **options
        )
        made.append(queue)
        return queue

    yield make
    for queue in made:
        for name in (queue.subscription, queue.dead_letter_subscription):
            with contextlib.suppress(gexc.NotFound):
                queue._sub().delete_subscription(
                    subscription=f"projects/{PROJECT}/subscriptions/{name}"
                )
        for name in (queue.topic, queue.dead_letter_topic):
            with contextlib.suppress(gexc.NotFound):
                queue._pub().delete_topic(topic=f"projects/{PROJECT}/topics/{name}")


def drive(
    queue: PubSubQueue,
    clock: Clock,
    *,
    on_job: Callable[[QueueMessage], int],
    backoff_s: float = MAX_DEADLINE_S,
    limit: int = 2000,
) -> dict[str, Any]:
    """Push until ``on_job`` has answered a job with a 2xx; count what happened on the way.

    Every nack moves the clock by ``backoff_s`` (Pub/Sub's longest backoff, by default)."""
    push = PushSubscription(queue._sub_path, clock=clock)
    seen: dict[str, Any] = {"nacks": 0, "hops": 0, "deliveries": [], "jobs": []}

    def handler(body: dict[str, Any]) -> int:
        seen["deliveries"].append(body["deliveryAttempt"])
        delivery: PushDelivery = queue.accept_push(body)
        if delivery.job is not None:
            seen["jobs"].append(delivery.job)
            return on_job(delivery.job)
        if not delivery.ack:
            seen["nacks"] += 1
            clock.now += backoff_s
            return 429
        seen["hops"] += delivery.note.startswith("hopped")
        return 200

    for _ in range(limit):
        statuses = push.push(handler)
        if seen["jobs"] and statuses and statuses[-1] < 300:
            return seen
        if not statuses:
            time.sleep(0.02)
    raise AssertionError(
        f"no job ran after {limit} pulls: {seen['nacks']} nacks, {seen['hops']} hops"
    )


def test_a_job_due_after_the_subscription_gives_up_hops_and_runs_once_due(
    make_queue: Callable[..., PubSubQueue], clock: Clock
) -> None:
    queue = make_queue(max_deliveries=5)
    sent_at = clock.now
    job_id = queue.send({"step": "timeout"}, delay=DAY, priority=2)
    seen = drive(queue, clock, on_job=lambda job: 204)
    [job] = seen["jobs"]
    assert clock.now >= sent_at + DAY  # never handed out early
    assert (job.id, job.priority, job.body) == (job_id, 2, {"step": "timeout"})
    assert job.attempts == 1  # a day of waiting consumed no attempt
    # Each copy hopped before the subscription's 5 deliveries ran out, so Pub/Sub's own
    # dead-letter policy never fired: 144 backoffs of 600 s took ~48 hops.
    assert max(seen["deliveries"]) <= 4
    assert seen["hops"] >= DAY / (3 * MAX_DEADLINE_S) - 1
    assert queue.dead_letters() == []


def test_a_copy_hops_before_the_subscription_stops_retaining_it(
    make_queue: Callable[..., PubSubQueue], clock: Clock
) -> None:
    """With deliveries to spare, retention is the limit: a copy hops well before it expires.

    The adapter is told of 100 deliveries and 3 h of retention (it hops a copy once it is
    2 h 40 min old); an hour passes between deliveries. The emulator's subscription gives up
    after 5 deliveries, so only the retention rule can keep this job alive.
    """
    queue = make_queue(max_deliveries=100, retention_s=3 * 3600.0)
    queue.send({"step": "later"}, delay=12 * 3600)
    seen = drive(queue, clock, on_job=lambda job: 204, backoff_s=3600)
    [job] = seen["jobs"]
    assert job.attempts == 1
    assert max(seen["deliveries"]) <= 4
    assert seen["hops"] >= 3
    assert queue.dead_letters() == []


def test_an_engine_retry_of_a_pushed_job_waits_its_delay_and_keeps_counting(
    make_queue: Callable[..., PubSubQueue], clock: Clock
) -> None:
    """retry(delay) of a push (no receipt) re-publishes it due later; attempts go on from 1."""
    queue = make_queue(max_deliveries=5)
    job_id = queue.send({"step": "flaky"}, priority=1)
    first = drive(queue, clock, on_job=lambda job: 204)["jobs"][0]
    assert first.attempts == 1 and first.receipt == ""
    retried_at = clock.now
    queue.retry(first, delay=6 * 3600)  # the worker does this, then answers 2xx
    seen = drive(queue, clock, on_job=lambda job: 204)
    [again] = seen["jobs"]
    assert clock.now >= retried_at + 6 * 3600
    assert (again.id, again.attempts, again.priority) == (job_id, 2, 1)
    assert seen["hops"] >= 1 and max(seen["deliveries"]) <= 4


def test_crashed_deliveries_count_and_end_in_the_dead_letters(
    make_queue: Callable[..., PubSubQueue], clock: Clock
) -> None:
    """A worker that answers 500 (it crashed) spends attempts; past max_attempts (4) the
    adapter dead-letters the job itself, before the subscription's 5 deliveries."""
    queue = make_queue(max_deliveries=5)
    job_id = queue.send({"step": "crash"})
    push = PushSubscription(queue._sub_path)
    attempts: list[int] = []
    notes: list[str] = []

    def handler(body: dict[str, Any]) -> int:
        delivery = queue.accept_push(body)
        if delivery.job is None:
            notes.append(delivery.note)
            return 200 if delivery.ack else 429
        attempts.append(delivery.job.attempts)
        return 500

    deadline = time.monotonic() + 30
    while not notes and time.monotonic() < deadline:
        push.push(handler)
    assert attempts == [1, 2, 3, 4]
    assert notes == ["dead-lettered: max attempts (4) exceeded"]
    [letter] = queue.dead_letters()
    assert (letter.id, letter.attempts) == (job_id, 4)


@pytest.mark.parametrize(
    "body",
    [None, [], {"message": "x"}, {"subscription": "s"}, "text"],
)
def test_what_is_not_a_push_envelope_is_nacked(
    make_queue: Callable[..., PubSubQueue], body: object
) -> None:
    delivery = make_queue().accept_push(body)
    assert (delivery.job, delivery.ack) == (None, False)


def test_undecodable_data_is_dead_lettered_not_redelivered(
    make_queue: Callable[..., PubSubQueue],
) -> None:
    queue = make_queue()
    envelope = {"message": {"data": "%%% not base64", "messageId": "m-1"}, "deliveryAttempt": 1}
    assert queue.accept_push(envelope) == PushDelivery(
        None, note="dead-lettered: data is not base64"
    )
    not_json = {"message": {"data": "bm90IGpzb24=", "messageId": "m-2"}, "deliveryAttempt": 1}
    assert queue.accept_push(not_json).note == "dead-lettered: not a JSON object"
    reasons = sorted(d.reason for d in queue.dead_letters())
    assert reasons == ["malformed job: not a JSON object", "malformed push: data is not base64"]


def test_push_options_come_from_the_queue_url() -> None:
    queue = PubSubQueue.from_url("pubsub://p-1/work?max_deliveries=7&retention=3600")
    assert (queue.max_deliveries, queue.retention_s) == (7, 3600.0)
    for bad in ("max_deliveries=4", "max_deliveries=101", "max_deliveries=x", "retention=0"):
        with pytest.raises(ConfigError):
            PubSubQueue.from_url(f"pubsub://p-1/work?{bad}")
