"""The prompt log: every model call a run makes, with inputs, outputs, usage and latency.

Each entry is keyed by the step that made the call and written with put_if_absent. That makes
the log double as the memo of model calls: a step re-executed after a crash reuses the recorded
reply instead of paying (and sampling) again, and a replay can serve a run's recorded replies.

For a tenant that masks personal data the entry is stored masked (``masked``): it records what
happened, but it is no memo — a masked reply would feed the agent tags instead of its data — so
a re-executed step or a replay calls the model again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pydantic import BaseModel

from agentfn.errors import NotFound, PreconditionFailed
from agentfn.pii import mask_value
from agentfn.ports import BlobStore, ChatReply, ChatRequest
from agentfn.runs import iter_keys, key_part


class PromptRecord(BaseModel):
    run_id: str
    step: str
    agent: str | None
    model: str
    request: ChatRequest
    reply: ChatReply
    latency_ms: float
    cost_usd: float
    at: float
    replayed_from: str | None = None
    masked: bool = False
    cached: bool = False
    """Answered from the model-reply cache: no call made, no tokens, no cost."""
    thread: str | None = None
    """The thread the run continued: its request holds that thread's messages, so the entry
    goes when the thread is deleted."""

    @property
    def reusable(self) -> bool:
        """Whether the reply can stand in for a new call (see the module docstring)."""
        return not self.masked

    def masked_copy(self) -> PromptRecord:
        request = ChatRequest.model_validate(mask_value(self.request.model_dump(mode="json")))
        reply = ChatReply.model_validate(mask_value(self.reply.model_dump(mode="json")))
        return self.model_copy(update={"request": request, "reply": reply, "masked": True})


class PromptLog:
    def __init__(self, blobs: BlobStore, *, masks: Callable[[], bool] = lambda: False) -> None:
        self.blobs = blobs
        self.masks = masks  # whether the tenant asks for personal data to be masked

    @staticmethod
    def key(run_id: str, step: str) -> str:
        return f"runs/{run_id}/prompts/{key_part(step)}.json"

    def get(self, run_id: str, step: str) -> PromptRecord | None:
        try:
            return PromptRecord.model_validate_json(self.blobs.get(self.key(run_id, step)).data)
        except NotFound:
            return None

    def record(self, entry: PromptRecord) -> PromptRecord:
        """Store ``entry`` unless the step already logged a call; return the one that counts."""
        stored = entry.masked_copy() if self.masks() else entry
        try:
            self.blobs.put_if_absent(
                self.key(entry.run_id, entry.step), stored.model_dump_json().encode()
            )
            return entry
        except PreconditionFailed:
            existing = self.get(entry.run_id, entry.step)
            return existing if existing is not None and existing.reusable else entry

    def entries(self, run_id: str) -> Iterator[PromptRecord]:
        for key in iter_keys(self.blobs, f"runs/{run_id}/prompts/"):
            yield PromptRecord.model_validate_json(self.blobs.get(key).data)
