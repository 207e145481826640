"""How a blueprint names the model an agent talks to.

Kept in core (no SDK imports) so blueprints can be validated without any provider installed;
``agentfn.adapters.models.factory.build_model`` turns a spec into a live ``Model``.
"""

from __future__ import annotations

import os
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentfn.errors import ConfigError

OPENAI_KEY_SECRET = "OPENAI_API_KEY"
"""The secret an ``openai`` model reads when the blueprint names none."""
AZURE_OPENAI_API_VERSION = "2024-10-21"
AZURE_ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
"""The account an azure-openai model without ``base_url`` calls (the openai SDK's name too)."""
"""The newest GA data-plane version of Azure OpenAI's inference API when this was written."""

Provider = Literal["scripted", "openai", "bedrock", "vertex", "azure-openai"]

# Where each cloud model's region comes from when the blueprint gives none: what its platform
# sets (Lambda sets AWS_REGION) or what its SDK reads.
_REGION_ENV: dict[str, tuple[str, ...]] = {
    "bedrock": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "vertex": ("GOOGLE_CLOUD_LOCATION",),
}
# Providers whose credentials are the platform's identity: no key, and no endpoint a blueprint
# may choose (the deployment points the SDK elsewhere with the SDK's own variable).
_ENDPOINT_ENV = {
    "bedrock": "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    "vertex": "GOOGLE_VERTEX_BASE_URL",
}


class ModelSpec(BaseModel):
    """Provider, model name and resilience settings of one model.

    ``scripted`` is the deterministic rule-file model for demos and tests; ``openai`` speaks the
    Chat Completions API (OpenAI, vLLM, Ollama via ``base_url``); ``bedrock``, ``vertex`` and
    ``azure-openai`` are each cloud's own models with the platform's identity (docs/models.md).
    """

    model_config = ConfigDict(extra="forbid")

    provider: Provider
    model: str | None = None
    """Model name sent to the API and reported in replies (an Azure OpenAI deployment's name)."""
    rules: str | None = None
    """Scripted rule file, relative to the blueprint's folder."""
    base_url: str | None = None
    """openai: the API's base URL; azure-openai: the account's endpoint (else
    ``AZURE_OPENAI_ENDPOINT``)."""
    region: str | None = Field(
        default=None,
        pattern=r"^[a-z]+(-[a-z]+)*(-?\d+)?$",
        description="bedrock: the AWS region; vertex: the Google Cloud location",
    )
    project: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$",
        description="vertex: the Google Cloud project (else the credentials')",
    )
    api_version: str | None = Field(
        default=None, pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$", description="azure-openai"
    )
    api_key_secret: str | None = None
    """Name of the secret in the ``SecretStore`` (never the key itself): ``openai`` reads
    ``OPENAI_API_KEY`` when unset; ``azure-openai`` uses the managed identity when unset."""
    timeout_s: float = Field(default=60, gt=0)
    max_retries: int = Field(default=3, ge=1)
    """Total attempts per call, the first one included."""
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=30, ge=0)
    temperature: float | None = Field(default=None, ge=0)

    @property
    def key_secret(self) -> str | None:
        """The secret this model sends as its API key; None when it uses no key."""
        if self.provider == "openai":
            return self.api_key_secret or OPENAI_KEY_SECRET
        return self.api_key_secret if self.provider == "azure-openai" else None

    def cloud_region(self) -> str:
        """The region a bedrock or vertex model is called in: the spec's, else the platform's."""
        names = _REGION_ENV[self.provider]
        region = self.region or next((os.environ[n] for n in names if os.environ.get(n)), None)
        if not region:
            raise ConfigError(
                f"a {self.provider} model needs a region: set `region:` or {names[0]}",
                field="region",
            )
        return region

    def url(self) -> str | None:
        """Where an openai or azure-openai model sends requests: ``base_url``; for Azure, else
        the account the deployment names (``AZURE_OPENAI_ENDPOINT``, as the Azure stack sets
        it). None: the provider's default host."""
        if self.provider != "azure-openai" or self.base_url:
            return self.base_url
        endpoint = os.environ.get(AZURE_ENDPOINT_ENV)
        if not endpoint:
            raise ConfigError(
                "an azure-openai model needs the account's endpoint: set `base_url:` "
                f"(https://NAME.openai.azure.com) or {AZURE_ENDPOINT_ENV}",
                field="base_url",
            )
        return endpoint

    @model_validator(mode="after")
    def _provider_needs(self) -> Self:
        if self.provider == "scripted" and not self.rules:
            raise ValueError("provider 'scripted' needs 'rules' (path to the rule file)")
        if self.provider != "scripted" and not self.model:
            raise ValueError(f"provider {self.provider!r} needs 'model' (the model to request)")
        if self.provider in _ENDPOINT_ENV:
            for name in ("base_url", "api_key_secret"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"provider {self.provider!r} takes no {name}: it calls its cloud with "
                        f"the platform's identity; the deployment points the SDK elsewhere "
                        f"({_ENDPOINT_ENV[self.provider]}), never a blueprint"
                    )
        if self.region is not None and self.provider not in _REGION_ENV:
            raise ValueError(f"provider {self.provider!r} takes no region")
        if self.project is not None and self.provider != "vertex":
            raise ValueError("only provider 'vertex' takes a project")
        if self.api_version is not None and self.provider != "azure-openai":
            raise ValueError("only provider 'azure-openai' takes an api_version")
        return self
