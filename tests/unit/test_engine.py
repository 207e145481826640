"""The durable step engine on the real local adapters (files + SQLite)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agentfn.errors import Conflict, UserError
from agentfn.events.cloudevents import job_of
from agentfn.runs import RunStatus, StepRecord
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import drain, ledger, make_engine, project, recorded

FAST_RETRY = "retry: {max_attempts: 3, backoff: {base_s: 0, max_s: 0, jitter: false}}"


def test_tool_chain_with_templates_and_output(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        inputs:
          a: {type: integer}
        nodes:
          - {id: first, type: tool, tool: add, args: {a: "{{ input.a }}", b: 2}}
          - {id: second, type: tool, tool: add, args: {a: "{{ steps.first.output }}", b: 10}}
        edges:
          - {from: first, to: second}
        output: "total={{ steps.second.output }}"
        """,
    )
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {"a": 5})
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed
    assert done.output == "total=17"
    assert done.steps_run == 2
    assert recorded(engine, run.id) == {"first", "second"} and not done.pending


def test_an_agent_turn_recorded_by_an_earlier_version_is_continued(tmp_path: Path) -> None:
    """Earlier versions kept a turn's conversation in its output: a run in flight across the
    upgrade goes on from it."""
    body = "nodes:\n  - {id: ask, type: agent, agent: helper, prompt: use label alpha}\n"
    wf = project(tmp_path, body)
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {})
    [first] = engine.queue.receive(1, visibility_timeout=5)
    assert engine.handle(first) == "done"  # turn 0; turn 1 is queued
    turn0 = engine.store.get_step(run.id, "ask@0")
    assert turn0 is not None and turn0[0].outcome is not None
    outcome = turn0[0].outcome
    old = outcome.model_copy(update={"output": {"messages": outcome.conversation}})
    old.conversation = None
    engine.store.blobs.put(
        engine.store.step_key(run.id, "ask@0"),
        turn0[0].model_copy(update={"outcome": old}).model_dump_json().encode(),
    )
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed
    assert done.output == {"ask": "helper saw ALPHA"}


def test_agent_tool_loop_is_checkpointed_per_turn(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: ask, type: agent, agent: helper, prompt: "use label alpha"}
        """,
    )
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {})
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed
    assert done.output == {"ask": "helper saw ALPHA"}
    assert recorded(engine, run.id) == {"ask@0", "ask@1"}
    assert ledger(wf) == ["alpha"]
    turn0 = engine.store.get_step(run.id, "ask@0")
    assert turn0 is not None and turn0[0].outcome is not None
    assert turn0[0].outcome.conversation is not None
    roles = [m["role"] for m in turn0[0].outcome.conversation]
    assert roles == ["system", "user", "assistant", "tool"]
    # every model call is in the prompt log, with usage and cost from the price table
    prompts = list(engine.prompts.entries(run.id))
    assert [p.step for p in prompts] == ["ask@0", "ask@1"]
    assert all(p.reply.usage.total_tokens > 0 and p.latency_ms >= 0 for p in prompts)
    assert done.usage.total_tokens == sum(p.reply.usage.total_tokens for p in prompts)
    expected = sum(
        (p.reply.usage.prompt_tokens * 1.0 + p.reply.usage.completion_tokens * 2.0) / 1e6
        for p in prompts
    )
    assert done.cost_usd == pytest.approx(expected)


def test_condition_routes_and_dead_paths_reach_the_join(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        inputs:
          n: {type: integer}
        nodes:
          - {id: check, type: condition, expression: "input.n > 10"}
          - {id: big, type: tool, tool: record, args: {label: big}}
          - {id: small, type: tool, tool: record, args: {label: small}}
          - {id: after_big, type: tool, tool: record, args: {label: after_big}}
          - {id: end, type: join}
        edges:
          - {from: check, to: big, when: output}
          - {from: check, to: small, when: not output}
          - {from: big, to: after_big}
          - {from: after_big, to: end}
          - {from: small, to: end}
        output: "{{ steps.end.output }}"
        """,
    )
    engine = make_engine(tmp_path)
    loaded = load_blueprint(wf)
    small = drain(engine, engine.start(loaded, {"n": 3}).id)
    assert small.status is RunStatus.completed
    assert small.skipped == {"big", "after_big"}
    assert small.output == {"small": "SMALL"}
    big = drain(engine, engine.start(loaded, {"n": 30}).id)
    assert big.output == {"after_big": "AFTER_BIG"}
    assert ledger(wf) == ["small", "big", "after_big"]


def test_parallel_fan_out_gathers_in_order_and_join_waits(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: items, type: condition, expression: "['x', 'y', 'z']"}
          - id: each
            type: parallel
            for_each: steps.items.output
            tool: record
            args: {label: "{{ item }}-{{ index }}"}
          - id: agents
            type: parallel
            for_each: steps.items.output
            agent: helper
            prompt: "label {{ item }}"
          - {id: side, type: tool, tool: add, args: {a: 1, b: 1}}
          - {id: all, type: join}
        edges:
          - {from: items, to: each}
          - {from: items, to: agents}
          - {from: items, to: side}
          - {from: each, to: all}
          - {from: agents, to: all}
          - {from: side, to: all}
        output: "{{ steps.all.output }}"
        """,
    )
    engine = make_engine(tmp_path)
    done = drain(engine, engine.start(load_blueprint(wf), {}).id)
    assert done.status is RunStatus.completed
    assert done.output == {
        "each": ["X-0", "Y-1", "Z-2"],
        "agents": ["helper saw X", "helper saw Y", "helper saw Z"],
        "side": 2,
    }
    assert done.fan_out == {"each": 3, "agents": 3}
    assert done.items_done == {}  # items are counted by their markers, not in the record
    assert [engine.store.items_marked(done.id, n) for n in ("each", "agents")] == [3, 3]
    steps = recorded(engine, done.id)
    assert {"each[0]", "each[2]", "agents[1]@1", "each~gather", "agents~gather"} <= steps
    assert done.steps_run == len(steps)  # the items no fold counted, the gather did


def test_parallel_over_nothing_gathers_an_empty_list(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: none, type: parallel, for_each: "[]", tool: record, args: {label: x}}
        output: "{{ steps.none.output }}"
        """,
    )
    engine = make_engine(tmp_path)
    done = drain(engine, engine.start(load_blueprint(wf), {}).id)
    assert done.status is RunStatus.completed and done.output == []


FAN_OUT = """
nodes:
  - {{id: each, type: parallel, for_each: "{items}", tool: record, args: {{label: "{{{{ item }}}}"}}}}
output: "{{{{ steps.each.output }}}}"
"""


def run_record_writes(tmp_path: Path, items: list[str]) -> int:
    tmp_path = tmp_path / str(len(items))
    tmp_path.mkdir()
    wf = project(tmp_path, FAN_OUT.format(items=json.dumps(items).replace('"', "'")))
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {})
    writes = 0
    inner = engine.store.blobs.put_if_match

    def counting(key: str, data: bytes, etag: str) -> str:
        nonlocal writes
        writes += key.endswith("/run.json")
        return inner(key, data, etag)

    engine.store.blobs.put_if_match = counting  # type: ignore[method-assign]
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed and done.output == items
    assert sorted(ledger(wf)) == sorted(items)  # each item ran once
    return writes


def test_fan_out_items_never_rewrite_the_run_record(tmp_path: Path) -> None:
    """Arrivals are markers counted by a listing: 4 items or 40, the run record is written
    the same number of times (dispatch, gather added, gather folded)."""
    few = run_record_writes(tmp_path, [str(i) for i in range(4)])
    many = run_record_writes(tmp_path, [str(i) for i in range(40)])
    assert few == many == 3


@pytest.mark.parametrize(
    "body",
    ["tool: record, args: {label: '{{ item }}'}", "agent: helper, prompt: 'label {{ item }}'"],
)
def test_an_item_whose_worker_dies_before_marking_it_is_marked_on_redelivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str
) -> None:
    """Recorded (and, for an agent item, folded) but never marked: the redelivery marks it,
    and the gather still comes, with every item run once."""
    wf = project(
        tmp_path,
        f"""
        nodes:
          - {{id: each, type: parallel, for_each: "['a', 'b']", {body}}}
        output: "{{{{ steps.each.output }}}}"
        """,
    )
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {})
    marks = 0
    inner = engine.store.mark_item

    def dies_on_the_last(run_id: str, unit: str) -> None:
        nonlocal marks
        marks += 1
        if marks == 2:
            raise SystemExit("worker died here")
        inner(run_id, unit)

    monkeypatch.setattr(engine.store, "mark_item", dies_on_the_last)
    with pytest.raises(SystemExit):
        drain(engine, run.id)
    assert engine.store.get(run.id).status is RunStatus.running  # no gather yet
    monkeypatch.undo()
    for job in engine.queue.receive(10, visibility_timeout=30):  # leases run out
        engine.queue.retry(job, delay=0)
    time.sleep(0.05)
    done = drain(engine, run.id, timeout_s=30)
    assert done.status is RunStatus.completed and len(done.output) == 2
    assert sorted(ledger(wf)) == ["a", "b"]


def test_a_job_delivered_twice_runs_its_step_once(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: once, type: tool, tool: record, args: {label: once}}
          - {id: next, type: tool, tool: record, args: {label: next}}
        edges:
          - {from: once, to: next}
        """,
    )
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {})
    [job] = engine.queue.receive(1, visibility_timeout=30)
    engine.queue.send(dict(job.body))  # the queue delivers it a second time
    assert engine.handle(job) == "done"
    outcomes = {
        job_of(m.body)["step"]: engine.handle(m)
        for m in engine.queue.receive(10, visibility_timeout=30)
    }
    assert outcomes == {"once": "duplicate", "next": "done"}
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed
    assert ledger(wf) == ["once", "next"]
    assert done.steps_run == 2


def crash(*args: object, **kwargs: object) -> None:
    raise SystemExit("worker died here")


@pytest.mark.parametrize(
    ("dies_in", "pending_after_crash"),
    [
        ("_advance", {"a"}),  # outcome recorded, run never advanced
        ("_send", {"b"}),  # run advanced, b never sent
    ],
)
def test_redelivery_after_a_crash_repairs_the_run_without_rerunning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dies_in: str, pending_after_crash: set[str]
) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: a, type: tool, tool: record, args: {label: a}}
          - {id: b, type: tool, tool: record, args: {label: b}}
        edges:
          - {from: a, to: b}
        """,
    )
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {})
    [job] = engine.queue.receive(1, visibility_timeout=30)
    with monkeypatch.context() as patch:
        patch.setattr(engine, dies_in, crash)
        with pytest.raises(SystemExit):
            engine.handle(job)
    assert engine.store.get(run.id).pending == pending_after_crash
    engine.queue.retry(job, delay=0)  # the visibility timeout passes
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed
    assert ledger(wf) == ["a", "b"]


def test_failing_step_is_retried_then_dead_lettered_and_the_run_fails(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        f"""
        nodes:
          - {{id: boom, type: tool, tool: explode, args: {{message: kaput}}, {FAST_RETRY}}}
        """,
    )
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {})
    done = drain(engine, run.id)
    assert done.status is RunStatus.failed
    assert done.error is not None
    assert (done.error.step, done.error.type, done.error.message, done.error.attempts) == (
        "boom",
        "RuntimeError",
        "kaput",
        3,
    )
    assert ledger(wf) == ["explode"] * 3
    [dead] = engine.queue.dead_letters()
    assert job_of(dead.body)["step"] == "boom" and "kaput" in dead.reason and dead.attempts == 3
    record = engine.store.get_step(run.id, "boom")
    assert record is not None and record[0].status == "failed"
    assert record[0].error == "RuntimeError: kaput"


def test_unretryable_failure_dead_letters_at_once(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: loop, type: agent, agent: looper, prompt: go}
        """,
    )
    engine = make_engine(tmp_path)
    done = drain(engine, engine.start(load_blueprint(wf), {}).id)
    assert done.status is RunStatus.failed
    assert done.error is not None and done.error.type == "StepFailed"
    assert "max_steps=3" in done.error.message
    assert done.error.step == "loop@2" and done.error.attempts == 1
    assert ledger(wf) == ["again", "again"]
    assert len(engine.queue.dead_letters()) == 1


@pytest.mark.parametrize(
    ("transient", "error", "attempts"),
    [
        (False, "ModelError", 1),  # an unknown model, a denied permission: asked once
        (True, "TransientModelError", 3),  # throttling: the step's retry policy goes on
    ],
)
def test_a_models_permanent_error_is_not_retried_and_a_transient_one_is(
    tmp_path: Path, transient: bool, error: str, attempts: int
) -> None:
    wf = project(
        tmp_path,
        """
        models:
          down: {provider: scripted, rules: down.yaml, max_retries: 1}
        agents:
          broken: {instructions: Fail., model: down}
        nodes:
          - {id: ask, type: agent, agent: broken, prompt: go,
             retry: {max_attempts: 3, backoff: {base_s: 0, max_s: 0}}}
        """,
    )
    rules = {"model": "down", "default": {"error": "no such model", "transient": transient}}
    wf.with_name("down.yaml").write_text(json.dumps(rules))
    engine = make_engine(tmp_path)
    done = drain(engine, engine.start(load_blueprint(wf), {}).id)
    assert done.status is RunStatus.failed and done.error is not None
    assert (done.error.type, done.error.attempts) == (error, attempts)
    assert "scripted model 'down': no such model" in done.error.message


def test_bad_tool_arguments_from_a_template_fail_the_run_clearly(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: bad, type: tool, tool: add, args: {a: "not a number", b: 1}}
        """,
    )
    engine = make_engine(tmp_path)
    done = drain(engine, engine.start(load_blueprint(wf), {}).id)
    assert done.status is RunStatus.failed
    assert done.error is not None and done.error.type == "ToolError"
    assert "tool 'add' rejected its arguments: a:" in done.error.message


def test_wait_node_parks_until_a_signal(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: ask, type: wait, signal: approval, timeout_s: 3600}
          - {id: go, type: tool, tool: record, args: {label: "{{ steps.ask.output.payload.by }}"}}
        edges:
          - {from: ask, to: go, when: "output.payload.ok"}
        """,
    )
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {})
    parked = drain(engine, run.id)
    assert parked.status is RunStatus.waiting
    assert parked.waiting["ask"].signal == "approval"
    with pytest.raises(Conflict):
        engine.signal(run.id, "other", {})
    engine.signal(run.id, "approval", {"ok": True, "by": "ada"})
    with pytest.raises(Conflict):
        engine.signal(run.id, "approval", {"ok": True, "by": "again"})
    done = drain(engine, run.id)
    assert done.status is RunStatus.completed
    assert ledger(wf) == ["ada"]
    # the timeout job fires later and finds the node resumed: nothing changes
    assert "ask~wake" not in done.pending and "ask" in done.finished


def test_wait_timeout_continues_or_fails(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: soft, type: wait, signal: s1, timeout_s: 0.2}
          - {id: hard, type: wait, signal: s2, timeout_s: 0.8, on_timeout: fail}
          - {id: after, type: tool, tool: record, args: {label: "late={{ steps.soft.output.timed_out }}"}}
        edges:
          - {from: soft, to: after}
        """,
    )
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {})
    done = drain(engine, run.id, stop_when_waiting=False)
    assert done.status is RunStatus.failed
    assert done.error is not None and "timed out" in done.error.message
    assert "soft" in done.finished and "after" in done.finished
    assert ledger(wf) == ["late=True"]


def test_cancel_stops_further_steps(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: a, type: tool, tool: record, args: {label: a}}
        """,
    )
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {})
    engine.cancel(run.id)
    [job] = engine.queue.receive(1, visibility_timeout=30)
    assert engine.handle(job) == "skipped"
    assert ledger(wf) == []
    with pytest.raises(Conflict):
        engine.cancel(run.id)


def test_replay_serves_recorded_model_replies(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        nodes:
          - {id: ask, type: agent, agent: helper, prompt: "use label beta"}
        """,
    )
    engine = make_engine(tmp_path)
    first = drain(engine, engine.start(load_blueprint(wf), {}).id)
    replayed = drain(engine, engine.replay(first.id).id)
    assert replayed.replay_of == first.id
    assert replayed.output == first.output
    assert replayed.cost_usd == 0 and replayed.usage.total_tokens == 0
    entries = list(engine.prompts.entries(replayed.id))
    assert entries and all(e.replayed_from == first.id for e in entries)
    live = drain(engine, engine.replay(first.id, live=True).id)
    assert live.output == first.output and live.cost_usd == pytest.approx(first.cost_usd)
    assert all(e.replayed_from is None for e in engine.prompts.entries(live.id))


def test_inputs_are_checked_before_a_run_starts(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        """
        inputs:
          n: {type: integer}
          tag: {type: string, required: false, default: none}
        nodes:
          - {id: a, type: tool, tool: add, args: {a: "{{ input.n }}", b: 1}}
        """,
    )
    engine = make_engine(tmp_path)
    loaded = load_blueprint(wf)
    with pytest.raises(UserError, match="missing input 'n'"):
        engine.start(loaded, {})
    with pytest.raises(UserError, match="input 'n' must be of type integer, got str"):
        engine.start(loaded, {"n": "3"})
    with pytest.raises(UserError, match="unknown input 'x'"):
        engine.start(loaded, {"n": 1, "x": 2})
    run = engine.start(loaded, {"n": 1})
    assert run.input == {"n": 1, "tag": "none"}
    assert list(engine.store.list_runs()[0]) == [engine.store.get(run.id)]


def test_malformed_jobs_go_to_the_dead_letter_queue(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    engine.queue.send({"nothing": "here"})
    engine.queue.send({"run": "run_missing", "step": "a"})
    for message in engine.queue.receive(10, visibility_timeout=30):
        assert engine.handle(message) == "dead"
    reasons = sorted(d.reason for d in engine.queue.dead_letters())
    assert "malformed job" in reasons[1] and "not found" in reasons[0]


def test_run_record_is_json_with_sets_sorted(tmp_path: Path) -> None:
    wf = project(tmp_path, "nodes:\n  - {id: a, type: tool, tool: add, args: {a: 1, b: 1}}\n")
    engine = make_engine(tmp_path)
    run = drain(engine, engine.start(load_blueprint(wf), {}).id)
    raw = json.loads(engine.blobs.get(f"runs/{run.id}/run.json").data)
    assert raw["status"] == "completed" and raw["finished"] == ["a"] and raw["pending"] == []


def test_a_step_whose_worker_keeps_dying_fails_the_run(tmp_path: Path) -> None:
    wf = project(
        tmp_path,
        f"nodes:\n  - {{id: a, type: tool, tool: record, args: {{label: a}}, {FAST_RETRY}}}\n",
    )
    engine = make_engine(tmp_path, lease_s=0.05)
    run = engine.start(load_blueprint(wf), {})
    for _ in range(3):  # three deliveries whose worker "died" right after claiming
        [job] = engine.queue.receive(1, visibility_timeout=0.05)
        claim = engine.store.get_step(run.id, "a")
        record = StepRecord(
            key="a", status="running", attempt=job.attempts, started_at=0, lease_until=0
        )
        engine.store.put_step(run.id, record, claim[1] if claim else None)
        time.sleep(0.06)
    done = drain(engine, run.id)
    assert done.status is RunStatus.failed
    assert done.error is not None and done.error.type == "WorkerLost" and done.error.attempts == 4
    assert ledger(wf) == []
    assert len(engine.queue.dead_letters()) == 1


def test_attempts_are_counted_on_the_step_record_when_the_trigger_cannot(tmp_path: Path) -> None:
    """Pub/Sub through Eventarc without a dead-letter policy reports every delivery as the first."""
    wf = project(
        tmp_path,
        f"nodes:\n  - {{id: boom, type: tool, tool: explode, args: {{message: kaput}}, {FAST_RETRY}}}\n",
    )
    engine = make_engine(tmp_path)
    run = engine.start(load_blueprint(wf), {})
    outcomes = []
    for _ in range(3):
        [job] = engine.queue.receive(1, visibility_timeout=30)
        job.attempts = 1  # what such a trigger says every time
        outcomes.append(engine.handle(job))
    assert outcomes == ["retry", "retry", "dead"]
    done = engine.store.get(run.id)
    assert done.status is RunStatus.failed and done.error is not None
    assert done.error.attempts == 3


def test_the_run_record_does_not_grow_with_the_steps_a_run_takes(tmp_path: Path) -> None:
    """Per-step facts live in step records: 5 items or 120, the record is the same size but
    for the digits of its counters, so a long run's every step does not pay for its past."""
    wf = project(
        tmp_path,
        """
        inputs:
          n: {type: integer}
        nodes:
          - {id: make, type: tool, tool: count, args: {n: "{{ input.n }}"}}
          - {id: each, type: parallel, for_each: steps.make.output, max_items: 200, tool: add, args: {a: "{{ item }}", b: 1}}
        edges:
          - {from: make, to: each}
        output: "{{ sum(steps.each.output) }}"
        """,
    )
    engine = make_engine(tmp_path)
    sizes = {}
    for n in (5, 120):
        done = drain(engine, engine.start(load_blueprint(wf), {"n": n}).id, timeout_s=60)
        assert done.status is RunStatus.completed and done.output == n * (n + 1) // 2
        assert done.steps_run == n + 3 and len(recorded(engine, done.id)) == n + 3
        sizes[n] = len(engine.blobs.get(f"runs/{done.id}/run.json").data)
    assert sizes[120] - sizes[5] < 40, sizes
