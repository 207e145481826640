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
    Chat Completions API (OpenAI, Azure OpenAI v1, vLLM, Ollama via ``base_url``); ``bedrock``
    is Amazon Bedrock's Converse API with the platform's AWS credentials (no key).
    """

    model_config = ConfigDict(extra="forbid")

    provider: Literal["scripted", "openai", "bedrock"]
    model: str | None = None
    """Model name sent to the API and reported in replies."""
    rules: str | None = None
    """Scripted rule file, relative to the blueprint's folder."""
    base_url: str | None = None
    region: str | None = Field(
        default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="bedrock: the AWS region"
    )
    api_key_secret: str = "OPENAI_API_KEY"
    """Name of the secret in the ``SecretStore`` (never the key itself)."""
    timeout_s: float = Field(default=60, gt=0)
    max_retries: int = Field(default=3, ge=1)
    """Total attempts per call, the first one included."""
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=30, ge=0)
    temperature: float | None = Field(default=None, ge=0)

    def aws_region(self) -> str:
        """The region a Bedrock model is called in: the spec's, else the function's (Lambda
        sets AWS_REGION; botocore reads only AWS_DEFAULT_REGION)."""
        import os

        from agentfn.errors import ConfigError

        region = self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise ConfigError(
                "a bedrock model needs a region: set `region:` or AWS_REGION", field="region"
            )
        return region

    @model_validator(mode="after")
    def _provider_needs(self) -> Self:
        if self.provider == "scripted" and not self.rules:
            raise ValueError("provider 'scripted' needs 'rules' (path to the rule file)")
        if self.provider in ("openai", "bedrock") and not self.model:
            raise ValueError(f"provider {self.provider!r} needs 'model' (the model to request)")
        if self.provider == "bedrock" and self.base_url is not None:
            raise ValueError(
                "provider 'bedrock' takes no base_url: the deployment points the SDK elsewhere "
                "(AWS_ENDPOINT_URL_BEDROCK_RUNTIME), never a blueprint"
            )
        return self
