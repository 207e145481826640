"""Runs on a thread: where a run's agents start from, what a finished run adds, and deleting a
thread everywhere.

A run that names a thread records how far the thread went when it started (``RunThread``); its
agent nodes' first turns start from those messages, cut to each agent's token budget (the
oldest dropped, or summarised by the agent the blueprint names). When the run completes, each
agent node's prompt and final answer are appended, once however often the completion is
redelivered. The runs that used a thread are marked under ``thread-runs/<thread>/``, so
deleting the thread (or finding it expired) also deletes what holds its messages: those runs
(records, steps, prompt log; their totals stay in the tenant's ledger) and the facts
remembered in it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from agentfn.errors import Conflict, NotFound
from agentfn.memory import MemoryStore
from agentfn.ports import Message
from agentfn.runs import Run, RunStatus, RunStore, iter_keys
from agentfn.threads import RunThread, Thread, ThreadStore, check_thread_id

MARKS = "thread-runs/"
SUMMARY_STEP = "/summary"
"""Appended to a turn's step key: the prompt-log entry of the summary that turn started from."""


def message_tokens(message: Message) -> int:
    """A provider-neutral estimate (four characters a token, plus a few for the role): a
    budget, not a bill."""
    return 4 + math.ceil(len(message.content or "") / 4)


def fit_history(
    history: Sequence[Message], budget_tokens: int
) -> tuple[list[Message], list[Message]]:
    """The newest messages that fit ``budget_tokens`` and start with a user message (each
    provider wants a conversation to open with one), and the older ones dropped."""
    kept = 0
    spent = 0
    for message in reversed(history):
        spent += message_tokens(message)
        if spent > budget_tokens:
            break
        kept += 1
    start = len(history) - kept
    while start < len(history) and history[start].role != "user":
        start += 1
    return list(history[start:]), list(history[:start])


def transcript(messages: Sequence[Message]) -> str:
    """Messages as text for a summariser: one ``role: content`` paragraph each."""
    return "\n\n".join(f"{m.name or m.role}: {m.content or ''}" for m in messages)


class Conversations:
    """One tenant's threads, as its runs use them (``store`` is the tenant's run store)."""

    def __init__(
        self,
        store: RunStore,
        memory: MemoryStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.blobs = store.blobs
        self.memory = memory
        self.threads = ThreadStore(self.blobs, clock=clock, on_delete=self._purge)

    def begin(self, thread_id: str, run_id: str, *, ttl_s: float | None = None) -> RunThread:
        """Where a new run on ``thread_id`` starts from; marks the run as one of the thread's."""
        check_thread_id(thread_id)
        try:
            thread = self.threads.get(thread_id)
            mark = RunThread(
                id=thread_id, created_at=thread.created_at, upto=thread.appended, ttl_s=ttl_s
            )
        except NotFound:
            mark = RunThread(id=thread_id, ttl_s=ttl_s)
        self.mark(mark.id, run_id)
        return mark

    def mark(self, thread_id: str, run_id: str) -> None:
        """Count ``run_id`` among the thread's runs (a replay's too: its prompts hold the
        thread), so it goes when the thread does."""
        self.blobs.put(f"{MARKS}{check_thread_id(thread_id)}/{run_id}", b"")

    def history(self, mark: RunThread) -> list[Message]:
        """The messages the run's agents start from: the thread as the run found it (none if it
        has been deleted, has expired or was started afresh since)."""
        if mark.created_at is None or mark.upto == 0:
            return []
        try:
            thread = self.threads.get(mark.id)
        except NotFound:
            return []
        if thread.created_at != mark.created_at:
            return []
        return thread.messages[: max(0, mark.upto - thread.trimmed)]

    def finish(self, run: Run) -> Thread | None:
        """Append a completed run's exchanges to its thread (a replay adds nothing). Safe to
        repeat: the thread remembers the runs it has."""
        mark = run.thread
        if mark is None or run.replay_of is not None or run.status is not RunStatus.completed:
            return None
        said = [
            (s.finished_at or s.started_at, s.key, s.outcome.exchange)
            for s in self.store.steps(run.id)
            if s.outcome is not None and s.outcome.exchange
        ]
        said.sort(key=lambda found: found[:2])
        added = [Message.model_validate(m) for _, _, exchange in said for m in exchange]
        return self.threads.append(mark.id, added, ttl_s=mark.ttl_s, run_id=run.id)

    def get(self, thread_id: str) -> Thread:
        return self.threads.get(thread_id)

    def visible(self, run: Run, swept: dict[str, bool] | None = None) -> bool:
        """Whether an ended run still stands: one whose thread has expired goes with it, found
        as it is read (nothing sweeps between requests). ``swept`` remembers each thread's
        answer across a listing."""
        mark = run.thread
        if mark is None or not run.status.terminal:
            return True
        seen = {} if swept is None else swept
        if mark.id not in seen:
            seen[mark.id] = self.threads.sweep(mark.id)
        return not seen[mark.id]

    def runs(self, thread_id: str) -> list[str]:
        """The runs that used the thread (and are not yet purged with it), oldest first."""
        prefix = f"{MARKS}{check_thread_id(thread_id)}/"
        return [k[len(prefix) :] for k in iter_keys(self.blobs, prefix)]

    def delete(self, thread_id: str) -> list[str]:
        """Delete a thread everywhere; refused while a run on it is still going (its
        completion would bring the messages back). Returns the runs deleted with it;
        ``NotFound`` when there is nothing of the thread to delete."""
        runs = self.runs(thread_id)
        try:
            self.threads.get(thread_id)
        except NotFound:
            if not runs:
                raise
        for run_id in runs:
            try:
                run = self.store.get(run_id)
            except NotFound:
                continue
            if not run.status.terminal:
                raise Conflict(
                    f"thread {thread_id}: run {run_id} on it is {run.status.value}; cancel it "
                    "or let it end before deleting the thread",
                    field="thread",
                )
        self.threads.delete(thread_id)
        return runs

    def _purge(self, thread_id: str) -> None:
        """Remove what holds the thread's messages outside its record. A run still going (met
        when the thread expires) stays, with its mark, for a later delete."""
        self.memory.forget_thread(thread_id)
        for run_id in self.runs(thread_id):
            try:
                if not self.store.get(run_id).status.terminal:
                    continue
            except NotFound:
                pass  # a delete cut short: finish it
            self.store.delete(run_id)
            self.blobs.delete(f"{MARKS}{thread_id}/{run_id}")
