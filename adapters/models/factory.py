"""Turn a ``ModelSpec`` into a live, resilient ``Model``.

Built models are cached for the life of the process: a warm serverless instance then reuses
the HTTP client and, more importantly, the circuit breaker, whose state would be useless if
every call started from a fresh one.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from agentfn.adapters.models.scripted import ScriptedModel
from agentfn.errors import ConfigError, NotFound
from agentfn.model_spec import ModelSpec
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
    api_key = _api_key(spec, secrets) if spec.provider == "openai" else ""
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


def _api_key(spec: ModelSpec, secrets: SecretStore) -> str:
    try:
        return secrets.get(spec.api_key_secret)
    except NotFound:
        raise ConfigError(
            f"model {spec.provider!r} needs secret {spec.api_key_secret}",
            field="api_key_secret",
        ) from None


def _build(spec: ModelSpec, *, api_key: str, base_dir: Path) -> Model:
    inner: Model
    if spec.provider == "scripted":
        assert spec.rules is not None  # enforced by ModelSpec
        inner = ScriptedModel.from_file(project_file(base_dir, spec.rules, "rule file"))
        if spec.model:
            inner.name = spec.model
    elif spec.provider == "bedrock":
        from agentfn.adapters.models.bedrock import BedrockModel  # boto3: only when used

        assert spec.model is not None  # enforced by ModelSpec
        inner = BedrockModel(
            spec.model,
            region=spec.aws_region(),
            timeout_s=spec.timeout_s,
            temperature=spec.temperature,
        )
    else:
        from agentfn.adapters.models.openai_chat import (
            OpenAIChatModel,  # keeps the SDK out of scripted-only imports
        )

        assert spec.model is not None  # enforced by ModelSpec
        inner = OpenAIChatModel(
            spec.model,
            api_key=api_key,
            base_url=spec.base_url,
            timeout_s=spec.timeout_s,
            temperature=spec.temperature,
        )
    breaker = CircuitBreaker(spec.breaker_threshold, spec.breaker_reset_s, name=inner.name)
    return ResilientModel(inner, attempts=spec.max_retries, breaker=breaker)
