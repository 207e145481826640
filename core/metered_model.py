"""A tenant's model, counted against its quotas: every real call (not one served from the
prompt log) first waits for the tenant's model-call rate, is refused when the day's tokens
are spent, and adds the tokens it used."""

from __future__ import annotations

from agentfn.errors import QuotaExceeded, StepFailed
from agentfn.ports import ChatReply, ChatRequest, Model
from agentfn.quotas import TenantQuotas


class MeteredModel:
    def __init__(self, inner: Model, quotas: TenantQuotas) -> None:
        self.inner = inner
        self.quotas = quotas
        self.name = inner.name

    def chat(self, request: ChatRequest) -> ChatReply:
        try:
            self.quotas.check_tokens()
        except QuotaExceeded as exc:  # retrying within the day cannot help: fail the step
            raise StepFailed(exc.message) from None
        self.quotas.throttle_model_call()
        reply = self.inner.chat(request)
        self.quotas.add_tokens(reply.usage.total_tokens)
        return reply
