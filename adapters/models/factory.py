"""Turn a ``ModelSpec`` into a live, resilient ``Model``.

Built models are cached for the life of the process: a warm serverless instance then reuses
the HTTP client and, more importantly, the circuit breaker, whose state would be useless if
every call started from a fresh one.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

from agentfn.adapters.models.scripted import ScriptedModel
from agentfn.errors import ConfigError, NotFound
from agentfn.model_spec import AZURE_OPENAI_API_VERSION, ModelSpec
from agentfn.ports import Model, SecretStore
from agentfn.project_files import project_file
from agentfn.resilience import CircuitBreaker, ResilientModel

_CacheKey = tuple[str, str, str]

_cache: dict[_CacheKey, Model] = {}
_cache_lock = threading.Lock()


def build_model(spec: ModelSpec, *, secrets: SecretStore, base_dir: Path) -> Model:
    """The (cached) model for ``spec``; ``base_dir`` is the blueprint's folder.

    The cache key is the spec, the folder and a fingerprint of the API key, so a rotated
    secret yields a fresh client (and breaker) instead of failing with the old key forever.
    """
    api_key = _api_key(spec, spec.key_secret, secrets) if spec.key_secret else ""
    fingerprint = hashlib.sha256(api_key.encode()).hexdigest() if api_key else ""
    key: _CacheKey = (spec.model_dump_json(), str(Path(base_dir).resolve()), fingerprint)
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            model = _build(spec, api_key=api_key, base_dir=Path(base_dir))
            _cache[key] = model
        return model


def clear_model_cache() -> None:
    """Forget every built model (tests; a deployment never needs it)."""
    with _cache_lock:
        _cache.clear()


def _api_key(spec: ModelSpec, name: str, secrets: SecretStore) -> str:
    try:
        return secrets.get(name)
    except NotFound:
        raise ConfigError(
            f"model {spec.provider!r} needs secret {name}", field="api_key_secret"
        ) from None


def _build(spec: ModelSpec, *, api_key: str, base_dir: Path) -> Model:
    inner = _BUILDERS[spec.provider](spec, api_key, base_dir)
    breaker = CircuitBreaker(spec.breaker_threshold, spec.breaker_reset_s, name=inner.name)
    return ResilientModel(inner, attempts=spec.max_retries, breaker=breaker)


# Each provider's SDK is imported only when a model of it is first built: a function that never
# calls Bedrock does not load boto3's Bedrock client, nor google-genai, nor openai.


def _scripted(spec: ModelSpec, api_key: str, base_dir: Path) -> Model:
    assert spec.rules is not None  # enforced by ModelSpec
    model = ScriptedModel.from_file(project_file(base_dir, spec.rules, "rule file"))
    if spec.model:
        model.name = spec.model
    return model


def _openai(spec: ModelSpec, api_key: str, base_dir: Path) -> Model:
    from agentfn.adapters.models.openai_chat import OpenAIChatModel

    assert spec.model is not None  # enforced by ModelSpec
    return OpenAIChatModel(
        spec.model,
        api_key=api_key,
        base_url=spec.base_url,
        timeout_s=spec.timeout_s,
        temperature=spec.temperature,
    )


def _bedrock(spec: ModelSpec, api_key: str, base_dir: Path) -> Model:
    from agentfn.adapters.models.bedrock import BedrockModel

    assert spec.model is not None  # enforced by ModelSpec
    return BedrockModel(
        spec.model,
        region=spec.cloud_region(),
        timeout_s=spec.timeout_s,
        temperature=spec.temperature,
    )


def _vertex(spec: ModelSpec, api_key: str, base_dir: Path) -> Model:
    from agentfn.adapters.models.vertex import VertexModel

    assert spec.model is not None  # enforced by ModelSpec
    return VertexModel(
        spec.model,
        location=spec.cloud_region(),
        project=spec.project,
        timeout_s=spec.timeout_s,
        temperature=spec.temperature,
    )


def _azure_openai(spec: ModelSpec, api_key: str, base_dir: Path) -> Model:
    from agentfn.adapters.models.azure_openai import AzureOpenAIChatModel

    assert spec.model is not None  # enforced by ModelSpec
    endpoint = spec.url()
    assert endpoint is not None  # url() raises when an Azure model has none
    return AzureOpenAIChatModel(
        spec.model,
        endpoint=endpoint,
        api_version=spec.api_version or AZURE_OPENAI_API_VERSION,
        api_key=api_key,
        timeout_s=spec.timeout_s,
        temperature=spec.temperature,
    )


_BUILDERS: dict[str, Callable[[ModelSpec, str, Path], Model]] = {
    "scripted": _scripted,
    "openai": _openai,
    "bedrock": _bedrock,
    "vertex": _vertex,
    "azure-openai": _azure_openai,
}
