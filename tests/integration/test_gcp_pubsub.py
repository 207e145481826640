"""PubSubQueue specifics beyond the Queue contract, on the Pub/Sub emulator."""

from __future__ import annotations

import contextlib
import json
import pickle
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.pubsub_v1 import PubsubMessage

import agentfn.adapters.gcp.pubsub as pubsub_module
from agentfn.adapters.gcp.pubsub import NATIVE_COUNT, PubSubQueue
from agentfn.errors import ConfigError, UserError
from agentfn.ports import QueueMessage
from tests.support.emulators.gcp import PROJECT, ensure_pubsub


@pytest.fixture
def make_queue() -> Iterator[Callable[..., PubSubQueue]]:
    """``make_queue(max_attempts=5, **options)``: topics and subscriptions made fresh."""
    ensure_pubsub()
    made: list[PubSubQueue] = []

    def make(max_attempts: int = 5, **options: Any) -> PubSubQueue:
        queue = PubSubQueue.create(
            PROJECT, f"u-{uuid.uuid4().hex[:16]}", max_attempts=max_attempts, **options
        )
        made.append(queue)
        return queue

    yield make
    for queue in made:
        sub, pub = queue._sub(), queue._pub()
        for name in (queue.subscription, queue.dead_letter_subscription):
            with contextlib.suppress(gexc.NotFound):
                sub.delete_subscription(subscription=f"projects/{PROJECT}/subscriptions/{name}")
        for name in (queue.topic, queue.dead_letter_topic):
            with contextlib.suppress(gexc.NotFound):
                pub.delete_topic(topic=f"projects/{PROJECT}/topics/{name}")


def wait_for(fetch: Callable[[], list[Any]], timeout_s: float = 10.0) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = fetch()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"nothing arrived within {timeout_s}s")


def publish_raw(queue: PubSubQueue, data: bytes, **attributes: str) -> None:
    queue._pub().publish(
        topic=queue._topic_path, messages=[PubsubMessage(data=data, attributes=attributes)]
    )


# --------------------------------------------------------------------------- configuration


def test_from_url_defaults_and_options() -> None:
    q = PubSubQueue.from_url("pubsub://my-project/work", max_attempts=7)
    assert (q.project, q.topic, q.subscription) == ("my-project", "work", "work-agentfn")
    assert (q.dead_letter_topic, q.dead_letter_subscription) == (
        "work-dead-letter",
        "work-dead-letter",
    )
    assert (q.max_attempts, q.wait_s) == (7, 0.0)
    q = PubSubQueue.from_url(
        "pubsub://my-project/stack-work?subscription=workers&dead_letter=stack-dead-letter"
        "&dead_letter_subscription=dl-reader&wait=2.5"
    )
    assert (q.subscription, q.dead_letter_topic, q.dead_letter_subscription, q.wait_s) == (
        "workers",
        "stack-dead-letter",
        "dl-reader",
        2.5,
    )
    assert "stack-work" in repr(q) and "workers" in repr(q)


@pytest.mark.parametrize(
    "url",
    [
        "sqs://p/t",
        "pubsub://p",
        "pubsub://p/",
        "pubsub:///topic",
        "pubsub://p/t/extra",
        "pubsub://p/t?colour=blue",
        "pubsub://p/t?subscription=",
        "pubsub://p/t?subscription=a&subscription=b",
        "pubsub://p/t?wait=-1",
        "pubsub://p/t?wait=soon",
        "pubsub://p/goog-topic",
        "pubsub://p/ab",
        "pubsub://p/1topic",
        "pubsub://Bad_Project/topic",
        "pubsub://p/t#frag",
    ],
)
def test_bad_urls_name_the_url(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        PubSubQueue.from_url(url)
    assert info.value.field == "url"


def test_constructor_validation() -> None:
    with pytest.raises(UserError) as info:
        PubSubQueue("p-1", "topic", max_attempts=0)
    assert info.value.field == "max_attempts"
    with pytest.raises(ConfigError) as info:
        PubSubQueue("p-1", "t" * 250)  # the derived subscription name would be too long
    assert info.value.field == "subscription"
    with pytest.raises(UserError) as info:
        PubSubQueue("p-1", "topic", wait_s=-1)
    assert info.value.field == "wait_s"


def test_create_sets_exactly_once_and_a_clamped_dead_letter_policy(
    make_queue: Callable[..., PubSubQueue],
) -> None:
    for max_attempts, native in [(2, 5), (10, 11), (500, 100)]:
        q = make_queue(max_attempts=max_attempts)
        sub = q._sub().get_subscription(subscription=q._sub_path)
        assert sub.enable_exactly_once_delivery
        assert sub.dead_letter_policy.max_delivery_attempts == native
        assert sub.dead_letter_policy.dead_letter_topic == q._dead_topic_path
        assert sub.ack_deadline_seconds == 30
    # Idempotent: existing resources are kept.
    again = PubSubQueue.create(PROJECT, q.topic, max_attempts=3)
    assert again._sub().get_subscription(subscription=q._sub_path).dead_letter_policy


def test_missing_resources_are_config_errors() -> None:
    ensure_pubsub()
    q = PubSubQueue(PROJECT, f"never-{uuid.uuid4().hex[:8]}")
    with pytest.raises(ConfigError, match="does not exist"):
        q.send({"x": 1})
    with pytest.raises(ConfigError, match="does not exist"):
        q.receive(1)


def test_pickles_without_clients(make_queue: Callable[..., PubSubQueue]) -> None:
    q = make_queue()
    q.send({"x": 1})
    clone = pickle.loads(pickle.dumps(q))
    [m] = clone.receive(1)
    assert m.body == {"x": 1}
    clone.ack(m)


# --------------------------------------------------------------------------- delays and retries


def test_early_deliveries_of_a_delayed_job_never_count(
    make_queue: Callable[..., PubSubQueue], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cap push-backs at 1 s so a 4 s delay is pulled early several times, enough to also
    # exercise the refresh that keeps early deliveries below the dead-letter policy.
    monkeypatch.setattr(pubsub_module, "MAX_DEADLINE_S", 1)
    q = make_queue(max_attempts=1)
    msg_id = q.send({"late": True}, delay=4)
    started = time.monotonic()
    got: list[QueueMessage] = []
    while not got and time.monotonic() - started < 15:
        got = q.receive(1, visibility_timeout=30)
        time.sleep(0.25)
    assert time.monotonic() - started >= 3.9
    [m] = got
    assert (m.id, m.attempts, m.body) == (msg_id, 1, {"late": True})  # max_attempts=1 kept it
    q.ack(m)
    assert q.dead_letters() == []


def test_retry_longer_than_an_ack_deadline_republishes_and_keeps_counting(
    make_queue: Callable[..., PubSubQueue], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pubsub_module, "MAX_DEADLINE_S", 1)
    q = make_queue()
    msg_id = q.send({"x": 1}, priority=3)
    [first] = q.receive(1, visibility_timeout=30)
    q.retry(first, delay=2.5)
    assert q.receive(1, visibility_timeout=30) == []
    [again] = wait_for(lambda: q.receive(1, visibility_timeout=30))
    assert (again.id, again.attempts, again.priority, again.body) == (msg_id, 2, 3, {"x": 1})
    q.ack(first)  # stale: the copy is a new delivery
    q.ack(again)
    assert q.receive(1, visibility_timeout=30) == []


def test_retry_and_ack_with_a_stale_receipt_after_redelivery(
    make_queue: Callable[..., PubSubQueue],
) -> None:
    q = make_queue()
    q.send({"x": 1})
    [first] = q.receive(1, visibility_timeout=1)
    [second] = wait_for(lambda: q.receive(1, visibility_timeout=30))
    q.dead_letter(first, "too late")  # our lease is gone: nothing happens
    q.retry(first, delay=0)
    assert q.receive(1, visibility_timeout=30) == []
    assert q.dead_letters() == []
    q.ack(second)


# --------------------------------------------------------------------------- dead letters


def test_native_dead_letter_policy_is_reported_with_its_count(
    make_queue: Callable[..., PubSubQueue],
) -> None:
    # The subscription's policy (5 deliveries) is stricter than this adapter's max_attempts:
    # Pub/Sub forwards the job itself and dead_letters() explains what happened.
    q = make_queue(max_attempts=4)
    lenient = PubSubQueue(PROJECT, q.topic, max_attempts=50)
    msg_id = lenient.send({"poison": 1})
    for attempt in range(1, 6):
        [m] = wait_for(lambda: lenient.receive(1, visibility_timeout=30))
        assert m.attempts == attempt
        lenient.retry(m)
    # The emulator forwards when the subscription is next pulled (Pub/Sub does it by itself).
    assert lenient.receive(1, visibility_timeout=30) == []
    [dead] = wait_for(lenient.dead_letters)
    assert (dead.id, dead.body, dead.attempts) == (msg_id, {"poison": 1}, 5)
    assert "Pub/Sub dead-letter policy" in dead.reason and "5" in dead.reason


def test_dead_letters_are_peeked_not_consumed(make_queue: Callable[..., PubSubQueue]) -> None:
    q = make_queue()
    ids = [q.send({"n": i}) for i in range(3)]
    for _ in ids:
        [m] = q.receive(1, visibility_timeout=30)
        q.dead_letter(m, f"bad {m.body['n']}")
        time.sleep(0.01)
    first = q.dead_letters()
    assert [d.id for d in first] == ids[::-1]
    assert [d.reason for d in first] == ["bad 2", "bad 1", "bad 0"]
    assert [d.id for d in q.dead_letters()] == ids[::-1]  # still there
    assert [d.id for d in q.dead_letters(limit=2)] == ids[:0:-1]
    with pytest.raises(UserError):
        q.dead_letters(limit=0)


def test_trigger_delivered_jobs_are_dead_lettered_without_a_receipt(
    make_queue: Callable[..., PubSubQueue],
) -> None:
    # A push subscription delivers the message; the worker's 2xx acks it, so the adapter
    # only publishes: ack has nothing to do, retry re-publishes a copy due after the delay
    # carrying the attempts made, dead_letter publishes the dead letter.
    q = make_queue()
    pushed = QueueMessage(id="push-1", body={"run": "r", "step": "s"}, attempts=3, receipt="")
    q.ack(pushed)
    before = time.time()
    q.retry(pushed, delay=5)
    [copy] = wait_for(lambda: list(q._pull(q._sub_path, 10)))
    attributes = dict(copy.message.attributes)
    assert (attributes["agentfn_id"], attributes["agentfn_attempts_before"]) == ("push-1", "3")
    assert before + 5 <= float(attributes["agentfn_not_before"]) <= time.time() + 5
    q._settle(q._sub_path, [copy.ack_id], None)
    q.dead_letter(pushed, "step failed 3 times")
    [dead] = q.dead_letters()
    assert (dead.id, dead.body, dead.attempts, dead.reason) == (
        "push-1",
        {"run": "r", "step": "s"},
        3,
        "step failed 3 times",
    )


def test_malformed_messages_go_to_the_dead_letters(make_queue: Callable[..., PubSubQueue]) -> None:
    q = make_queue()
    publish_raw(q, b"not json")
    publish_raw(q, b"[1, 2]")
    good = q.send({"ok": True})
    assert [m.id for m in q.receive(5, visibility_timeout=30)] == [good]
    dead = q.dead_letters()
    assert sorted(json.dumps(d.body) for d in dead) == [
        json.dumps({"raw": "not json"}),
        json.dumps({"raw": [1, 2]}),
    ]
    assert all(d.reason == "malformed job: not a JSON object" for d in dead)


def test_long_reasons_are_clipped_to_an_attribute(make_queue: Callable[..., PubSubQueue]) -> None:
    q = make_queue()
    q.send({"x": 1})
    [m] = q.receive(1, visibility_timeout=30)
    q.dead_letter(m, "é" * 2000)
    [dead] = q.dead_letters()
    assert len(dead.reason.encode()) <= 1024 and dead.reason.endswith("...")


def test_published_by_someone_else_without_our_attributes(
    make_queue: Callable[..., PubSubQueue],
) -> None:
    q = make_queue(max_attempts=1)
    publish_raw(q, b'{"from": "gcloud"}')
    [m] = q.receive(1, visibility_timeout=1)
    assert (m.body, m.attempts, m.priority) == ({"from": "gcloud"}, 1, 0)
    assert m.id  # the Pub/Sub message id stands in
    # Not acked: its next delivery exceeds max_attempts=1 and it is dead-lettered.
    time.sleep(1.5)
    assert q.receive(1, visibility_timeout=30) == []
    [dead] = q.dead_letters()
    assert (dead.id, dead.attempts, dead.reason) == (m.id, 1, "max attempts (1) exceeded")


# --------------------------------------------------------------------------- receiving


def test_priority_orders_each_pulled_batch(make_queue: Callable[..., PubSubQueue]) -> None:
    q = make_queue()
    for name, priority in [("a", 0), ("b", 5), ("c", -1), ("d", 5)]:
        q.send({"n": name}, priority=priority)
    got = q.receive(10, visibility_timeout=30)
    assert [m.body["n"] for m in got] == ["b", "d", "a", "c"]


def test_wait_s_long_polls(make_queue: Callable[..., PubSubQueue]) -> None:
    q = make_queue()
    waiting = PubSubQueue(PROJECT, q.topic, wait_s=0.5)
    started = time.monotonic()
    assert waiting.receive(1) == []  # at the latest after wait_s (the emulator answers sooner)
    assert time.monotonic() - started < 5
    msg_id = q.send({"x": 1})
    assert [m.id for m in waiting.receive(1)] == [msg_id]


def test_visibility_timeouts_round_up_to_whole_seconds(
    make_queue: Callable[..., PubSubQueue],
) -> None:
    q = make_queue()
    q.send({"x": 1})
    [_] = q.receive(1, visibility_timeout=0.2)  # an ack deadline of 1 s
    assert q.receive(1, visibility_timeout=30) == []
    [again] = wait_for(lambda: q.receive(1, visibility_timeout=30), timeout_s=5)
    assert again.attempts == 2
    q.ack(again)


def test_subscription_without_dead_letter_policy_still_works(
    make_queue: Callable[..., PubSubQueue],
) -> None:
    # Pub/Sub reports delivery_attempt only with a dead-letter policy: without one every
    # delivery counts as the first (documented), the rest of the queue works as usual.
    q = make_queue()
    plain = f"{q.topic}-plain"
    q._sub().create_subscription(
        name=f"projects/{PROJECT}/subscriptions/{plain}", topic=q._topic_path
    )
    reader = PubSubQueue(PROJECT, q.topic, plain)
    try:
        q.send({"x": 1})
        [m] = reader.receive(1, visibility_timeout=1)
        [again] = wait_for(lambda: reader.receive(1, visibility_timeout=30))
        assert (m.attempts, again.attempts) == (1, 1)
        reader.ack(again)
    finally:
        q._sub().delete_subscription(subscription=f"projects/{PROJECT}/subscriptions/{plain}")


def test_native_count_attribute_name() -> None:
    assert NATIVE_COUNT == "CloudPubSubDeadLetterSourceDeliveryCount"
