"""SqsQueue specifics on moto's server: redrive, long delays, receipts, URLs."""

from __future__ import annotations

import contextlib
import json
import pickle
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from agentfn.adapters.aws.sqs import A_DUE, A_ID, SqsQueue
from agentfn.errors import ConfigError, UserError
from agentfn.ports import QueueMessage
from tests.support.emulators.aws import ensure_moto


@pytest.fixture
def name() -> Iterator[str]:
    ensure_moto()
    queue = f"unit-{uuid.uuid4().hex[:12]}"
    yield queue
    sqs = boto3.client("sqs")
    for q in (queue, f"{queue}-dlq", f"{queue}-other"):
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=q)["QueueUrl"])


def _counts(queue: SqsQueue) -> dict[str, int]:
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue._resolve().url, AttributeNames=["All"]
    )["Attributes"]
    return {k: int(v) for k, v in attrs.items() if k.startswith("ApproximateNumberOf")}


def test_create_sets_a_redrive_policy_and_url_finds_the_dlq(name: str) -> None:
    SqsQueue.create(name, max_attempts=3)
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    assert int(policy["maxReceiveCount"]) == 3
    assert policy["deadLetterTargetArn"].endswith(f":{name}-dlq")
    SqsQueue.create(name, max_attempts=4)  # again: reused, policy updated
    q = SqsQueue.from_url(f"sqs://{name}", max_attempts=4)
    assert q._resolve().dlq_url == sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
    assert q._resolve().max_receive_count == 4


def test_sqs_redrive_shows_in_dead_letters_and_stays_put(name: str) -> None:
    q = SqsQueue.create(name, max_attempts=1)
    msg_id = q.send({"poison": 1}, priority=3)
    [m] = q.receive(1, visibility_timeout=1)
    assert (m.id, m.attempts, m.priority) == (msg_id, 1, 3)
    time.sleep(1.2)
    assert q.receive(1, visibility_timeout=30) == []  # moved by SQS itself, not by us
    [dead] = q.dead_letters()
    assert (dead.id, dead.body, dead.attempts) == (msg_id, {"poison": 1}, 1)
    assert dead.reason == "max attempts (1) exceeded"
    # Stamped once: a second look gives the same record, not a newer time.
    assert q.dead_letters() == [dead]


def test_receive_dead_letters_jobs_past_max_attempts_without_a_matching_policy(
    name: str,
) -> None:
    SqsQueue.create(name, max_attempts=5)  # SQS would redrive after 5 receives
    q = SqsQueue(name, max_attempts=1)
    msg_id = q.send({"x": 1})
    assert [m.id for m in q.receive(1, visibility_timeout=1)] == [msg_id]
    time.sleep(1.2)
    assert q.receive(1, visibility_timeout=30) == []
    [dead] = q.dead_letters()
    assert (dead.id, dead.attempts, dead.reason) == (msg_id, 1, "max attempts (1) exceeded")


def test_long_delay_is_capped_and_early_jobs_hop_until_due(name: str) -> None:
    q = SqsQueue.create(name)
    q.send({"later": True}, delay=3600)
    assert _counts(q)["ApproximateNumberOfMessagesDelayed"] == 1  # 900 s in SQS, due in 1 h
    # A job that surfaces before its due time (what a 900 s hop looks like) is re-sent.
    sqs = boto3.client("sqs")
    original = sqs.send_message(
        QueueUrl=q._resolve().url,
        MessageBody=json.dumps({"soon": True}),
        MessageAttributes={A_DUE: {"DataType": "Number", "StringValue": f"{time.time() + 2:.3f}"}},
    )["MessageId"]
    assert q.receive(10, visibility_timeout=30) == []
    time.sleep(3.1)
    [m] = q.receive(10, visibility_timeout=30)
    assert (m.id, m.body, m.attempts) == (original, {"soon": True}, 1)


def test_postpone_if_early_for_triggered_consumers(name: str) -> None:
    q = SqsQueue.create(name)
    q.send({"x": 1})
    [m] = q.receive(1, visibility_timeout=30)
    lambda_attrs = {A_DUE: {"stringValue": f"{time.time() + 60:.3f}", "dataType": "Number"}}
    assert q.postpone_if_early(m, lambda_attrs) is True
    assert q.postpone_if_early(m, {}) is False
    q.ack(m)
    assert _counts(q)["ApproximateNumberOfMessagesDelayed"] == 1
    raw = boto3.client("sqs").receive_message(
        QueueUrl=q._resolve().url, MessageAttributeNames=["All"], WaitTimeSeconds=0
    )
    assert raw.get("Messages", []) == []  # still delayed


def test_receipts_expire_with_their_visibility_timeout(name: str) -> None:
    now = [time.time()]
    q = SqsQueue.create(name, clock=lambda: now[0])
    q.send({"x": 1})
    [m] = q.receive(1, visibility_timeout=30)
    now[0] += 31  # past the lease, by our clock: the receipt is stale
    q.ack(m)
    q.retry(m)
    q.dead_letter(m, "late")
    assert _counts(q)["ApproximateNumberOfMessagesNotVisible"] == 1  # untouched
    assert q.dead_letters() == []
    # A bare ReceiptHandle (as a Lambda event carries) has no deadline of ours: it acts.
    bare = QueueMessage(id=m.id, body=m.body, attempts=1, receipt=m.receipt.split("|", 1)[1])
    q.ack(bare)
    assert _counts(q)["ApproximateNumberOfMessagesNotVisible"] == 0


def test_shared_dlq_lists_only_this_queues_dead_letters(name: str) -> None:
    a = SqsQueue.create(name)
    other = f"{name}-other"
    sqs = boto3.client("sqs")
    sqs.create_queue(QueueName=other)
    b = SqsQueue(other, dead_letter_queue=f"{name}-dlq")
    b.send({"from": "b"})
    [mb] = b.receive(1, visibility_timeout=30)
    b.dead_letter(mb, "b's")
    a.send({"from": "a"})
    [ma] = a.receive(1, visibility_timeout=30)
    a.dead_letter(ma, "a's")
    assert [d.reason for d in a.dead_letters()] == ["a's"]
    assert [d.reason for d in b.dead_letters()] == ["b's"]


def test_receive_batch_is_highest_priority_first(name: str) -> None:
    q = SqsQueue.create(name)
    for p in (0, 5, -1, 9):
        q.send({"p": p}, priority=p)
    got = q.receive(10, visibility_timeout=30)
    assert [m.priority for m in got] == [9, 5, 0, -1]


def test_malformed_bodies_are_wrapped_for_the_engine(name: str) -> None:
    q = SqsQueue.create(name)
    boto3.client("sqs").send_message(QueueUrl=q._resolve().url, MessageBody="not json")
    [m] = q.receive(1, visibility_timeout=30)
    assert m.body == {"raw": "not json"}


def test_pickle_rebuilds_the_client(name: str) -> None:
    q = pickle.loads(pickle.dumps(SqsQueue.create(name)))
    q.send({"x": 1})
    clone = pickle.loads(pickle.dumps(SqsQueue.from_url(f"sqs://{name}")))
    assert [m.body for m in clone.receive(1, visibility_timeout=30)] == [{"x": 1}]
    with pytest.raises(ConfigError):
        SqsQueue.create("x" * 77)


def test_missing_queue_and_missing_dlq_are_config_errors(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        SqsQueue(f"{name}-nope").send({})
    assert "does not exist" in str(info.value)
    boto3.client("sqs").create_queue(QueueName=f"{name}-other")
    q = SqsQueue(f"{name}-other")
    q.send({"x": 1})
    [m] = q.receive(1, visibility_timeout=30)
    with pytest.raises(ConfigError) as info:
        q.dead_letter(m, "nowhere to go")
    assert info.value.field == "dead_letter_queue"


@pytest.mark.parametrize(
    "url",
    [
        "sqs://",
        "sqs://a/b",
        "sqs://q?dlq=",
        "sqs://q?x=1",
        "sqs://q?wait=21",
        "sqs://q?wait=soon",
        "sqs://q.fifo",
        "sqs://bad name",
        "https://q",
        "sqs://q#frag",
    ],
)
def test_bad_urls(url: str) -> None:
    ensure_moto()
    with pytest.raises(ConfigError) as info:
        SqsQueue.from_url(url)
    assert info.value.field == "url"


def test_url_options() -> None:
    ensure_moto()
    q = SqsQueue.from_url("sqs://jobs?dlq=jobs-dead&wait=5", max_attempts=7)
    assert (q.queue, q.dead_letter_queue, q.wait_time_s, q.max_attempts) == (
        "jobs",
        "jobs-dead",
        5,
        7,
    )
    assert "jobs" in repr(q)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"max_attempts": 0}, "max_attempts"), ({"wait_time_s": 30}, "wait_time_s")],
)
def test_bad_settings(kwargs: dict[str, Any], field: str) -> None:
    ensure_moto()
    with pytest.raises(UserError) as info:
        SqsQueue("jobs", **kwargs)
    assert info.value.field == field


def test_hop_keeps_the_job_id(name: str) -> None:
    q = SqsQueue.create(name)
    sqs = boto3.client("sqs")
    sqs.send_message(
        QueueUrl=q._resolve().url,
        MessageBody="{}",
        MessageAttributes={
            A_DUE: {"DataType": "Number", "StringValue": f"{time.time() + 1:.3f}"},
            A_ID: {"DataType": "String", "StringValue": "job-42"},
        },
    )
    assert q.receive(1, visibility_timeout=30) == []
    time.sleep(2.1)
    assert [m.id for m in q.receive(1, visibility_timeout=30)] == ["job-42"]


class _NoDlqDelete:
    """A real client whose DeleteMessage on the dead-letter queue is denied (as for a role
    with only SendMessage/ReceiveMessage there); moto itself enforces no IAM."""

    def __init__(self, dlq_suffix: str) -> None:
        self._client = boto3.client("sqs")
        self._suffix = dlq_suffix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def delete_message(self, **kwargs: Any) -> Any:
        if kwargs["QueueUrl"].endswith(self._suffix):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DeleteMessage")
        return self._client.delete_message(**kwargs)


def test_dead_letters_without_delete_permission_on_the_dlq(name: str) -> None:
    SqsQueue.create(name, max_attempts=1)
    q = SqsQueue(name, max_attempts=1, client=_NoDlqDelete(f"/{name}-dlq"))
    msg_id = q.send({"x": 1})
    q.receive(1, visibility_timeout=1)
    time.sleep(1.2)
    assert q.receive(1, visibility_timeout=30) == []
    # The stamped copy is sent but the original cannot be deleted: still one dead letter.
    for _ in range(2):
        assert [d.id for d in q.dead_letters()] == [msg_id]
