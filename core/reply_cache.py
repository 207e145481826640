"""The model-reply cache: a request identical in model, messages, tools and settings, asked at
temperature 0, is answered from an earlier reply instead of the model — opt-in per agent
(``cache_ttl_s``), per tenant (it lives in the tenant's view of the store), for a while.

The key is a hash of the request as the provider would see it (the model spec's provider,
model and endpoint with the request's messages, tools and temperature), so a change to any of
them is a different entry. A hit costs nothing: its reply carries zero tokens, and the prompt
log marks it (``cached``), so a replay of the run serves it again as recorded.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from contextlib import suppress

from pydantic import BaseModel, ValidationError

from agentfn.errors import NotFound
from agentfn.model_spec import ModelSpec
from agentfn.ports import BlobStore, ChatReply, ChatRequest

PREFIX = "reply-cache/"


class CachedReply(BaseModel):
    reply: ChatReply
    saved_at: float
    expires_at: float


def cacheable(request: ChatRequest, spec: ModelSpec) -> bool:
    """Only a deterministic request may be answered twice the same: temperature 0."""
    temperature = request.temperature if request.temperature is not None else spec.temperature
    return temperature == 0


class ReplyCache:
    def __init__(self, blobs: BlobStore, *, clock: Callable[[], float] = time.time) -> None:
        self.blobs = blobs
        self.clock = clock

    def get(self, request: ChatRequest, spec: ModelSpec) -> ChatReply | None:
        key = self.key(request, spec)
        try:
            data = self.blobs.get(key).data
        except NotFound:
            return None
        try:
            entry = CachedReply.model_validate_json(data)
        except ValidationError:  # a torn or foreign entry is a miss, and is replaced
            return None
        if entry.expires_at <= self.clock():
            with suppress(NotFound):
                self.blobs.delete(key)
            return None
        return entry.reply

    def put(self, request: ChatRequest, spec: ModelSpec, reply: ChatReply, ttl_s: float) -> None:
        now = self.clock()
        entry = CachedReply(reply=reply, saved_at=now, expires_at=now + ttl_s)
        self.blobs.put(self.key(request, spec), entry.model_dump_json().encode())

    @staticmethod
    def key(request: ChatRequest, spec: ModelSpec) -> str:
        asked = {
            "provider": spec.provider,
            "model": request.model or spec.model,
            "endpoint": spec.base_url,
            "region": spec.region,
            "messages": [m.model_dump(mode="json") for m in request.messages],
            "tools": [t.model_dump(mode="json") for t in request.tools],
            "temperature": 0,
        }
        digest = hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()
        return f"{PREFIX}{digest}.json"
