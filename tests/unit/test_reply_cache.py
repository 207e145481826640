"""The model-reply cache: opt-in per agent, temperature 0 only, per tenant, for a while; a hit
costs nothing, is marked in the prompt log and replays as recorded."""

from __future__ import annotations

from pathlib import Path

from agentfn.ledger import Ledger, costs_csv
from agentfn.model_spec import ModelSpec
from agentfn.ports import ChatReply, ChatRequest, Message, Usage
from agentfn.reply_cache import ReplyCache
from agentfn.runs import RunStatus
from agentfn.tenant_blobs import TenantBlobs
from agentfn.testing import MemoryBlobStore
from tests.support.engine_harness import drain, make_engine, project, run_to_end


def flow(agent: str) -> str:
    return f"""
agents:
  cached: {{instructions: Repeat the prompt., temperature: 0, cache_ttl_s: 600}}
  warm: {{instructions: Repeat the prompt., temperature: 0.7, cache_ttl_s: 600}}
  plain: {{instructions: Repeat the prompt., temperature: 0}}
nodes:
  - {{id: ask, type: agent, agent: {agent}, prompt: "What is 2 + 2?"}}
"""


def test_a_second_identical_call_is_served_from_the_cache_for_nothing(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    workflow = project(tmp_path, flow("cached"))
    first = run_to_end(engine, workflow)
    second = run_to_end(engine, workflow)
    assert first.status is second.status is RunStatus.completed
    assert first.output == second.output == {"ask": "echo: What is 2 + 2?"}
    [paid] = engine.prompts.entries(first.id)
    [hit] = engine.prompts.entries(second.id)
    assert not paid.cached and paid.reply.usage.total_tokens > 0 and paid.cost_usd > 0
    assert hit.cached and hit.reply.usage == Usage() and hit.cost_usd == 0
    assert second.usage.total_tokens == 0 and second.cost_usd == 0
    # the hit is counted in the run's usage, per agent, and in the tenant's ledger
    assert (first.cached_calls, second.cached_calls) == (0, 1)
    assert second.agent_usage["cached"].cached_calls == 1
    assert second.agent_usage["cached"].prompt_tokens == 0
    ledger = Ledger(MemoryBlobStore(), clock=lambda: second.finished_at or 0.0)
    ledger.record_run(first)
    ledger.record_run(second)
    [row] = ledger.costs(1)
    assert (row.calls, row.cached_calls) == (2, 1)
    assert ledger.metrics(1)[0].cached_calls == 1
    assert costs_csv([row]).splitlines()[1].endswith(",1")
    # a replay of the cached run serves the recorded (cached) reply again
    again = drain(engine, engine.replay(second.id).id)
    assert again.output == second.output
    [replayed] = engine.prompts.entries(again.id)
    assert replayed.replayed_from == second.id and replayed.cached


def test_no_cache_without_the_opt_in_or_above_temperature_0(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    for agent in ("plain", "warm"):
        workflow = project(tmp_path, flow(agent), name=agent)
        runs = [run_to_end(engine, workflow) for _ in range(2)]
        entries = [e for r in runs for e in engine.prompts.entries(r.id)]
        assert [e.cached for e in entries] == [False, False], agent
        assert all(r.usage.total_tokens > 0 for r in runs)


def test_entries_expire_differ_by_request_and_stay_in_their_tenant() -> None:
    now = [0.0]
    blobs = MemoryBlobStore()
    spec = ModelSpec(provider="openai", model="gpt-4o-mini", temperature=0)
    asked = ChatRequest(messages=[Message(role="user", content="2 + 2?")], temperature=0)
    cache = ReplyCache(TenantBlobs(blobs, "acme"), clock=lambda: now[0])
    cache.put(asked, spec, ChatReply(content="4", model="gpt-4o-mini"), ttl_s=60)
    assert cache.get(asked, spec) is not None
    other = asked.model_copy(update={"messages": [Message(role="user", content="3 + 3?")]})
    assert cache.get(other, spec) is None  # another question
    assert cache.get(asked, spec.model_copy(update={"model": "gpt-4o"})) is None  # another model
    assert ReplyCache(TenantBlobs(blobs, "globex"), clock=lambda: now[0]).get(asked, spec) is None
    now[0] = 61
    assert cache.get(asked, spec) is None  # expired, and removed
    assert list(blobs.list("").keys) == []
