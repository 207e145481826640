"""The durable step engine: one step per job, idempotent, resumable anywhere.

Flow of one job (ARCHITECTURE.md, "Flow of one run"):

1. Load the run. A finished run, or a step already in its ``done`` set, is acknowledged.
2. Claim the step: its record is written with put_if_absent (or put_if_match over an expired
   lease), so two deliveries of one job never execute it twice at the same time.
3. Execute exactly one step: an agent turn, a tool call, a condition, a fan-out, a gather, a
   join, or a wait. Its outcome is recorded on the step record before anything else changes.
4. Advance the run with compare-and-swap: move the key from ``pending`` to ``done``, start the
   nodes whose edges fire, mark dead paths skipped, count join arrivals, settle the status.
5. Enqueue the steps the advance added, then acknowledge.

A crash between any two of these is repaired by redelivery: the recorded outcome is replayed
instead of executed, and the advance is a no-op if it already happened. No step assumes it
runs in the same process as the one before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from agentfn.agents import AgentSpec, opening_messages, take_turn, tool_result_text
from agentfn.correlation import bind, correlation_id
from agentfn.costs import PriceTable
from agentfn.delivery import Acker
from agentfn.errors import (
    AgentfnError,
    Conflict,
    ExpressionError,
    NotFound,
    PreconditionFailed,
    StepFailed,
    ToolError,
    UserError,
    WorkerLost,
)
from agentfn.events.cloudevents import job_of, step_ready
from agentfn.expressions import compile_expression, compile_template
from agentfn.http_tools import HttpTool
from agentfn.model_spec import ModelSpec
from agentfn.ports import (
    BlobStore,
    ChatReply,
    ChatRequest,
    Message,
    Model,
    Queue,
    QueueMessage,
    ToolCall,
    Usage,
)
from agentfn.prompt_log import PromptLog, PromptRecord
from agentfn.runs import (
    Run,
    RunError,
    RunStatus,
    RunStore,
    StepOutcome,
    StepRecord,
    Waiting,
    key_part,
    new_run_id,
)
from agentfn.steps import StepKey, entry_key, item_key
from agentfn.tools import ToolRegistry, load_registry
from agentfn.workflows import (
    AgentNode,
    Blueprint,
    ConditionNode,
    JoinNode,
    LoadedBlueprint,
    ParallelNode,
    RetryPolicy,
    ToolNode,
    WaitNode,
    render_args,
)

log = logging.getLogger("agentfn.engine")

ModelFactory = Callable[[ModelSpec, Path], Model]
NOT_RETRYABLE: tuple[type[BaseException], ...] = (StepFailed, UserError, ToolError)


@dataclass
class RunContext:
    """What executing a run's steps needs, cached per blueprint snapshot in each process."""

    loaded: LoadedBlueprint
    model_factory: ModelFactory
    _models: dict[str, Model] = field(default_factory=dict)

    @property
    def blueprint(self) -> Blueprint:
        return self.loaded.blueprint

    @cached_property
    def tools(self) -> ToolRegistry:
        registry = load_registry(self.blueprint.tool_paths(self.loaded.base_path))
        for spec in self.loaded.http_tools:
            registry.register(HttpTool(spec))
        return registry

    @cached_property
    def prices(self) -> PriceTable:
        return PriceTable(self.blueprint.prices)

    def model(self, name: str) -> Model:
        if name not in self._models:
            self._models[name] = self.model_factory(
                self.blueprint.models[name], self.loaded.base_path
            )
        return self._models[name]


class NodeOutputs(Mapping[str, Any]):
    """``steps.<node>.output`` in expressions: loads finished nodes' outputs on first use."""

    def __init__(self, store: RunStore, run: Run) -> None:
        self._store = store
        self._run = run
        self._cache: dict[str, Any] = {}

    def __getitem__(self, node: str) -> Any:
        if node not in self._cache:
            if node not in self._run.finished:
                raise KeyError(node)
            self._cache[node] = {"output": self._store.node_output(self._run.id, node)}
        return self._cache[node]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._run.finished))

    def __len__(self) -> int:
        return len(self._run.finished)


class Engine:
    def __init__(
        self,
        blobs: BlobStore,
        queue: Queue,
        *,
        model_factory: ModelFactory,
        lease_s: float = 60.0,
        worker: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.blobs = blobs
        self.queue = queue
        self.store = RunStore(blobs, worker=worker)
        self.prompts = PromptLog(blobs)
        self.model_factory = model_factory
        self.lease_s = lease_s
        self.worker = self.store.worker
        self.clock = clock
        self._contexts: dict[str, RunContext] = {}
        self._lock = threading.Lock()

    # ================================================================== API

    def start(
        self,
        loaded: LoadedBlueprint,
        given: Mapping[str, Any],
        *,
        correlation_id: str | None = None,
        replay_of: str | None = None,
        live: bool = False,
        priority: int = 0,
    ) -> Run:
        """Validate the input, record the run, and enqueue its first steps."""
        bp = loaded.blueprint
        values = bp.bind_inputs(given)
        now = self.clock()
        run_id = new_run_id(now)
        run = Run(
            id=run_id,
            workflow=bp.name,
            input=values,
            blueprint_key=self.store.save_blueprint(loaded),
            created_at=now,
            updated_at=now,
            correlation_id=correlation_id or run_id,
            replay_of=replay_of,
            live_replay=live,
        )
        for node in bp.roots:
            run.started.add(node)
            run.pending.add(entry_key(node, agent=_is_agent(bp, node)))
        self.store.create(run)
        for key in sorted(run.pending):
            self._send(run, key, priority=priority)
        bind(run.correlation_id)
        log.info("run started", extra={"run_id": run.id, "correlation_id": run.correlation_id})
        return run

    def replay(self, run_id: str, *, live: bool = False) -> Run:
        """Run again with the same blueprint snapshot and input.

        Model calls are served from the original run's prompt log where the conversation is
        identical (so a replay is deterministic and free), unless ``live`` asks for new calls.
        """
        original = self.store.get(run_id)
        loaded = self.store.load_blueprint(original.blueprint_key)
        return self.start(loaded, original.input, replay_of=original.id, live=live)

    def cancel(self, run_id: str) -> Run:
        def change(run: Run) -> bool:
            if run.status.terminal:
                raise Conflict(f"run {run_id!r} is already {run.status.value}")
            run.status = RunStatus.cancelled
            run.finished_at = self.clock()
            return True

        return self.store.update(run_id, change)

    def signal(self, run_id: str, name: str, payload: Any = None) -> Run:
        """Deliver a named signal to a run parked on a wait node."""
        run = self.store.get(run_id)
        if run.status.terminal:
            raise Conflict(f"run {run_id!r} is already {run.status.value}")
        nodes = [n for n, w in sorted(run.waiting.items()) if w.signal == name]
        if not nodes:
            raise Conflict(f"run {run_id!r} is not waiting for signal {name!r}", field="name")
        node = nodes[0]
        value = {"signal": name, "payload": payload, "timed_out": False}
        won = self.store.record_once(self.store.node_key(run_id, node), value)
        if won != value:
            raise Conflict(f"wait node {node!r} was already resumed", field="name")
        ctx = self._context(run)
        outcome = StepOutcome(output=value, completes=node)
        outcome.edges = self._edges(ctx, run, node, value)
        key = str(StepKey(node, phase="wake"))
        added, run = self._advance(ctx, run_id, key, outcome)
        for k in added or []:
            self._send(run, k)
        return run

    # ================================================================== worker side

    def work(
        self,
        *,
        stop: Callable[[], bool] = lambda: False,
        poll_s: float = 0.2,
        batch: int = 1,
    ) -> int:
        """Receive and handle jobs until ``stop()``; returns how many were handled."""
        handled = 0
        while not stop():
            messages = self.queue.receive(batch, visibility_timeout=self.lease_s)
            if not messages:
                time.sleep(poll_s)
                continue
            for message in messages:
                self.handle(message)
                handled += 1
        return handled

    def handle(self, message: QueueMessage, acker: Acker | None = None) -> str:
        """Handle one delivered job; acks, retries or dead-letters it. Returns what happened.

        ``acker`` settles the message; by default the engine's queue. Triggered functions pass
        a :class:`agentfn.delivery.TriggerAcker`, because their platform deletes a message when the
        function succeeds and redelivers it when it fails.
        """
        acker = acker or self.queue
        body = job_of(message.body)
        bind(str(body.get("cid", "")))
        run_id, key = body.get("run"), body.get("step")
        if not isinstance(run_id, str) or not isinstance(key, str):
            acker.dead_letter(message, "malformed job: needs string fields 'run' and 'step'")
            return "dead"
        try:
            run = self.store.get(run_id)
            step = StepKey.parse(key)
        except (NotFound, UserError) as exc:
            acker.dead_letter(message, f"{type(exc).__name__}: {exc}")
            return "dead"
        if run.status.terminal:
            acker.ack(message)
            return "skipped"
        ctx = self._context(run)
        existing = self.store.get_step(run_id, key)
        if key in run.done:
            if existing is not None and existing[0].status == "done" and not existing[0].enqueued:
                self._finish(ctx, run_id, existing[0], existing[1])
            acker.ack(message)
            return "duplicate"
        now = self.clock()
        if existing is not None:
            record, etag = existing
            if record.status == "done" and record.outcome is not None:
                self._finish(ctx, run_id, record, etag)
                acker.ack(message)
                return "duplicate"
            if (
                record.status == "running"
                and record.lease_until > now
                and record.worker != self.worker
            ):
                acker.retry(message, delay=min(record.lease_until - now, self.lease_s))
                return "deferred"
        # Count attempts on the step record too: some triggers (Pub/Sub through Eventarc
        # without a dead-letter policy) always report a first delivery.
        attempt = max(message.attempts, existing[0].attempt + 1 if existing else 1)
        claim = StepRecord(
            key=key,
            status="running",
            attempt=attempt,
            worker=self.worker,
            started_at=now,
            lease_until=now + self.lease_s,
        )
        try:
            etag = self.store.put_step(run_id, claim, existing[1] if existing else None)
        except PreconditionFailed:
            acker.retry(message, delay=1.0)
            return "deferred"

        policy = self._policy(ctx, step)
        if attempt > policy.max_attempts:
            # Earlier deliveries died mid-step without recording a failure: stop here rather
            # than let a step that kills its worker run forever.
            lost = WorkerLost(
                f"step {key} was started {attempt - 1} time(s) and its worker never "
                "finished (killed, crashed or timed out)"
            )
            return self._fail(ctx, message, acker, run_id, step, claim, etag, lost)

        started = time.perf_counter()
        try:
            outcome = self._execute(ctx, run, step)
        except Exception as exc:  # every failure is recorded, retried or dead-lettered
            return self._fail(ctx, message, acker, run_id, step, claim, etag, exc)
        finished = claim.model_copy(
            update={
                "status": "done",
                "outcome": outcome,
                "finished_at": self.clock(),
                "duration_ms": (time.perf_counter() - started) * 1000,
            }
        )
        try:
            etag = self.store.put_step(run_id, finished, etag)
        except PreconditionFailed:
            # Our lease ran out and another worker took the step over: its result counts.
            acker.ack(message)
            return "superseded"
        self._finish(ctx, run_id, finished, etag)
        acker.ack(message)
        return "done"

    def _finish(self, ctx: RunContext, run_id: str, record: StepRecord, etag: str) -> None:
        """Advance the run with a recorded outcome, send what it added, remember that."""
        outcome = record.outcome if record.outcome is not None else StepOutcome()
        added, run = self._advance(ctx, run_id, record.key, outcome)
        if added is not None:
            for key in added:
                self._send(run, key)
        else:
            # Already advanced by an earlier delivery that may have died before sending:
            # resend what is pending. Duplicates are harmless; lost steps are not.
            self._resend_pending(run)
        with suppress(PreconditionFailed):  # someone else finished the bookkeeping
            self.store.put_step(run_id, record.model_copy(update={"enqueued": True}), etag)

    # ================================================================== execution

    def _execute(self, ctx: RunContext, run: Run, step: StepKey) -> StepOutcome:
        bp = ctx.blueprint
        node = bp.node_map.get(step.node)
        if node is None:
            raise StepFailed(f"node {step.node!r} is not in blueprint {bp.name!r}")
        names = self._names(run)
        if isinstance(node, AgentNode):
            return self._agent_turn(ctx, run, step, node.agent, node.prompt, names)
        if isinstance(node, ToolNode):
            value = ctx.tools.get(node.tool).invoke(_as_args(render_args(node.args, names)))
            return self._complete(ctx, run, step.node, value)
        if isinstance(node, ConditionNode):
            value = compile_expression(node.expression).evaluate(names)
            return self._complete(ctx, run, step.node, value)
        if isinstance(node, JoinNode):
            arrived = run.arrivals.get(node.id, {})
            value = {
                src: self.store.node_output(run.id, src)
                for src in bp.incoming[node.id]
                if arrived.get(src)
            }
            return self._complete(ctx, run, step.node, value)
        if isinstance(node, WaitNode):
            return self._wait(ctx, run, step, node)
        return self._parallel(ctx, run, step, node, names)

    def _complete(
        self, ctx: RunContext, run: Run, unit: str, value: Any, **extra: Any
    ) -> StepOutcome:
        """Record a node's (or fan-out item's) output once and decide its outgoing edges."""
        value = self.store.record_once(self.store.node_key(run.id, unit), value)
        outcome = StepOutcome(output=value, completes=unit, **extra)
        if "[" not in unit:
            outcome.edges = self._edges(ctx, run, unit, value)
        return outcome

    def _edges(self, ctx: RunContext, run: Run, node: str, value: Any) -> dict[str, bool]:
        edges: dict[str, bool] = {}
        names = {**self._names(run), "output": value}
        for edge in ctx.blueprint.outgoing.get(node, []):
            active = True
            if edge.when is not None:
                try:
                    active = bool(compile_expression(edge.when).evaluate(names))
                except ExpressionError as exc:
                    raise StepFailed(f"edge {node} -> {edge.target}: {exc.message}") from None
            edges[edge.target] = edges.get(edge.target, False) or active
        return edges

    def _wait(self, ctx: RunContext, run: Run, step: StepKey, node: WaitNode) -> StepOutcome:
        if step.phase is None:
            deadline = self.clock() + node.timeout_s
            return StepOutcome(
                output={"waiting_for": node.signal, "deadline": deadline},
                wait=Waiting(signal=node.signal, deadline=deadline),
                continue_with=[str(StepKey(node.id, phase="wake"))],
            )
        # The timeout fired before any signal (if a signal won, record_once returns its value).
        timed_out = {"signal": node.signal, "payload": None, "timed_out": True}
        value = self.store.record_once(self.store.node_key(run.id, node.id), timed_out)
        if value == timed_out and node.on_timeout == "fail":
            return StepOutcome(
                output=value,
                fail_run=f"wait node {node.id!r} timed out after {node.timeout_s:g}s "
                f"without signal {node.signal!r}",
            )
        return self._complete(ctx, run, node.id, value)

    def _parallel(
        self, ctx: RunContext, run: Run, step: StepKey, node: ParallelNode, names: dict[str, Any]
    ) -> StepOutcome:
        if step.phase == "gather":
            count = run.fan_out.get(node.id, 0)
            values = [self.store.node_output(run.id, f"{node.id}[{i}]") for i in range(count)]
            return self._complete(ctx, run, node.id, values)
        if step.item is None:
            items = compile_expression(node.for_each).evaluate(names)
            if not isinstance(items, list | tuple):
                raise StepFailed(
                    f"parallel node {node.id!r}: for_each must give a list, "
                    f"got {type(items).__name__}"
                )
            if len(items) > node.max_items:
                raise StepFailed(
                    f"parallel node {node.id!r}: {len(items)} items exceed "
                    f"max_items={node.max_items}"
                )
            agent = node.agent is not None
            keys = [item_key(node.id, i, agent=agent) for i in range(len(items))]
            return StepOutcome(
                output={"items": list(items)},
                fan_out=len(items),
                continue_with=keys or [str(StepKey(node.id, phase="gather"))],
            )
        dispatch = self.store.get_step(run.id, node.id)
        if dispatch is None or dispatch[0].outcome is None:
            raise StepFailed(f"parallel node {node.id!r}: item {step.item} has no dispatch record")
        item = dispatch[0].outcome.output["items"][step.item]
        scoped = {**names, "item": item, "index": step.item}
        if node.agent is not None:
            return self._agent_turn(ctx, run, step, node.agent, node.prompt, scoped)
        assert node.tool is not None
        value = ctx.tools.get(node.tool).invoke(_as_args(render_args(node.args, scoped)))
        return self._complete(ctx, run, step.unit, value)

    def _agent_turn(
        self,
        ctx: RunContext,
        run: Run,
        step: StepKey,
        agent_name: str,
        prompt: str,
        names: Mapping[str, Any],
    ) -> StepOutcome:
        spec: AgentSpec = ctx.blueprint.agents[agent_name]
        turn = step.turn or 0
        if turn == 0:
            text = compile_template(prompt).render(names)
            messages = opening_messages(
                spec, text if isinstance(text, str) else tool_result_text(text)
            )
        else:
            previous = self.store.get_step(run.id, str(step.previous_turn()))
            if previous is None or previous[0].outcome is None:
                raise StepFailed(f"step {step}: the previous turn has no recorded result")
            messages = [Message.model_validate(m) for m in previous[0].outcome.output["messages"]]
        usage = Usage()
        cost = 0.0

        def call_model(request: ChatRequest) -> ChatReply:
            nonlocal usage, cost
            entry = self._model_call(ctx, run, str(step), spec, request)
            if entry.replayed_from is None:
                usage = entry.reply.usage
                cost = entry.cost_usd
            return entry.reply

        def call_tool(index: int, call: ToolCall) -> str:
            key = f"runs/{run.id}/calls/{key_part(str(step))}/{index}.json"
            try:
                return str(self.store.read_json(key))
            except NotFound:
                result = tool_result_text(ctx.tools.get(call.name).invoke(call.arguments))
                return str(self.store.record_once(key, result))

        result = take_turn(
            name=agent_name,
            spec=spec,
            messages=messages,
            tools=ctx.tools.specs(spec.tools) if spec.tools else [],
            turn=turn,
            call_model=call_model,
            call_tool=call_tool,
        )
        recorded = {"messages": [m.model_dump(mode="json") for m in result.messages]}
        if not result.done:
            return StepOutcome(
                output=recorded,
                continue_with=[str(step.next_turn())],
                usage=usage,
                cost_usd=cost,
            )
        outcome = self._complete(ctx, run, step.unit, result.final, usage=usage, cost_usd=cost)
        outcome.output = {**recorded, "final": outcome.output}
        return outcome

    def _model_call(
        self, ctx: RunContext, run: Run, step: str, spec: AgentSpec, request: ChatRequest
    ) -> PromptRecord:
        recorded = self.prompts.get(run.id, step)
        if recorded is not None:  # this step already paid for its call before a crash
            return recorded
        if run.replay_of is not None and not run.live_replay:
            original = self.prompts.get(run.replay_of, step)
            if original is not None and original.request.messages == request.messages:
                return self.prompts.record(
                    original.model_copy(
                        update={
                            "run_id": run.id,
                            "at": self.clock(),
                            "replayed_from": run.replay_of,
                        }
                    )
                )
        model = ctx.model(spec.model)
        model_spec = ctx.blueprint.models[spec.model]
        request = request.model_copy(update={"model": model_spec.model})
        started = time.perf_counter()
        reply = model.chat(request)
        latency = (time.perf_counter() - started) * 1000
        model_name = reply.model or model_spec.model or model.name
        return self.prompts.record(
            PromptRecord(
                run_id=run.id,
                step=step,
                agent=request.agent,
                model=model_name,
                request=request,
                reply=reply,
                latency_ms=latency,
                cost_usd=ctx.prices.cost(model_name, reply.usage),
                at=self.clock(),
            )
        )

    # ================================================================== advancing

    def _advance(
        self, ctx: RunContext, run_id: str, key: str, outcome: StepOutcome
    ) -> tuple[list[str] | None, Run]:
        """Fold one finished step into the run with CAS.

        Returns the step keys the advance added, or None if an earlier delivery already
        advanced (or the run is over).
        """
        bp = ctx.blueprint
        added: list[str] = []
        applied = False

        def change(run: Run) -> bool:
            nonlocal applied
            added.clear()
            applied = False
            if key in run.done or run.status.terminal:
                return False
            applied = True
            run.done.add(key)
            run.pending.discard(key)
            run.steps_run += 1
            run.usage = Usage(
                prompt_tokens=run.usage.prompt_tokens + outcome.usage.prompt_tokens,
                completion_tokens=run.usage.completion_tokens + outcome.usage.completion_tokens,
            )
            run.cost_usd += outcome.cost_usd
            step = StepKey.parse(key)

            def add(k: str) -> None:
                if k not in run.done and k not in run.pending:
                    run.pending.add(k)
                    added.append(k)

            if outcome.fan_out is not None:
                run.fan_out[step.node] = outcome.fan_out
            if outcome.wait is not None:
                run.waiting[step.node] = outcome.wait
            for k in outcome.continue_with:
                add(k)
            if outcome.completes is not None:
                unit = StepKey.parse(outcome.completes)
                if unit.item is not None:
                    run.done.add(outcome.completes)
                    count = run.fan_out.get(unit.node, 0)
                    if all(f"{unit.node}[{i}]" in run.done for i in range(count)):
                        add(str(StepKey(unit.node, phase="gather")))
                else:
                    run.finished.add(unit.node)
                    run.waiting.pop(unit.node, None)
                    wake = str(StepKey(unit.node, phase="wake"))
                    if wake in run.pending:  # a signal beat the timeout job
                        run.pending.discard(wake)
                        run.done.add(wake)
                    for target, active in outcome.edges.items():
                        _arrive(bp, run, target, unit.node, active, add)
            if outcome.fail_run is not None:
                _fail_run(
                    run,
                    RunError(step=key, type="WaitTimeout", message=outcome.fail_run),
                    self.clock(),
                )
            self._settle(ctx, run)
            return True

        run = self.store.update(run_id, change)
        return (list(added) if applied else None), run

    def _settle(self, ctx: RunContext, run: Run) -> None:
        if run.status.terminal:
            return
        if run.pending:
            wakes = all(StepKey.parse(k).phase == "wake" for k in run.pending)
            run.status = RunStatus.waiting if wakes else RunStatus.running
            return
        bp = ctx.blueprint
        try:
            if bp.output is not None:
                run.output = compile_template(bp.output).render(self._names(run))
            else:
                sinks = [
                    n.id for n in bp.nodes if n.id in run.finished and not bp.outgoing.get(n.id)
                ]
                run.output = {n: self.store.node_output(run.id, n) for n in sinks}
        except ExpressionError as exc:
            _fail_run(
                run,
                RunError(step="output", type="ExpressionError", message=exc.message),
                self.clock(),
            )
            return
        run.status = RunStatus.completed
        run.finished_at = self.clock()

    def _fail(
        self,
        ctx: RunContext,
        message: QueueMessage,
        acker: Acker,
        run_id: str,
        step: StepKey,
        claim: StepRecord,
        etag: str,
        exc: Exception,
    ) -> str:
        text = exc.message if isinstance(exc, AgentfnError) else str(exc)
        error = f"{type(exc).__name__}: {text}"
        failed = claim.model_copy(
            update={"status": "failed", "error": error, "finished_at": self.clock()}
        )
        with suppress(PreconditionFailed):  # another worker owns the step now
            self.store.put_step(run_id, failed, etag)
        policy = self._policy(ctx, step)
        retryable = not isinstance(exc, NOT_RETRYABLE)
        attempts = claim.attempt
        if retryable and attempts < policy.max_attempts:
            delay = policy.backoff.delay(attempts)
            log.warning(
                "step failed, retrying",
                extra={
                    "run_id": run_id,
                    "correlation_id": correlation_id.get(),
                    "step": str(step),
                    "error": error,
                    "delay_s": delay,
                },
            )
            acker.retry(message, delay=delay)
            return "retry"
        run_error = RunError(
            step=str(step), type=type(exc).__name__, message=text, attempts=attempts
        )

        def change(run: Run) -> bool:
            if run.status.terminal:
                return False
            _fail_run(run, run_error, self.clock())
            return True

        self.store.update(run_id, change)
        self.queue.dead_letter(message, f"step {step} failed after {attempts} attempt(s): {error}")
        log.error(
            "step dead-lettered",
            extra={
                "run_id": run_id,
                "correlation_id": correlation_id.get(),
                "step": str(step),
                "error": error,
            },
        )
        return "dead"

    # ================================================================== helpers

    @staticmethod
    def _policy(ctx: RunContext, step: StepKey) -> RetryPolicy:
        node = ctx.blueprint.node_map.get(step.node)
        return node.retry if node is not None else RetryPolicy()

    def _context(self, run: Run) -> RunContext:
        with self._lock:
            ctx = self._contexts.get(run.blueprint_key)
            if ctx is None:
                ctx = RunContext(self.store.load_blueprint(run.blueprint_key), self.model_factory)
                self._contexts[run.blueprint_key] = ctx
            return ctx

    def _names(self, run: Run) -> dict[str, Any]:
        return {
            "input": run.input,
            "steps": NodeOutputs(self.store, run),
            "run": {"id": run.id, "workflow": run.workflow},
        }

    def _send(self, run: Run, key: str, *, priority: int = 0) -> None:
        delay = 0.0
        step = StepKey.parse(key)
        if step.phase == "wake" and step.node in run.waiting:
            delay = max(0.0, run.waiting[step.node].deadline - self.clock())
        self.queue.send(step_ready(run.id, key, run.correlation_id), delay=delay, priority=priority)

    def _resend_pending(self, run: Run) -> None:
        if run.status.terminal:
            return
        for key in sorted(run.pending):
            record = self.store.get_step(run.id, key)
            if record is None or record[0].status != "running":
                self._send(run, key)


def _log_fields(run_id: str, step: StepKey) -> dict[str, str]:
    return {"run_id": run_id, "correlation_id": correlation_id.get(), "step": str(step)}


def _is_agent(bp: Blueprint, node: str) -> bool:
    return isinstance(bp.node_map[node], AgentNode)


def _as_args(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StepFailed(f"tool arguments must render to a mapping, got {type(value).__name__}")
    return value


def _fail_run(run: Run, error: RunError, now: float) -> None:
    run.status = RunStatus.failed
    run.error = error
    run.finished_at = now


def _arrive(
    bp: Blueprint, run: Run, target: str, source: str, active: bool, add: Callable[[str], None]
) -> None:
    """Count an edge reaching ``target``; start it, or skip it when every path to it is dead."""
    run.arrivals.setdefault(target, {})[source] = active
    if target in run.started or target in run.skipped:
        return
    arrived = run.arrivals[target]
    complete = len(arrived) == len(set(bp.incoming.get(target, [])))
    if isinstance(bp.node_map[target], JoinNode):
        if not complete:
            return
        start = any(arrived.values())
    elif active:
        start = True
    elif complete and not any(arrived.values()):
        start = False
    else:
        return
    if start:
        run.started.add(target)
        add(entry_key(target, agent=_is_agent(bp, target)))
    else:
        run.skipped.add(target)
        for edge in bp.outgoing.get(target, []):
            _arrive(bp, run, edge.target, target, False, add)
