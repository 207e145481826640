"""How a blueprint names the model an agent talks to.

Kept in core (no SDK imports) so blueprints can be validated without any provider installed;
``agentfn.adapters.models.factory.build_model`` turns a spec into a live ``Model``.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ModelSpec(BaseModel):
    """Provider, model name and resilience settings of one model.

    ``scripted`` is the deterministic rule-file model for demos and tests; ``openai`` speaks the
    Chat Completions API (OpenAI, Azure OpenAI v1, vLLM, Ollama via ``base_url``).
    """

    model_config = ConfigDict(extra="forbid")

    provider: Literal["scripted", "openai"]
    model: str | None = None
    """Model name sent to the API and reported in replies."""
    rules: str | None = None
    """Scripted rule file, relative to the blueprint's folder."""
    base_url: str | None = None
    api_key_secret: str = "OPENAI_API_KEY"
    """Name of the secret in the ``SecretStore`` (never the key itself)."""
    timeout_s: float = Field(default=60, gt=0)
    max_retries: int = Field(default=3, ge=1)
    """Total attempts per call, the first one included."""
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=30, ge=0)
    temperature: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _provider_needs(self) -> Self:
        if self.provider == "scripted" and not self.rules:
            raise ValueError("provider 'scripted' needs 'rules' (path to the rule file)")
        if self.provider == "openai" and not self.model:
            raise ValueError("provider 'openai' needs 'model' (the model name to request)")
        return self
