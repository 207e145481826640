"""The job lifecycle: load, claim, execute, record, advance, send, ack.

Nothing here knows a node kind: executing a step is the executor registry's job
(``_executors``), and how an outcome changes the run record is the fold's (``_fold``). This
module owns the order of the writes, so a crash between any two of them is repaired by the
next delivery of the same job.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from typing import Any, Literal

from agentfn.concurrency_keys import ConcurrencySpec, Slots
from agentfn.conversations import Conversations
from agentfn.correlation import bind, correlation_id
from agentfn.delivery import Acker
from agentfn.engine._context import ModelFactory, RunContext, StepContext, expression_names
from agentfn.engine._executors import execute, resume
from agentfn.engine._fold import (
    fail_node,
    fail_run,
    fold,
    gather,
    holds_slot,
    item_completed,
    marker_suffices,
    seed,
    step_agent,
)
from agentfn.engine._renewal import Lease, Renewer
from agentfn.errors import (
    AgentfnError,
    Conflict,
    ModelError,
    NotFound,
    PreconditionFailed,
    StepFailed,
    StepTimeout,
    ToolError,
    TransientModelError,
    UserError,
    WorkerLost,
)
from agentfn.events.cloudevents import job_of, run_finished, run_requested, step_ready
from agentfn.expressions import compile_template
from agentfn.memory import MemoryStore
from agentfn.pii import install_log_masking, masking
from agentfn.ports import Batching, BlobStore, Doorbell, FactSearch, Queue, QueueMessage
from agentfn.prompt_log import PromptLog
from agentfn.quotas import TenantQuotas
from agentfn.replay import ReplayChanges
from agentfn.reply_cache import ReplyCache
from agentfn.resilience import Backoff
from agentfn.runs import (
    Run,
    RunError,
    RunStatus,
    RunStore,
    StepOutcome,
    StepRecord,
    new_run_id,
)
from agentfn.steps import StepKey
from agentfn.telemetry import Observer, Observers, OtelObserver
from agentfn.tenancy import DEFAULT_TENANT, check_tenant
from agentfn.threads import RunThread, check_thread_id
from agentfn.workflows import Blueprint, LoadedBlueprint, RetryPolicy, check_deployment_limits

log = logging.getLogger("agentfn.engine")
events_log = logging.getLogger("agentfn.events")

NOT_RETRYABLE: tuple[type[BaseException], ...] = (StepFailed, UserError, ToolError, ModelError)
"""Failures another attempt would repeat. A model's permanent refusal (an unknown model, a
denied permission) is one; its transient errors (``TransientModelError``) are not."""


def retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransientModelError) or not isinstance(exc, NOT_RETRYABLE)


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
        events: Callable[[dict[str, Any]], None] | None = None,
        delivery_limit: int = 5,
        step_timeout_s: float = 900.0,
        tenant: str = DEFAULT_TENANT,
        engines: Callable[[str], Engine] | None = None,
        quotas: TenantQuotas | None = None,
        masks: Callable[[], bool] | None = None,
        observer: Observer | None = None,
        memory_search: FactSearch | None = None,
    ) -> None:
        # ``blobs`` is this tenant's view of the store: the engine never sees another's keys.
        self.blobs = blobs
        self.tenant = check_tenant(tenant)
        # The engine of another tenant, for a job of that tenant read off the shared queue;
        # without it such a job is dead-lettered, never run against this tenant's records.
        self.engines = engines
        # The tenant's concurrent-runs and tokens-per-day quotas, checked as a run starts.
        self.quotas = quotas
        # Concurrency keys' slots, shared by every worker through the tenant's store.
        self.slots = Slots(blobs, clock=clock)
        # Spans and metrics of runs, steps, model and tool calls (OpenTelemetry by default).
        # Always behind Observers, which keeps a failing observer from breaking a run.
        chosen = observer or OtelObserver()
        self.observer: Observer = chosen if isinstance(chosen, Observers) else Observers(chosen)
        # Deliveries the queue allows before it dead-letters a job on its own
        # (AGENTFN_MAX_ATTEMPTS). The engine ends a job's run itself by the last of them, so a
        # job never leaves through the queue's backstop with its run still "running".
        self.delivery_limit = delivery_limit
        # How long a job that met a transient failure outside its step waits to come back.
        self.contained_backoff = Backoff(base_s=2.0, max_s=60.0)
        self.queue = queue
        self.store = RunStore(blobs, worker=worker)
        # Whether the tenant asks for personal data to be masked in logs and the prompt log.
        self.masks = masks or (lambda: False)
        if masks is not None:
            install_log_masking()
        self.prompts = PromptLog(blobs, masks=self.masks)
        # Replies an agent with `cache_ttl_s` may reuse, in the tenant's store.
        self.replies = ReplyCache(blobs, clock=clock)
        # Threads runs continue, and the facts agents remember (a deployment's search index,
        # if it plugs one in, answers recall queries).
        memory = MemoryStore(blobs, clock=clock, search=memory_search, tenant=self.tenant)
        self.conversations = Conversations(self.store, memory, clock=clock)
        self.model_factory = model_factory
        self.lease_s = lease_s
        self.worker = self.store.worker
        self.clock = clock
        # Run lifecycle events (CloudEvents: run.requested, run.completed, run.failed), one
        # each per run; by default a structured log line on the "agentfn.events" logger.
        self.events = events or log_event
        # The longest a step may run unless its node says less (AGENTFN_STEP_TIMEOUT_S); the
        # stacks set it below their function timeout, so the platform never cuts a step short.
        self.step_timeout_s = step_timeout_s
        self.renewer = Renewer(self.store, lease_s, clock)
        # The queue's batch is entered first, so the store's commits first: a crash between
        # the two leaves the run advanced and its job unacknowledged, which the job's
        # redelivery repairs (the other way round would ack a step never recorded).
        self._batching = [a for a in (queue, blobs) if isinstance(a, Batching)]
        # The run's ending event waits for the commit of the change that ended it.
        self._store_commits = blobs if isinstance(blobs, Batching) else None
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
        actor: str = "engine",
        thread: str | RunThread | None = None,
        thread_ttl_s: float | None = None,
    ) -> Run:
        """Validate the input, record the run, and enqueue its first steps.

        ``actor`` (the API key starting it) is who the audit log names if a quota refuses it.
        ``thread`` continues a conversation (its id; a replay passes its original's mark);
        ``thread_ttl_s`` sets how long the thread lives after this run's messages are added.
        """
        bp = loaded.blueprint
        self.check_limits(bp)
        values = bp.bind_inputs(given)
        if isinstance(thread, str):
            check_thread_id(thread)
        if thread_ttl_s is not None and thread_ttl_s <= 0:
            raise UserError("thread_ttl_s: must be more than 0 seconds", field="thread_ttl_s")
        now = self.clock()
        run_id = new_run_id(now)
        if self.quotas is not None:
            self.quotas.check_tokens(actor)
            self.quotas.admit_run(run_id, self._running, actor)
        mark: RunThread | None = None
        if isinstance(thread, str):
            mark = self.conversations.begin(thread, run_id, ttl_s=thread_ttl_s)
        elif thread is not None:  # a replay: same history, and it goes with the thread
            mark = thread
            self.conversations.mark(thread.id, run_id)
        with self._batch():
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
                thread=mark,
            )
            first = seed(run, bp)
            self.store.create(run)
            for key in sorted(first):
                self._send(run, key, priority=priority)
        bind(run.correlation_id)
        log.info("run started", extra={"run_id": run.id, "correlation_id": run.correlation_id})
        self.events(run_requested(run.id, run.workflow, run.correlation_id))
        self.observer.run_started(run, self.tenant)
        return run

    def run(self, run_id: str) -> Run:
        """A run as users see it: one that went with its expired thread is not found."""
        run = self.store.get(run_id)
        if not self.conversations.visible(run):
            raise NotFound(f"run {run_id!r} not found", field="run_id")
        return run

    def runs(self, *, cursor: str | None = None, limit: int = 50) -> tuple[list[Run], str | None]:
        """A page of runs, newest first, as users see them (see ``run``)."""
        page, next_cursor = self.store.list_runs(cursor=cursor, limit=limit)
        swept: dict[str, bool] = {}
        return [r for r in page if self.conversations.visible(r, swept)], next_cursor

    def _running(self, run_id: str) -> bool:
        try:
            return not self.store.get(run_id).status.terminal
        except NotFound:
            return False

    def check_limits(self, bp: Blueprint) -> None:
        """What the blueprint asks must fit this deployment (see ``check_deployment_limits``)."""
        check_deployment_limits(
            bp, delivery_limit=self.delivery_limit, step_timeout_s=self.step_timeout_s
        )

    def replay(
        self,
        run_id: str,
        *,
        live: bool = False,
        actor: str = "engine",
        changes: ReplayChanges | None = None,
    ) -> Run:
        """Run again with the same blueprint snapshot and input.

        Model calls are served from the original run's prompt log where the conversation is
        identical (so a replay is deterministic and free), unless ``live`` asks for new calls.
        ``changes`` (another model, temperature, instructions) always call the models again.
        """
        original = self.run(run_id)
        loaded = self.store.load_blueprint(original.blueprint_key)
        if changes is not None and changes.any:
            loaded, live = changes.apply(loaded), True
        return self.start(
            loaded,
            original.input,
            replay_of=original.id,
            live=live,
            actor=actor,
            thread=original.thread,  # the same history; a replay adds nothing to the thread
        )

    def cancel(self, run_id: str) -> Run:
        def change(run: Run) -> bool:
            if run.status.terminal:
                raise Conflict(f"run {run_id!r} is already {run.status.value}")
            run.status = RunStatus.cancelled
            run.finished_at = self.clock()
            return True

        run = self.store.update(run_id, change)
        self._release_run(run)
        self.observer.run_ended(run, self.tenant)
        return run

    def signal(self, run_id: str, name: str, payload: Any = None) -> Run:
        """Deliver a named signal to a run parked on a wait node."""
        current = self.store.read(run_id)
        run = current[0]
        if run.status.terminal:
            raise Conflict(f"run {run_id!r} is already {run.status.value}")
        nodes = [n for n, w in sorted(run.waiting.items()) if w.signal == name]
        if not nodes:
            raise Conflict(f"run {run_id!r} is not waiting for signal {name!r}", field="name")
        ctx = self._context(run)
        wake = StepKey(nodes[0], phase="wake")
        outcome = resume(self._step_context(ctx, run, wake), name, payload)
        with self._batch():
            added, run = self._advance(ctx, run_id, str(wake), outcome, current)
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
        """Receive and handle jobs until ``stop()``; returns how many were handled.

        An idle worker looks at the queue (and at ``stop``) every ``poll_s``; where the queue
        has a doorbell it sleeps on it in between, woken as soon as a job is sent, so
        ``poll_s`` bounds only how long ``stop`` takes, not how long a new job waits.
        """
        handled = 0
        doorbell = self.queue if isinstance(self.queue, Doorbell) else None
        while not stop():
            messages = self._receive(batch)
            if not messages:
                if doorbell is not None:
                    doorbell.wait(poll_s)
                else:
                    time.sleep(poll_s)
                continue
            for message in messages:
                self.handle(message)
                handled += 1
        return handled

    def _receive(self, batch: int) -> list[QueueMessage]:
        """Receive, surviving a queue that fails for a while (a locked or full disk)."""
        try:
            return self.queue.receive(batch, visibility_timeout=self.lease_s)
        except Exception as exc:  # the worker outlives its queue's bad moments
            log.error("cannot receive jobs: %s: %s", type(exc).__name__, exc)
            return []

    def handle(self, message: QueueMessage, acker: Acker | None = None) -> str:
        """Handle one delivered job; acks, retries or dead-letters it. Returns what happened.

        ``acker`` settles the message; by default the engine's queue. Triggered functions pass
        a :class:`agentfn.delivery.TriggerAcker`, because their platform deletes a message when the
        function succeeds and redelivers it when it fails. Nothing a message causes escapes:
        a failure outside a step (a corrupt record, a full disk, a bug) is contained here.
        """
        acker = acker or self.queue
        token = masking.set(self._masks_safely())
        try:
            return self._handle(message, acker)
        except Exception as exc:
            return self._contain(message, acker, exc)
        finally:
            masking.reset(token)

    def _masks_safely(self) -> bool:
        """Mask when the tenant asks, and when its settings cannot be read (fail closed)."""
        try:
            return self.masks()
        except Exception:
            return True

    def _contain(self, message: QueueMessage, acker: Acker, exc: Exception) -> str:
        """Retry a job that failed for a transient reason (the disk, the network) while the
        queue still delivers it; otherwise end its run as failed and dead-letter it."""
        body = job_of(message.body) if isinstance(message.body, dict) else {}
        run_id, key = body.get("run"), body.get("step")
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        log.error(
            "job could not be handled",
            exc_info=exc,
            extra={"run_id": run_id, "step": key, "error": reason, "attempts": message.attempts},
        )
        if isinstance(exc, OSError) and message.attempts < self.delivery_limit:
            with suppress(Exception):
                acker.retry(message, delay=self.contained_backoff.delay(message.attempts))
                return "retry"
        if isinstance(run_id, str):
            with suppress(Exception):  # the run's own record may be what is broken
                self._end_run(run_id, str(key), type(exc).__name__, reason, message.attempts)
        with suppress(Exception):  # else the queue redelivers it and its backstop ends it
            acker.dead_letter(message, reason)
        return "dead"

    def _hand_over(self, message: QueueMessage, acker: Acker, tenant: object) -> str:
        """A job of another tenant goes to that tenant's engine (the queue is shared)."""
        try:
            name = check_tenant(tenant, "tenant")
        except UserError as exc:
            acker.dead_letter(message, f"malformed job: {exc}")
            return "dead"
        if self.engines is None:
            reason = f"job of tenant {name!r}: this worker serves only {self.tenant!r}"
            acker.dead_letter(message, reason)
            return "dead"
        return self.engines(name).handle(message, acker)

    def _end_run(self, run_id: str, step: str, kind: str, reason: str, attempts: int) -> None:
        error = RunError(step=step, type=kind, message=reason, attempts=attempts)

        def change(run: Run) -> bool:
            if run.status.terminal:
                return False
            fail_run(run, error, self.clock())
            return True

        self._ended(self.store.update(run_id, change))

    def _handle(self, message: QueueMessage, acker: Acker) -> str:
        body = job_of(message.body)
        bind(str(body.get("cid", "")))
        run_id, key = body.get("run"), body.get("step")
        if not isinstance(run_id, str) or not isinstance(key, str):
            acker.dead_letter(message, "malformed job: needs string fields 'run' and 'step'")
            return "dead"
        tenant = body.get("tenant", DEFAULT_TENANT)
        if tenant != self.tenant:
            return self._hand_over(message, acker, tenant)
        try:
            current = self.store.read(run_id)
            step = StepKey.parse(key)
        except (NotFound, UserError) as exc:
            acker.dead_letter(message, f"{type(exc).__name__}: {exc}")
            return "dead"
        run = current[0]
        if run.status.terminal:
            acker.ack(message)
            return "skipped"
        ctx = self._context(run)
        if key not in run.pending:
            # Folded already: a redelivery. The delivery that folded it may have died before
            # sending what its advance added (or marking its fan-out item), so that is done
            # again (duplicates are harmless; a lost step is not). A wake a signal folded has
            # no record: nothing.
            folded = self.store.get_step(run_id, key)
            with self._batch():
                if folded is not None and folded[0].status == "done":
                    self._finish(ctx, run_id, folded[0], current)  # resends; marks an item
                acker.ack(message)
            return "duplicate"
        specs = concurrency_of(ctx.blueprint, step)
        if not specs:
            return self._observed_step(ctx, message, acker, current, key, step)
        holder = f"{run_id}/{key}"
        if not self.slots.acquire(specs, holder, self._timeout(ctx, step) + self.lease_s):
            return self._wait_for_slot(message, acker)
        try:
            return self._observed_step(ctx, message, acker, current, key, step)
        finally:
            for spec in specs:
                try:
                    self.slots.release(spec.key, holder)
                except Exception as exc:  # the slot frees itself when its hold runs out
                    log.error("cannot give back a slot of %r: %s", spec.key, exc)

    def _observed_step(
        self,
        ctx: RunContext,
        message: QueueMessage,
        acker: Acker,
        current: tuple[Run, str],
        key: str,
        step: StepKey,
    ) -> str:
        with self.observer.step(current[0], key, message.attempts, self.tenant) as watch:
            outcome = self._run_step(ctx, message, acker, current, key, step)
            watch.outcome(outcome)
        return outcome

    def _wait_for_slot(self, message: QueueMessage, acker: Acker) -> str:
        """Every slot of one of the step's concurrency keys is taken: the job comes back in
        about a second as a new message (a redelivery would count an attempt)."""
        with self._batch():
            delay = random.uniform(0.5, 1.5)  # not all waiting jobs at once
            self.queue.send(message.body, delay=delay, priority=message.priority)
            acker.ack(message)
        return "waiting"

    def _run_step(
        self,
        ctx: RunContext,
        message: QueueMessage,
        acker: Acker,
        current: tuple[Run, str],
        key: str,
        step: StepKey,
    ) -> str:
        """Claim the step, run it, record what it did and advance the run."""
        run = current[0]
        run_id = run.id
        now = self.clock()
        claim = StepRecord(
            key=key,
            status="running",
            attempt=message.attempts,
            worker=self.worker,
            started_at=now,
            lease_until=now + self.lease_s,
        )
        existing: tuple[StepRecord, str] | None = None
        try:  # the common case first: nobody has touched this step, one write claims it
            etag = self.store.put_step(run_id, claim, None)
        except PreconditionFailed:
            existing = self.store.get_step(run_id, key)
            if existing is None:  # deleted under us: let the next delivery look again
                acker.retry(message, delay=1.0)
                return "deferred"
            record, etag = existing
            if record.status == "done" and record.outcome is not None:
                # Recorded, then the worker died before the advance: finish it from the record.
                with self._batch():
                    self._finish(ctx, run_id, record, current)
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
            claim.attempt = max(message.attempts, record.attempt + 1)
            try:
                etag = self.store.put_step(run_id, claim, etag)
            except PreconditionFailed:
                acker.retry(message, delay=1.0)
                return "deferred"
        attempt = claim.attempt

        policy = self._policy(ctx, step)
        abandoned = existing is not None and existing[0].status == "running"
        if attempt > policy.max_attempts or (abandoned and attempt >= self.delivery_limit):
            # Earlier deliveries died mid-step without recording a failure: stop here rather
            # than let a step that kills its worker run forever.
            lost = WorkerLost(
                f"step {key} was started {attempt - 1} time(s) and its worker never "
                "finished (killed, crashed or timed out)"
            )
            return self._fail(ctx, message, acker, run_id, step, claim, etag, lost)

        timeout_s = self._timeout(ctx, step)
        lease = Lease(run_id, claim, etag, message, acker, deadline=now + timeout_s)
        handle = self.renewer.hold(lease)
        started = time.perf_counter()
        try:
            outcome = self._execute(ctx, run, step)
        except Exception as exc:  # every failure is recorded, retried or dead-lettered
            self.renewer.release(handle)
            return self._fail(ctx, message, acker, run_id, step, lease.record, lease.etag, exc)
        self.renewer.release(handle)
        claim, etag = lease.record, lease.etag
        ran_s = self.clock() - now
        if ran_s > timeout_s:
            late = StepTimeout(
                f"step {key} ran {ran_s:.1f} s, longer than its timeout of {timeout_s:g} s"
            )
            return self._fail(ctx, message, acker, run_id, step, claim, etag, late)
        finished = claim.model_copy(
            update={
                "status": "done",
                "outcome": outcome,
                "finished_at": self.clock(),
                "duration_ms": (time.perf_counter() - started) * 1000,
            }
        )
        with self._batch():  # where the adapters allow it, everything below is one commit
            try:
                self.store.put_step(run_id, finished, etag)
            except PreconditionFailed:
                # Our lease ran out and another worker took the step over: its result counts.
                acker.ack(message)
                return "superseded"
            self._finish(ctx, run_id, finished, current)
            acker.ack(message)
        return "done"

    def _finish(
        self, ctx: RunContext, run_id: str, record: StepRecord, current: tuple[Run, str]
    ) -> None:
        """Store the node output a recorded step completed, advance the run with its outcome,
        and send what the advance added.

        ``current`` is the run as this job read it: when it was the only step in flight, the
        advance's first compare-and-swap tries it, so a step of a sequential run reads its
        run once. A step completing a fan-out
        item that adds nothing to the run only marks the item (see ``_item_done``).
        """
        outcome = record.outcome if record.outcome is not None else StepOutcome()
        if outcome.completes is not None:
            self.store.put_node_output(run_id, outcome.completes, outcome.output)
        item = item_completed(outcome)
        folds = not marker_suffices(outcome) or holds_slot(ctx.blueprint, record.key)
        if item is None or folds:
            # Steps in flight beside this one have most likely changed the record since the
            # job read it: a fresh read beats a compare-and-swap that fails, then reads.
            fresh = current if len(current[0].pending) <= 1 else None
            added, run = self._advance(ctx, run_id, record.key, outcome, fresh)
            if added is None:
                # Already advanced by an earlier delivery that may have died before sending:
                # resend what is pending. Duplicates are harmless; lost steps are not.
                self._resend_pending(run)
                if item is None:
                    return
            for key in added or []:
                self._send(run, key)
            if item is None:
                return
            # Fresher than what the job read, but its etag is not at hand: the gather's
            # compare-and-swap reads the record again.
            self._item_done(run_id, item, run, None)
            return
        self._item_done(run_id, item, *current)

    def _item_done(self, run_id: str, item: StepKey, run: Run, etag: str | None) -> None:
        """Mark a fan-out item done; the arrival that finds every item marked adds the gather.

        Items never rewrite the run record one by one (a compare-and-swap hot spot on an
        object store, where each attempt takes tens of ms): each writes its own marker, then
        counts the markers with one listing. Markers are written after the item's record (and
        its fold, if it had one), so whoever counts them all sees every item accounted for.
        """
        self.store.mark_item(run_id, item.unit)
        expected = run.fan_out.get(item.node, 0)
        if self.store.items_marked(run_id, item.node) + run.items_done.get(item.node, 0) < expected:
            return
        added: list[str] | None = None

        def change(run: Run) -> bool:
            nonlocal added
            added = gather(run, item.node, now=self.clock())
            return added is not None

        run = self.store.update(run_id, change, current=(run, etag) if etag else None)
        for key in added or []:
            self._send(run, key)

    # ================================================================== execution

    def _execute(self, ctx: RunContext, run: Run, step: StepKey) -> StepOutcome:
        """Execute one step with the executor registered for its node's kind."""
        return execute(self._step_context(ctx, run, step))

    def _step_context(self, ctx: RunContext, run: Run, step: StepKey) -> StepContext:
        return StepContext(
            run=run,
            step=step,
            context=ctx,
            store=self.store,
            prompts=self.prompts,
            replies=self.replies,
            conversations=self.conversations,
            clock=self.clock,
            observer=self.observer,
        )

    # ================================================================== advancing

    def _advance(
        self,
        ctx: RunContext,
        run_id: str,
        key: str,
        outcome: StepOutcome,
        current: tuple[Run, str] | None = None,
    ) -> tuple[list[str] | None, Run]:
        """Fold one finished step into the run with CAS.

        Returns the step keys the advance added, or None if an earlier delivery already
        advanced (or the run is over).
        """
        added: list[str] | None = None

        def change(run: Run) -> bool:
            nonlocal added
            now = self.clock()
            added = fold(run, ctx.blueprint, key, outcome, now=now)
            if added is None:
                return False
            if run.status is RunStatus.completed:  # this step completed the run
                self._render_output(ctx, run, now)
            return True

        run = self.store.update(run_id, change, current=current)
        if run.thread is not None and run.status is RunStatus.completed:
            # Every delivery that finds the run completed appends (the thread keeps one copy),
            # so a worker dying between the two writes loses nothing.
            self.conversations.finish(run)
        if added is not None:
            self._ended(run)
        return added, run

    def _ended(self, run: Run) -> None:
        """Emit run.completed / run.failed if the change just applied ended the run, and give
        its concurrent-runs slot back."""
        if run.status.terminal:
            self._release_run(run)
            self._after_commit(functools.partial(self.observer.run_ended, run, self.tenant))
        if run.status in (RunStatus.completed, RunStatus.failed):
            status: Literal["completed", "failed"] = (
                "completed" if run.status is RunStatus.completed else "failed"
            )
            error = run.error.message if run.error is not None else None
            event = run_finished(run.id, run.workflow, status, run.correlation_id, error)
            if self._store_commits is not None:  # after the commit; never if it rolls back
                self._store_commits.after_commit(functools.partial(self.events, event))
            else:
                self.events(event)

    def _after_commit(self, fn: Callable[[], None]) -> None:
        if self._store_commits is not None:  # never for a change that rolls back
            self._store_commits.after_commit(fn)
        else:
            fn()

    def _release_run(self, run: Run) -> None:
        quotas = self.quotas
        if quotas is None:
            return
        if self._store_commits is not None:  # after the commit that ended it
            self._store_commits.after_commit(functools.partial(quotas.release_run, run.id))
        else:
            quotas.release_run(run.id)

    def _render_output(self, ctx: RunContext, run: Run, now: float) -> None:
        """Set a completed run's ``output``; a template that fails to render fails the run."""
        bp = ctx.blueprint
        try:
            if bp.output is not None:
                run.output = compile_template(bp.output).render(self._names(run))
            else:
                sinks = [
                    n.id for n in bp.nodes if n.id in run.finished and not bp.outgoing.get(n.id)
                ]
                run.output = {n: self.store.node_output(run.id, n) for n in sinks}
        except Exception as exc:  # any failure of the output fails the run, never the worker
            text = exc.message if isinstance(exc, AgentfnError) else str(exc)
            fail_run(run, RunError(step="output", type=type(exc).__name__, message=text), now)

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
        attempts = claim.attempt
        deliverable = message.attempts < self.delivery_limit  # else the queue drops it
        if retryable(exc) and attempts < policy.max_attempts and deliverable:
            delay = policy.backoff.delay(attempts)
            log.warning(
                "step %s of run %s failed (attempt %d of %d), retrying in %.1fs: %s",
                step,
                run_id,
                attempts,
                policy.max_attempts,
                delay,
                error,
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

        node = ctx.blueprint.node_map.get(step.node)
        keep_going = node is not None and node.on_failure == "continue"
        changed = False
        added: list[str] | None = None

        def change(run: Run) -> bool:
            nonlocal changed, added
            now = self.clock()
            if keep_going:
                added = fail_node(run, ctx.blueprint, str(step), run_error, now=now)
                changed = added is not None
                if changed and run.status is RunStatus.completed:
                    self._render_output(ctx, run, now)
            else:
                changed = not run.status.terminal
                if changed:
                    fail_run(run, run_error, now)
            return changed

        run = self.store.update(run_id, change)
        for key in added or []:
            self._send(run, key)
        if changed:
            self._ended(run)
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

    def _timeout(self, ctx: RunContext, step: StepKey) -> float:
        node = ctx.blueprint.node_map.get(step.node)
        own = node.step_timeout_s if node is not None else None
        return min(own, self.step_timeout_s) if own is not None else self.step_timeout_s

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
        return expression_names(self.store, run)

    def _send(self, run: Run, key: str, *, priority: int = 0) -> None:
        delay = 0.0
        step = StepKey.parse(key)
        if step.phase == "wake" and step.node in run.waiting:
            delay = max(0.0, run.waiting[step.node].deadline - self.clock())
        job = step_ready(run.id, key, run.correlation_id, self.tenant)
        self.queue.send(job, delay=delay, priority=priority)

    @contextmanager
    def _batch(self) -> Iterator[None]:
        """The store's and the queue's writes inside commit together where they can
        (``Batching``: one SQLite commit, one fsync); elsewhere each commits on its own, in
        the same order, and a crash between two is repaired by the job's next delivery."""
        with ExitStack() as stack:
            for adapter in self._batching:
                stack.enter_context(adapter.batch())
            yield

    def _resend_pending(self, run: Run) -> None:
        if run.status.terminal:
            return
        held = set(run.held)  # waiting for an agent's slot: sent when one frees up
        for key in sorted(run.pending - held):
            record = self.store.get_step(run.id, key)
            if record is None or record[0].status != "running":
                self._send(run, key)


def concurrency_of(bp: Blueprint, step: StepKey) -> list[ConcurrencySpec]:
    """The concurrency keys step ``step`` runs under: its workflow's and its agent's."""
    specs = [bp.concurrency] if bp.concurrency is not None else []
    agent = step_agent(bp, step)
    spec = bp.agents.get(agent) if agent is not None else None
    if spec is not None and spec.concurrency is not None:
        specs.append(spec.concurrency)
    return specs


def log_event(event: dict[str, Any]) -> None:
    """The default sink: one JSON log line per lifecycle event, with its correlation id."""
    events_log.info(
        event["type"],
        extra={"event": event, "correlation_id": event["data"].get("cid", "")},
    )
