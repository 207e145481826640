"""Agent nodes: one turn per step (a model call and the tool calls it asks for).

A turn that does not finish continues with the next turn's key; the last turn records the
final answer as the node's output. Model calls go to the prompt log first-writer-wins and
tool calls inside a turn are recorded one by one, so a turn re-run after a crash reuses
what it already paid for. Parallel nodes with an agent body use ``agent_turn`` per item.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from agentfn import injection
from agentfn.agents import AgentSpec, opening_messages, take_turn, tool_result_text
from agentfn.engine._context import StepContext
from agentfn.engine._executors._registry import executor
from agentfn.errors import NotFound, StepFailed
from agentfn.expressions import compile_template
from agentfn.ports import ChatReply, ChatRequest, Message, ToolCall, Usage
from agentfn.prompt_log import PromptRecord
from agentfn.reply_cache import cacheable
from agentfn.runs import StepOutcome, ToolFlag, key_part
from agentfn.tool_calls import calling
from agentfn.workflows import AgentNode


@executor(AgentNode)
def agent_step(sc: StepContext, node: AgentNode) -> StepOutcome:
    return agent_turn(sc, node.agent, node.prompt, sc.names())


def agent_turn(
    sc: StepContext, agent_name: str, prompt: str, names: Mapping[str, Any]
) -> StepOutcome:
    """Take turn ``sc.step.turn`` of agent ``agent_name`` for the unit ``sc.step`` completes."""
    run, step = sc.run, sc.step
    spec: AgentSpec = sc.blueprint.agents[agent_name]
    turn = step.turn or 0
    asked: str | None = None  # the prompt, on the first turn: the step's input for people
    if turn == 0:
        text = compile_template(prompt).render(names)
        asked = text if isinstance(text, str) else tool_result_text(text)
        messages = opening_messages(spec, asked)
    else:
        previous = sc.store.get_step(run.id, str(step.previous_turn()))
        if previous is None or previous[0].outcome is None:
            raise StepFailed(f"step {step}: the previous turn has no recorded result")
        before = previous[0].outcome
        # Turns recorded by earlier versions kept the conversation in their output.
        history = (
            before.conversation if before.conversation is not None else before.output["messages"]
        )
        messages = [Message.model_validate(m) for m in history]
    usage = Usage()
    cost = 0.0

    def call_model(request: ChatRequest) -> ChatReply:
        nonlocal usage, cost
        entry = _model_call(sc, str(step), spec, request)
        if entry.replayed_from is None:
            usage = entry.reply.usage
            cost = entry.cost_usd
        return entry.reply

    flags: list[ToolFlag] = []

    def call_tool(index: int, call: ToolCall) -> str:
        key = f"runs/{run.id}/calls/{key_part(str(step))}/{index}.json"
        try:
            text = str(sc.store.read_json(key))
        except NotFound:
            with (
                calling(run.id, str(step), index),
                sc.observer.tool_call(run.id, str(step), call.name),
            ):
                result = tool_result_text(sc.tools.get(call.name).invoke(call.arguments))
            text = str(sc.store.record_once(key, result))
        found = injection.signals(text)  # from the recorded text: the same on every delivery
        if found:
            flags.append(
                ToolFlag(
                    step=str(step), tool=call.name, signals=found, excerpt=injection.excerpt(text)
                )
            )
        return text

    result = take_turn(
        name=agent_name,
        spec=spec,
        messages=messages,
        tools=sc.tools.specs(spec.tools) if spec.tools else [],
        turn=turn,
        call_model=call_model,
        call_tool=call_tool,
    )
    conversation = [m.model_dump(mode="json") for m in result.messages]
    if not result.done:
        return StepOutcome(
            conversation=conversation,
            continue_with=[str(step.next_turn())],
            usage=usage,
            cost_usd=cost,
            flags=flags,
            input=asked,
        )
    outcome = sc.complete(step.unit, result.final, usage=usage, cost_usd=cost)
    outcome.conversation = conversation
    outcome.flags = flags
    outcome.input = asked
    return outcome


def _model_call(sc: StepContext, step: str, spec: AgentSpec, request: ChatRequest) -> PromptRecord:
    run, ctx, prompts = sc.run, sc.context, sc.prompts
    recorded = prompts.get(run.id, step)
    if recorded is not None and recorded.reusable:  # paid for before a crash
        return recorded
    if run.replay_of is not None and not run.live_replay:
        original = prompts.get(run.replay_of, step)
        if (
            original is not None
            and original.reusable
            and original.request.messages == request.messages
        ):
            return prompts.record(
                original.model_copy(
                    update={
                        "run_id": run.id,
                        "at": sc.clock(),
                        "replayed_from": run.replay_of,
                    }
                )
            )
    model_spec = ctx.blueprint.models[spec.model]
    request = request.model_copy(update={"model": model_spec.model})
    caching = spec.cache_ttl_s is not None and cacheable(request, model_spec)
    if caching:
        hit = sc.replies.get(request, model_spec)
        if hit is not None:
            return prompts.record(
                PromptRecord(
                    run_id=run.id,
                    step=step,
                    agent=request.agent,
                    model=hit.model or model_spec.model or spec.model,
                    request=request,
                    reply=hit.model_copy(update={"usage": Usage()}),
                    latency_ms=0.0,
                    cost_usd=0.0,
                    at=sc.clock(),
                    cached=True,
                )
            )
    model = ctx.model(spec.model)
    started = time.perf_counter()
    with sc.observer.model_call(run.id, step, request.agent) as watch:
        reply = model.chat(request)
        latency = (time.perf_counter() - started) * 1000
        model_name = reply.model or model_spec.model or model.name
        cost = ctx.prices.cost(model_name, reply.usage)
        watch.replied(reply.usage, cost, model_name)
    if caching:
        assert spec.cache_ttl_s is not None
        sc.replies.put(request, model_spec, reply, spec.cache_ttl_s)
    return prompts.record(
        PromptRecord(
            run_id=run.id,
            step=step,
            agent=request.agent,
            model=model_name,
            request=request,
            reply=reply,
            latency_ms=latency,
            cost_usd=cost,
            at=sc.clock(),
        )
    )
