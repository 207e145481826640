"""Agent nodes: one turn per step (a model call and the tool calls it asks for).

A turn that does not finish continues with the next turn's key; the last turn records the
final answer as the node's output. Model calls go to the prompt log first-writer-wins and
tool calls inside a turn are recorded one by one, so a turn re-run after a crash reuses
what it already paid for. Parallel nodes with an agent body use ``agent_turn`` per item.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from agentfn import injection
from agentfn.agents import AgentSpec, opening_messages, take_turn, tool_result_text
from agentfn.conversations import SUMMARY_STEP, fit_history, transcript
from agentfn.engine._context import StepContext
from agentfn.engine._executors._registry import executor
from agentfn.errors import NotFound, StepFailed
from agentfn.expressions import compile_template
from agentfn.ports import ChatReply, ChatRequest, Message, ToolCall, Usage
from agentfn.prompt_log import PromptRecord
from agentfn.reply_cache import cacheable
from agentfn.runs import StepOutcome, ToolFlag, key_part
from agentfn.threads import RunThread
from agentfn.tool_calls import calling
from agentfn.workflows import AgentNode


@executor(AgentNode)
def agent_step(sc: StepContext, node: AgentNode) -> StepOutcome:
    return agent_turn(sc, node.agent, node.prompt, sc.names(), converses=True)


def agent_turn(
    sc: StepContext,
    agent_name: str,
    prompt: str,
    names: Mapping[str, Any],
    *,
    converses: bool = False,
) -> StepOutcome:
    """Take turn ``sc.step.turn`` of agent ``agent_name`` for the unit ``sc.step`` completes.

    ``converses``: an agent node, which starts from the run's thread (if it has one) and gives
    the thread its prompt and final answer."""
    run, step = sc.run, sc.step
    spec: AgentSpec = sc.blueprint.agents[agent_name]
    thread = run.thread if converses else None
    turn = step.turn or 0
    usage = Usage()
    cost = 0.0
    cached = 0

    def spend(entry: PromptRecord) -> ChatReply:
        nonlocal usage, cost, cached
        if entry.replayed_from is None:
            usage = Usage(
                prompt_tokens=usage.prompt_tokens + entry.reply.usage.prompt_tokens,
                completion_tokens=usage.completion_tokens + entry.reply.usage.completion_tokens,
            )
            cost += entry.cost_usd
            cached += entry.cached
        return entry.reply

    asked: str | None = None  # the prompt, on the first turn: the step's input for people
    if turn == 0:
        text = compile_template(prompt).render(names)
        asked = text if isinstance(text, str) else tool_result_text(text)
        messages = opening_messages(spec, asked)
        if thread is not None:
            messages = _from_thread(sc, str(step), spec, thread, messages, spend)
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

    def call_model(request: ChatRequest) -> ChatReply:
        return spend(_model_call(sc, str(step), spec, request))

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
                tool = sc.agent_tool(agent_name, call.name)
                result = tool_result_text(tool.invoke(call.arguments))
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
        tools=sc.agent_tool_specs(agent_name) if spec.tools else [],
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
            cached_calls=cached,
            flags=flags,
            input=asked,
        )
    outcome = sc.complete(step.unit, result.final, usage=usage, cost_usd=cost)
    outcome.conversation = conversation
    outcome.cached_calls = cached
    outcome.flags = flags
    outcome.input = asked
    if thread is not None:
        said = [
            Message(role="user", content=asked if asked is not None else _prompt_of(sc)),
            Message(role="assistant", content=result.reply.content or "", name=agent_name),
        ]
        outcome.exchange = [m.model_dump(mode="json", exclude_defaults=True) for m in said]
    return outcome


def _prompt_of(sc: StepContext) -> str:
    """The prompt an agent node's first turn was asked (recorded as that step's input)."""
    first = replace(sc.step, turn=0)
    found = sc.store.get_step(sc.run.id, str(first))
    if found is None or found[0].outcome is None or found[0].outcome.input is None:
        raise StepFailed(f"step {sc.step}: the first turn has no recorded prompt")
    return str(found[0].outcome.input)


def _from_thread(
    sc: StepContext,
    step: str,
    spec: AgentSpec,
    thread: RunThread,
    opening: list[Message],
    spend: Callable[[PromptRecord], ChatReply],
) -> list[Message]:
    """The opening messages with the thread's history between instructions and prompt: as
    much as the agent's token budget holds, what it drops summarised when a summariser is
    named (its call goes to the prompt log like any other, so a redelivery reuses it)."""
    system, prompt = opening
    kept, dropped = fit_history(sc.conversations.history(thread), spec.history_tokens)
    name = spec.history_summariser
    if dropped and name is not None:
        summariser = sc.blueprint.agents[name]
        request = ChatRequest(
            messages=[
                Message(role="system", content=summariser.instructions),
                Message(role="user", content=transcript(dropped)),
            ],
            agent=name,
            temperature=summariser.temperature,
        )
        summary = spend(_model_call(sc, step + SUMMARY_STEP, summariser, request)).content
        text = f"{system.content}\n\n{SUMMARY_HEADING}\n{summary or ''}"
        system = system.model_copy(update={"content": text})
    return [system, *kept, prompt]


SUMMARY_HEADING = "Earlier in this conversation (summarised):"


def _model_call(sc: StepContext, step: str, spec: AgentSpec, request: ChatRequest) -> PromptRecord:
    run, ctx, prompts = sc.run, sc.context, sc.prompts
    thread = run.thread.id if run.thread is not None else None
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
                    thread=thread,
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
            thread=thread,
        )
    )
