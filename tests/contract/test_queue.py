"""Queue contract: at-least-once delivery, priorities, visibility, retries, dead letters.

``queue_factory`` (see conftest) builds queues with a fake clock when the adapter accepts one;
``advance`` otherwise sleeps for real. Durations are multiples of the backend's time unit
(``queue_factory.unit``: 0.1 s locally, 1 s on clouds whose APIs count whole seconds).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from agentfn.adapters.local import SqliteQueue
from agentfn.errors import UserError
from agentfn.ports import Queue, QueueMessage


def _drain(queue: Queue, batch: int = 10) -> list[QueueMessage]:
    out: list[QueueMessage] = []
    while messages := queue.receive(batch, visibility_timeout=30):
        out.extend(messages)
    return out


def test_satisfies_protocol(queue: Queue) -> None:
    assert isinstance(queue, Queue)
    assert queue.max_attempts >= 1


def test_send_receive_ack(queue_factory: Any) -> None:
    q = queue_factory.make()
    msg_id = q.send({"run": "r1", "step": 2, "nested": {"x": [1, None, "ü"]}})
    assert isinstance(msg_id, str) and msg_id
    [msg] = q.receive(1, visibility_timeout=2 * queue_factory.unit)
    assert (msg.id, msg.attempts, msg.priority) == (msg_id, 1, 0)
    assert msg.body == {"run": "r1", "step": 2, "nested": {"x": [1, None, "ü"]}}
    assert q.receive(1, visibility_timeout=2 * queue_factory.unit) == []  # hidden while in flight
    q.ack(msg)
    queue_factory.advance(3 * queue_factory.unit)
    assert q.receive(1, visibility_timeout=2 * queue_factory.unit) == []  # acked: never comes back


def test_receive_respects_max_messages(queue: Queue) -> None:
    ids = [queue.send({"i": i}) for i in range(5)]
    first = queue.receive(3, visibility_timeout=30)
    rest = queue.receive(10, visibility_timeout=30)
    assert len(first) == 3
    assert [m.id for m in first + rest] == ids
    assert queue.receive(10, visibility_timeout=30) == []


def test_priority_then_fifo(queue_factory: Any) -> None:
    queue = queue_factory.make()
    sent = [
        (queue.send({"n": "a"}), 0),
        (queue.send({"n": "b"}, priority=5), 5),
        (queue.send({"n": "c"}), 0),
        (queue.send({"n": "d"}, priority=5), 5),
        (queue.send({"n": "e"}, priority=-1), -1),
        (queue.send({"n": "f"}, priority=9), 9),
    ]
    got = [queue.receive(1, visibility_timeout=30)[0] for _ in range(3)]
    got += queue.receive(10, visibility_timeout=30)
    if queue_factory.priority:
        assert [m.body["n"] for m in got] == ["f", "b", "d", "a", "c", "e"]
        assert [m.priority for m in got] == [9, 5, 5, 0, 0, -1]
    else:
        # The service has no priorities (harness.py `priority`): each job still arrives once
        # and carries the priority it was sent with; only the order is not promised.
        pairs = sorted((m.body["n"], m.priority) for m in got)
        assert pairs == [("a", 0), ("b", 5), ("c", 0), ("d", 5), ("e", -1), ("f", 9)]
    assert {m.id for m in got} == {i for i, _ in sent}


def test_delay_hides_job_until_due(queue_factory: Any) -> None:
    q = queue_factory.make()
    later = q.send({"when": "later"}, delay=3 * queue_factory.unit)
    now = q.send({"when": "now"})
    assert [m.id for m in q.receive(10, visibility_timeout=30)] == [now]
    queue_factory.advance(4 * queue_factory.unit)
    assert [m.id for m in q.receive(10, visibility_timeout=30)] == [later]


def test_delayed_high_priority_does_not_block_visible_jobs(queue_factory: Any) -> None:
    q = queue_factory.make()
    q.send({"n": "hi"}, delay=3 * queue_factory.unit, priority=10)
    low = q.send({"n": "lo"})
    assert [m.id for m in q.receive(1, visibility_timeout=30)] == [low]


def test_visibility_timeout_redelivers_with_attempts(queue_factory: Any) -> None:
    q = queue_factory.make()
    msg_id = q.send({"x": 1})
    [first] = q.receive(1, visibility_timeout=2 * queue_factory.unit)
    assert q.receive(1, visibility_timeout=2 * queue_factory.unit) == []
    queue_factory.advance(3 * queue_factory.unit)
    [second] = q.receive(1, visibility_timeout=2 * queue_factory.unit)
    assert (second.id, second.attempts) == (msg_id, 2)
    assert second.receipt != first.receipt
    assert second.body == {"x": 1}


def test_stale_receipt_ack_is_a_noop(queue_factory: Any) -> None:
    q = queue_factory.make()
    msg_id = q.send({"x": 1})
    [first] = q.receive(1, visibility_timeout=2 * queue_factory.unit)
    queue_factory.advance(3 * queue_factory.unit)
    [second] = q.receive(1, visibility_timeout=2 * queue_factory.unit)
    q.ack(first)  # the slow first worker finally finishes: must not delete the new delivery
    queue_factory.advance(3 * queue_factory.unit)
    [third] = q.receive(1, visibility_timeout=30)
    assert (third.id, third.attempts) == (msg_id, 3)
    q.ack(second)  # also stale now
    q.ack(third)
    assert _drain(q) == []


def test_retry_with_delay(queue_factory: Any) -> None:
    q = queue_factory.make()
    msg_id = q.send({"x": 1})
    [msg] = q.receive(1, visibility_timeout=30)
    q.retry(msg, delay=2 * queue_factory.unit)
    assert q.receive(1, visibility_timeout=30) == []
    queue_factory.advance(3 * queue_factory.unit)
    [again] = q.receive(1, visibility_timeout=30)
    assert (again.id, again.attempts) == (msg_id, 2)
    q.retry(again)  # no delay: visible at once
    [third] = q.receive(1, visibility_timeout=30)
    assert (third.id, third.attempts) == (msg_id, 3)


def test_retry_with_stale_receipt_is_a_noop(queue_factory: Any) -> None:
    q = queue_factory.make()
    q.send({"x": 1})
    [first] = q.receive(1, visibility_timeout=2 * queue_factory.unit)
    queue_factory.advance(3 * queue_factory.unit)
    [second] = q.receive(1, visibility_timeout=30)
    q.retry(first)  # must not un-hide the job another worker now holds
    assert q.receive(1, visibility_timeout=30) == []
    q.ack(second)


def test_dead_letter_after_max_attempts(queue_factory: Any) -> None:
    q = queue_factory.make(fresh=True, max_attempts=2)
    assert q.max_attempts == 2
    msg_id = q.send({"poison": True})
    other = q.send({"fine": True}, priority=-1)
    for attempt in (1, 2):
        got = q.receive(1, visibility_timeout=2 * queue_factory.unit)
        assert [(m.id, m.attempts) for m in got] == [(msg_id, attempt)]
        queue_factory.advance(3 * queue_factory.unit)
    # Third time around the poison job goes to the DLQ and the next job is returned instead.
    assert [m.id for m in q.receive(1, visibility_timeout=2 * queue_factory.unit)] == [other]
    [dead] = q.dead_letters()
    assert (dead.id, dead.body, dead.attempts) == (msg_id, {"poison": True}, 2)
    assert "max attempts (2) exceeded" in dead.reason
    assert isinstance(dead.failed_at, float)
    queue_factory.advance(3 * queue_factory.unit)  # past every hiding
    assert msg_id not in [m.id for m in _drain(q)]


def test_extend_keeps_a_received_job_hidden_longer(queue_factory: Any) -> None:
    """A long step renews its message's visibility; the (possibly new) receipt still acks."""
    unit = queue_factory.unit
    q = queue_factory.make(fresh=True)
    job = q.send({"long": True})
    [m] = q.receive(1, visibility_timeout=2 * unit)
    q.extend(m, visibility_timeout=6 * unit)
    queue_factory.advance(3 * unit)  # past the first hiding, inside the extension
    assert q.receive(1, visibility_timeout=2 * unit) == []
    q.ack(m)
    queue_factory.advance(4 * unit)  # past the extension: an acked job stays gone
    assert job not in [r.id for r in _drain(q)]


def test_extend_with_a_stale_receipt_is_a_noop(queue_factory: Any) -> None:
    unit = queue_factory.unit
    q = queue_factory.make(fresh=True)
    job = q.send({"n": 1})
    [first] = q.receive(1, visibility_timeout=unit)
    queue_factory.advance(2 * unit)
    [second] = q.receive(1, visibility_timeout=2 * unit)
    assert second.id == first.id == job
    q.extend(first, visibility_timeout=20 * unit)  # not ours any more: changes nothing
    queue_factory.advance(3 * unit)
    assert [r.id for r in q.receive(1, visibility_timeout=2 * unit)] == [job]


def test_explicit_dead_letter(queue_factory: Any) -> None:
    q = queue_factory.make(fresh=True)
    a = q.send({"n": "a"})
    b = q.send({"n": "b"})
    [ma] = q.receive(1, visibility_timeout=2 * queue_factory.unit)
    q.dead_letter(ma, "bad input: missing field x")
    [mb] = q.receive(1, visibility_timeout=2 * queue_factory.unit)
    queue_factory.advance(3 * queue_factory.unit)
    [mb2] = q.receive(1, visibility_timeout=2 * queue_factory.unit)
    q.dead_letter(mb, "stale receipt: ignored")
    q.dead_letter(mb2, "second")
    dead = q.dead_letters()
    assert [d.id for d in dead] == [b, a]  # newest first
    assert [d.reason for d in dead] == ["second", "bad input: missing field x"]
    assert (dead[0].attempts, dead[1].attempts) == (2, 1)
    assert dead[1].body == {"n": "a"}
    assert [d.id for d in q.dead_letters(limit=1)] == [b]
    queue_factory.advance(3 * queue_factory.unit)  # past every hiding
    assert _drain(q) == []


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda q: q.send(["not", "a", "dict"]), "body"),
        (lambda q: q.send("text"), "body"),
        (lambda q: q.send({"x": object()}), "body"),
        (lambda q: q.send({}, delay=-1), "delay"),
        (lambda q: q.receive(0), "max_messages"),
        (lambda q: q.receive(101), "max_messages"),
        (lambda q: q.receive(1, visibility_timeout=0), "visibility_timeout"),
        (lambda q: q.receive(1, visibility_timeout=-5), "visibility_timeout"),
    ],
)
def test_invalid_arguments(queue: Queue, call: Callable[[Queue], Any], field: str) -> None:
    with pytest.raises(UserError) as info:
        call(queue)
    assert info.value.field == field


def test_concurrent_consumers_never_share_a_hidden_job(
    queue: Queue,
    queue_spec: tuple[str, dict[str, Any]],
    run_workers: Callable[..., list[Any]],
) -> None:
    ids = [queue.send({"i": i}, priority=i % 3) for i in range(200)]
    got_a, got_b = run_workers("queue_consume_worker", [[queue_spec, 3, 60], [queue_spec, 3, 60]])
    assert not set(got_a) & set(got_b)
    assert len(got_a) == len(set(got_a)) and len(got_b) == len(set(got_b))
    assert sorted(got_a + got_b) == sorted(ids)
    assert got_a and got_b, "both consumers should have taken part"
    assert queue.receive(10, visibility_timeout=30) == []


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    jobs=st.lists(
        st.tuples(st.integers(-3, 3), st.sampled_from([0.0, 0.5, 2.0])), min_size=0, max_size=30
    ),
    batches=st.lists(st.integers(1, 7), min_size=1, max_size=5),
)
def test_property_each_job_once_in_priority_order(
    queue_factory: Any, jobs: list[tuple[int, float]], batches: list[int]
) -> None:
    q = queue_factory.make(fresh=True)
    sent = []
    for index, (priority, delay) in enumerate(jobs):
        delay = delay if queue_factory.fake_clock else 0.0
        sent.append((priority, index, q.send({"i": index}, priority=priority, delay=delay)))
    queue_factory.advance(5 if queue_factory.fake_clock else 0)
    received: list[QueueMessage] = []
    turn = 0
    while messages := q.receive(batches[turn % len(batches)], visibility_timeout=60):
        turn += 1
        received.extend(messages)
        for m in messages:
            q.ack(m)
    if queue_factory.priority:
        want = [i for _, _, i in sorted(sent, key=lambda s: (-s[0], s[1]))]
        assert [m.id for m in received] == want
        assert all(a.priority >= b.priority for a, b in itertools.pairwise(received))
    else:
        # No priorities on this service (harness.py `priority`): each job exactly once, with
        # its priority carried; the order is not promised.
        assert sorted(m.id for m in received) == sorted(i for _, _, i in sent)
        assert len(received) == len(sent)
        assert {m.id: m.priority for m in received} == {i: p for p, _, i in sent}
    assert all(m.attempts == 1 for m in received)


# --------------------------------------------------------------------------- local only


def test_local_depth_purge_and_pickle(tmp_path: Path) -> None:
    q = SqliteQueue(tmp_path / "q.db", name="a")
    other = SqliteQueue(tmp_path / "q.db", name="b")
    q.send({"x": 1})
    q.send({"x": 2}, delay=100)
    other.send({"y": 1})
    [m] = q.receive(1, visibility_timeout=30)
    assert q.depth() == 2  # in-flight and delayed jobs count
    q.dead_letter(m, "nope")
    assert (q.depth(), other.depth(), other.dead_letters()) == (1, 1, [])
    clone = pickle.loads(pickle.dumps(q))
    assert (clone.depth(), clone.name, clone.max_attempts) == (1, "a", 5)
    q.purge()
    assert (q.depth(), other.depth(), len(q.dead_letters())) == (0, 1, 1)
    q.purge(dead_letters=True)
    assert q.dead_letters() == []
    q.close()
    assert q.depth() == 0  # reconnects after close


def _send_fifty(path: str, go: Any) -> None:
    go.wait()
    q = SqliteQueue(path)
    for i in range(50):
        q.send({"i": i})


def test_local_fresh_database_opened_by_racing_processes(tmp_path: Path) -> None:
    # Switching a new file to WAL can fail with "database is locked" without waiting.
    ctx = multiprocessing.get_context("fork")
    for trial in range(10):
        path = str(tmp_path / f"fresh-{trial}.db")
        go = ctx.Event()
        procs = [ctx.Process(target=_send_fifty, args=(path, go)) for _ in range(6)]
        for p in procs:
            p.start()
        go.set()
        for p in procs:
            p.join(30)
        assert [p.exitcode for p in procs] == [0] * 6
        assert SqliteQueue(path).depth() == 300


def test_local_queue_survives_fork(tmp_path: Path) -> None:
    q = SqliteQueue(tmp_path / "q.db")
    q.send({"from": "parent"})
    pid = os.fork()
    if pid == 0:  # child: reuse the inherited object, which must reconnect
        code = 1
        try:
            [m] = q.receive(1, visibility_timeout=30)
            q.ack(m)
            q.send({"from": "child"})
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [m.body for m in q.receive(10, visibility_timeout=30)] == [{"from": "child"}]


def test_local_validation(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        SqliteQueue(tmp_path / "q.db", max_attempts=0)
    assert info.value.field == "max_attempts"
    q = SqliteQueue(tmp_path / "q.db")
    with pytest.raises(UserError) as info:
        q.send({}, priority=1.5)  # type: ignore[arg-type]
    assert info.value.field == "priority"
    [m] = [QueueMessage(id="x", body={}, attempts=1, receipt="r")]
    with pytest.raises(UserError) as info:
        q.retry(m, delay=-1)
    assert info.value.field == "delay"
