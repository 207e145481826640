"""agentfn.testing: what users test their own workflows with runs the real engine, fast."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from agentfn import ChatReply, ChatRequest, RunStatus
from agentfn.errors import NotFound, PreconditionFailed
from agentfn.testing import (
    FakeClock,
    MemoryBlobStore,
    MemoryQueue,
    MemorySecretStore,
    WorkflowHarness,
    run_workflow,
)
from tests.support.engine_harness import ledger, project

EXAMPLE = Path(__file__).resolve().parents[2] / "functions" / "local" / "example" / "workflow.yaml"


def test_run_workflow_runs_the_bundled_example_to_its_output() -> None:
    run = run_workflow(EXAMPLE, {"subject": "edge AI"})
    assert run.status is RunStatus.completed
    assert run.output == "A full brief, built from the research above."
    assert run.steps_run == 14
    assert run.usage.total_tokens > 0 and run.cost_usd > 0


def test_retries_back_off_on_the_fake_clock_not_in_real_time(tmp_path: Path) -> None:
    workflow = project(
        tmp_path,
        """
        nodes:
          - {id: f, type: tool, tool: flaky, args: {label: x},
             retry: {max_attempts: 3, backoff: {base_s: 600, max_s: 600, jitter: false}}}
        """,
    )
    harness = WorkflowHarness()
    start = harness.clock()
    run = harness.drain(harness.start(workflow).id)
    assert run.status is RunStatus.completed
    assert ledger(workflow) == ["fail:x", "x"]
    assert harness.clock() - start >= 600  # the backoff was waited out on the fake clock


def test_a_waiting_run_resumes_by_signal_or_by_moving_the_clock(tmp_path: Path) -> None:
    workflow = project(
        tmp_path,
        """
        nodes:
          - {id: ask, type: wait, signal: approval, timeout_s: 3600}
          - {id: after, type: tool, tool: record, args: {label: "{{ steps.ask.output.signal }}"}}
        edges:
          - {from: ask, to: after}
        """,
    )
    harness = WorkflowHarness()
    parked = harness.drain(harness.start(workflow).id)
    assert parked.status is RunStatus.waiting
    done = harness.signal(parked.id, "approval", {"ok": True})
    assert done.status is RunStatus.completed and ledger(workflow) == ["approval"]

    timed = harness.drain(harness.start(workflow).id)
    harness.advance(3600)
    assert harness.drain(timed.id).status is RunStatus.completed


def test_a_given_model_answers_for_every_agent(tmp_path: Path) -> None:
    class Fixed:
        name = "fixed"

        def __init__(self) -> None:
            self.requests: list[ChatRequest] = []

        def chat(self, request: ChatRequest) -> ChatReply:
            self.requests.append(request)
            return ChatReply(content="from the test")

    workflow = project(
        tmp_path,
        """
        nodes:
          - {id: say, type: agent, agent: echo, prompt: "hello"}
        output: "{{ steps.say.output }}"
        """,
    )
    model = Fixed()
    run = run_workflow(workflow, model=model)
    assert run.status is RunStatus.completed and run.output == "from the test"
    assert [m.content for m in model.requests[0].messages][-1] == "hello"


def test_a_failing_step_dead_letters_and_fails_the_run(tmp_path: Path) -> None:
    workflow = project(
        tmp_path,
        """
        nodes:
          - {id: boom, type: tool, tool: explode, args: {message: kaput},
             retry: {max_attempts: 2, backoff: {base_s: 1, max_s: 1, jitter: false}}}
        """,
    )
    harness = WorkflowHarness()
    run = harness.drain(harness.start(workflow).id)
    assert run.status is RunStatus.failed and run.error is not None
    assert "kaput" in run.error.message and run.error.attempts == 2
    [dead] = harness.queue.dead_letters()
    assert "kaput" in dead.reason


def test_memory_ports_keep_their_port_semantics() -> None:
    blobs = MemoryBlobStore()
    etag = blobs.put_if_absent("a/b", b"1")
    with pytest.raises(PreconditionFailed):
        blobs.put_if_absent("a/b", b"2")
    with pytest.raises(PreconditionFailed):
        blobs.put_if_match("a/b", b"2", '"stale"')
    blobs.put_if_match("a/b", b"2", etag)
    sink = io.BytesIO()
    blobs.download("a/b", sink)
    assert sink.getvalue() == b"2"

    clock = FakeClock()
    queue = MemoryQueue(max_attempts=2, clock=clock)
    queue.send({"n": 1}, delay=5)
    assert queue.receive(1) == []
    clock.advance(5)
    [first] = queue.receive(1, visibility_timeout=10)
    clock.advance(10)
    [again] = queue.receive(1, visibility_timeout=10)
    assert again.attempts == 2 and again.id == first.id
    queue.ack(first)  # a stale receipt does nothing
    clock.advance(10)
    assert queue.receive(1) == [] and [d.reason for d in queue.dead_letters()] == [
        "max attempts (2) exceeded"
    ]

    secrets = MemorySecretStore({"k": "v"})
    assert secrets.get("k") == "v"
    with pytest.raises(NotFound):
        secrets.get("other")
