"""AzureStorageQueue specifics beyond the contract suite, against Azurite."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator

import pytest

from agentfn.adapters.azure.storage_queue import AzureStorageQueue
from agentfn.errors import ConfigError, UserError
from agentfn.ports import QueueMessage
from tests.support.emulators.azure import ensure_azurite


@pytest.fixture
def queue() -> Iterator[AzureStorageQueue]:
    ensure_azurite()
    q = AzureStorageQueue.create(f"agentfn-unit-{uuid.uuid4().hex[:12]}", max_attempts=2)
    yield q
    q.delete_queues()


def raw_client(q: AzureStorageQueue, name: str | None = None):  # type: ignore[no-untyped-def]
    return q.service.get_queue_client(name or q.name)


def b64(data: object) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


# --------------------------------------------------------------------------- URLs


def test_from_url_with_a_connection_string() -> None:
    ensure_azurite()
    q = AzureStorageQueue.from_url("azqueue://work-queue", max_attempts=3)
    assert (q.name, q.poison_name, q.max_attempts) == ("work-queue", "work-queue-poison", 3)
    assert q.service.account_name == "devstoreaccount1"
    custom = AzureStorageQueue.from_url("azqueue://work-queue", poison_queue="graveyard")
    assert custom.poison_name == "graveyard"


def test_from_url_without_a_connection_string_names_the_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    q = AzureStorageQueue.from_url("azqueue://myaccount/work")
    assert q.service.url.startswith("https://myaccount.queue.core.windows.net")
    assert q.name == "work"
    with pytest.raises(ConfigError, match="no queue"):
        AzureStorageQueue.from_url("azqueue://myaccount")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://q.db", "not a azqueue:// URL"),
        ("azqueue://", "names no queue"),
        ("azqueue://Work", "invalid queue name"),
        ("azqueue://a--b", "invalid queue name"),
        ("azqueue://-ab", "invalid queue name"),
        ("azqueue://" + "q" * 57, "3-56"),  # leaves room for "-poison"
        ("azqueue://work/extra", "expected azqueue://"),
        ("azqueue://work?x=1", "only query parameter is priorities"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    ensure_azurite()
    with pytest.raises(ConfigError, match=message) as info:
        AzureStorageQueue.from_url(url)
    assert info.value.field == "url"


def test_bad_settings() -> None:
    ensure_azurite()
    with pytest.raises(UserError) as info:
        AzureStorageQueue("work", max_attempts=0)
    assert info.value.field == "max_attempts"
    with pytest.raises(ConfigError) as info:
        AzureStorageQueue("work", poison_queue="work")
    assert info.value.field == "poison_queue"
    with pytest.raises(ConfigError, match="unknown AzureStorageQueue options"):
        AzureStorageQueue.from_url("azqueue://work", visibility=3)


# --------------------------------------------------------------------------- layout


def test_messages_are_base64_json_for_the_functions_host(queue: AzureStorageQueue) -> None:
    msg_id = queue.send({"run": "r1", "text": "ü"})
    [raw] = raw_client(queue).peek_messages()
    assert raw.id == msg_id
    assert json.loads(base64.b64decode(raw.content)) == {"run": "r1", "text": "ü"}


def test_priorities_live_in_side_queues_found_by_other_instances(
    queue: AzureStorageQueue,
) -> None:
    queue.send({"n": "low"}, priority=-2)
    queue.send({"n": "base"})
    queue.send({"n": "high"}, priority=3)
    names = sorted(q.name for q in queue.service.list_queues(name_starts_with=queue.name))
    assert names == sorted(
        [queue.name, f"{queue.name}-p3", f"{queue.name}-pn2", f"{queue.name}-poison"]
    )
    other = AzureStorageQueue(queue.name)  # knows nothing yet: lists the side queues
    got = other.receive(10, visibility_timeout=30)
    assert [(m.body["n"], m.priority) for m in got] == [("high", 3), ("base", 0), ("low", -2)]
    assert [m.receipt.split("/", 1)[0] for m in got] == ["3", "0", "-2"]
    for m in got:
        other.ack(m)
    assert other.receive(10, visibility_timeout=30) == []


def test_receive_more_than_the_service_gives_per_call(queue: AzureStorageQueue) -> None:
    ids = [queue.send({"i": i}) for i in range(40)]
    got = queue.receive(100, visibility_timeout=30)
    assert [m.id for m in got] == ids


def test_delays_round_up_to_whole_seconds(queue: AzureStorageQueue) -> None:
    queue.send({"x": 1}, delay=0.2)
    assert queue.receive(1, visibility_timeout=30) == []  # hidden for a whole second
    time.sleep(1.5)
    [m] = queue.receive(1, visibility_timeout=0.1)  # also rounds up, to 1 s
    assert m.body == {"x": 1}
    assert queue.receive(1, visibility_timeout=30) == []


def test_an_undecodable_message_is_dead_lettered(queue: AzureStorageQueue) -> None:
    raw_client(queue).send_message("not base64 json!")
    raw_client(queue).send_message(base64.b64encode(b"[1, 2]").decode())
    ok = queue.send({"fine": True})
    assert [m.id for m in queue.receive(10, visibility_timeout=30)] == [ok]
    dead = queue.dead_letters()
    assert [d.body for d in dead] == [
        {"raw": base64.b64encode(b"[1, 2]").decode()},
        {"raw": "not base64 json!"},
    ]
    assert all(d.reason == "message is not base64 of a JSON object" for d in dead)
    assert all(d.attempts == 1 for d in dead)


def test_messages_moved_by_the_functions_host_are_listed(queue: AzureStorageQueue) -> None:
    # The host moves the original message as is after maxDequeueCount deliveries.
    poison = raw_client(queue, queue.poison_name)
    moved = poison.send_message(b64({"run": "r9"}))
    [dead] = queue.dead_letters()
    assert (dead.id, dead.body, dead.attempts) == (moved.id, {"run": "r9"}, queue.max_attempts)
    assert "Azure Functions host" in dead.reason
    assert dead.failed_at > 0


def test_dead_letter_keeps_the_reason_and_priority(queue: AzureStorageQueue) -> None:
    queue.send({"n": 1}, priority=4)
    [m] = queue.receive(1, visibility_timeout=30)
    queue.dead_letter(m, "x" * 5000)
    [dead] = queue.dead_letters()
    assert dead.reason == "x" * 1000  # reasons are capped so the envelope fits a message
    [raw] = raw_client(queue, queue.poison_name).peek_messages()
    envelope = json.loads(base64.b64decode(raw.content))
    assert (envelope["queue"], envelope["priority"]) == (queue.name, 4)
    assert queue.receive(1, visibility_timeout=30) == []


def test_dead_letters_are_newest_first_and_limited(queue: AzureStorageQueue) -> None:
    for i in range(4):
        queue.send({"i": i})
        [m] = queue.receive(1, visibility_timeout=30)
        queue.dead_letter(m, f"r{i}")
    assert [d.reason for d in queue.dead_letters()] == ["r3", "r2", "r1", "r0"]
    assert [d.reason for d in queue.dead_letters(limit=2)] == ["r3", "r2"]
    with pytest.raises(UserError) as info:
        queue.dead_letters(limit=0)
    assert info.value.field == "limit"


def test_foreign_receipts_are_ignored(queue: AzureStorageQueue) -> None:
    msg_id = queue.send({"x": 1})
    [m] = queue.receive(1, visibility_timeout=30)
    for receipt in ["", "no-slash", "x/abc", "7/", "99999999999999999999999999/abc"]:
        fake = QueueMessage(id=msg_id, body={}, attempts=1, receipt=receipt)
        queue.ack(fake)
        queue.retry(fake)
        queue.dead_letter(fake, "nope")
    assert queue.dead_letters() == []
    queue.ack(m)
    assert queue.receive(1, visibility_timeout=30) == []


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda q: q.send({"big": "x" * 46_100}), "body"),
        (lambda q: q.send({}, delay=float("inf")), "delay"),
        (lambda q: q.send({}, priority=2**70), "priority"),
        (lambda q: q.receive(1, visibility_timeout=8 * 24 * 3600), "visibility_timeout"),
    ],
)
def test_limits_of_the_service(queue: AzureStorageQueue, call, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError) as info:
        call(queue)
    assert info.value.field == field


def test_priority_must_fit_the_queue_name() -> None:
    ensure_azurite()
    q = AzureStorageQueue("q" * 56)
    with pytest.raises(UserError, match="longer than the 63 characters") as info:
        q.send({}, priority=100_000)
    assert info.value.field == "priority"


def test_missing_queue_is_a_config_error() -> None:
    ensure_azurite()
    q = AzureStorageQueue(f"agentfn-absent-{uuid.uuid4().hex[:8]}")
    for op in (lambda: q.send({}), lambda: q.receive(1), lambda: q.dead_letters()):
        with pytest.raises(ConfigError, match="does not exist") as info:
            op()
        assert info.value.field == "url"


def test_purge(queue: AzureStorageQueue) -> None:
    queue.send({"a": 1})
    queue.send({"b": 1}, priority=2)
    queue.send({"c": 1})
    [m] = queue.receive(1, visibility_timeout=30)
    queue.dead_letter(m, "gone")
    queue.purge()
    assert queue.receive(10, visibility_timeout=30) == []
    assert len(queue.dead_letters()) == 1
    queue.purge(dead_letters=True)
    assert queue.dead_letters() == []


def test_repr() -> None:
    ensure_azurite()
    assert repr(AzureStorageQueue("work", max_attempts=4)) == (
        "AzureStorageQueue(account='devstoreaccount1', name='work', "
        "poison_queue='work-poison', max_attempts=4)"
    )


# --------------------------------------------------------------------------- past 7 days


def _wrapped(q: AzureStorageQueue) -> list[dict[str, object]]:
    """Every message in the queue, visible or not, decoded (peek sees only visible ones, so
    the raw client waits for hidden ones instead)."""
    return [json.loads(base64.b64decode(m.content)) for m in raw_client(q).peek_messages(32)]


def test_a_delay_past_the_cap_hops_until_due_and_keeps_its_id() -> None:
    """Storage Queues hide a message for at most 7 days: a longer delay is sent for the longest
    hide with its due time, re-sent each time it surfaces early, handed out once due — with its
    id, and as its first delivery. (A 1 s cap and a fake clock stand in for the 7 days.)"""
    ensure_azurite()
    now = [1_000_000.0]
    q = AzureStorageQueue.create(
        f"agentfn-hop-{uuid.uuid4().hex[:10]}", clock=lambda: now[0], max_delay_s=1
    )
    try:
        job_id = q.send({"late": True}, delay=30 * 24 * 3600.0)  # a 30-day wait
        assert q.receive(10, visibility_timeout=30) == []  # hidden for the cap
        time.sleep(1.3)
        assert q.receive(10, visibility_timeout=30) == []  # surfaced early: hopped, not handed out
        time.sleep(1.3)
        [hop] = _wrapped(q)
        assert (hop["type"], hop["id"], hop["body"]) == ("agentfn.queued", job_id, {"late": True})
        assert hop["due"] == 1_000_000.0 + 30 * 24 * 3600
        now[0] += 30 * 24 * 3600  # the 30 days are over
        [m] = q.receive(10, visibility_timeout=30)
        assert (m.id, m.body, m.attempts) == (job_id, {"late": True}, 1)
        q.ack(m)
        time.sleep(1.3)
        assert _wrapped(q) == []  # the ack reached the service message behind the job id
    finally:
        q.delete_queues()


def test_the_trigger_path_hops_early_jobs_and_unwraps_due_ones() -> None:
    ensure_azurite()
    now = [5_000.0]
    q = AzureStorageQueue.create(
        f"agentfn-hopt-{uuid.uuid4().hex[:10]}", clock=lambda: now[0], max_delay_s=1
    )
    try:
        early = {"type": "agentfn.queued", "id": "job-1", "body": {"n": 1}, "due": 9_000.0,
                 "priority": 0}  # fmt: skip
        assert q.accept_triggered(early, msg_id="m1", attempts=3, pop_receipt="r") is None
        time.sleep(1.3)
        [resent] = _wrapped(q)  # re-sent for later: the host deletes the delivered one
        assert (resent["id"], resent["due"], resent["body"]) == ("job-1", 9_000.0, {"n": 1})
        now[0] = 9_000.0
        due = q.accept_triggered(early, msg_id="m2", attempts=1, pop_receipt="r2")
        assert due is not None and (due.id, due.body, due.attempts) == ("job-1", {"n": 1}, 1)
        plain = q.accept_triggered({"n": 2}, msg_id="m3", attempts=2, pop_receipt="r3")
        assert plain is not None and (plain.id, plain.body, plain.attempts) == ("m3", {"n": 2}, 2)
    finally:
        q.delete_queues()


# --------------------------------------------------------------------------- one queue


def test_priorities_in_the_message_use_only_the_queue_the_stack_has() -> None:
    """``?priorities=message`` (what the stack sets): no side queue is created or read; every
    job lands in the one queue the trigger listens to and carries its priority."""
    ensure_azurite()
    name = f"agentfn-one-{uuid.uuid4().hex[:10]}"
    AzureStorageQueue.create(name)
    q = AzureStorageQueue.from_url(f"azqueue://{name}?priorities=message")
    try:
        assert q.priorities == "message"
        sent = {q.send({"n": p}, priority=p): p for p in (10, 0, -10)}
        queues = {x.name for x in q.service.list_queues(name_starts_with=name)}
        assert queues == {name, f"{name}-poison"}
        got = q.receive(10, visibility_timeout=30)
        assert {m.id: m.priority for m in got} == sent
        assert sorted(m.body["n"] for m in got) == [-10, 0, 10]
        for m in got:
            q.ack(m)
        assert q.receive(10, visibility_timeout=1) == []
    finally:
        q.delete_queues()


def test_a_deployed_url_names_its_account_even_with_a_connection_string() -> None:
    """The stack sets ``azqueue://<account>/<queue>``; a connection string for that account
    (Azurite's, or keys instead of an identity) only changes how the account is reached."""
    ensure_azurite()
    q = AzureStorageQueue.from_url("azqueue://devstoreaccount1/work?priorities=message")
    assert (q.name, q.service.account_name, q.priorities) == ("work", "devstoreaccount1", "message")
