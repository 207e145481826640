"""Which secrets a blueprint's models may use and which hosts they may reach: the deployment's
call, never the blueprint's.

A stored workflow is user input. Without this, ``base_url: https://attacker.example`` with
``api_key_secret: AGENTFN_API_KEY`` would send the deployment's own API key (or any secret) to a
host of the blueprint's choosing, past the HTTP tools' SSRF guard. The allow-lists come from
``Settings`` (``AGENTFN_MODEL_SECRETS``, ``AGENTFN_MODEL_HOSTS``); the defaults allow OpenAI's
key and OpenAI's API host only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from agentfn.errors import ConfigError
from agentfn.model_spec import ModelSpec
from agentfn.settings import DEFAULT_MODEL_HOSTS, DEFAULT_MODEL_SECRETS

_DEFAULT_BASE_HOST = {"openai": "api.openai.com"}  # where a provider goes without base_url


def cloud_host(spec: ModelSpec) -> str | None:
    """The host a cloud-identity model calls (what AGENTFN_MODEL_HOSTS must allow), or None
    for the providers whose host is their ``base_url``'s."""
    if spec.provider == "bedrock":
        return f"bedrock-runtime.{spec.cloud_region()}.amazonaws.com"
    if spec.provider == "vertex":
        region = spec.cloud_region()  # "global" has no regional prefix
        prefix = "" if region == "global" else f"{region}-"
        return f"{prefix}aiplatform.googleapis.com"
    return None


@dataclass(frozen=True)
class ModelPolicy:
    secrets: frozenset[str] = frozenset(DEFAULT_MODEL_SECRETS)
    hosts: frozenset[str] = frozenset(DEFAULT_MODEL_HOSTS)
    """``host`` (any port) or ``host:port``, lower-case."""

    @classmethod
    def of(cls, secrets: Iterable[str], hosts: Iterable[str]) -> ModelPolicy:
        return cls(frozenset(secrets), frozenset(h.strip().lower() for h in hosts if h.strip()))

    def check(self, spec: ModelSpec) -> None:
        """Raise ``ConfigError`` (field ``api_key_secret`` or ``base_url``) if not allowed."""
        if spec.provider == "scripted":
            return  # reads a project file, sends nothing anywhere
        host = cloud_host(spec)
        if host is not None:  # the platform's credentials: no secret to allow
            return self._check_host(host, field="region")
        secret = spec.key_secret
        if secret is not None and secret not in self.secrets:
            raise ConfigError(
                f"secret {secret!r} is not one this deployment lets models use "
                f"(allowed: {', '.join(sorted(self.secrets)) or 'none'}; AGENTFN_MODEL_SECRETS)",
                field="api_key_secret",
            )
        host = self._host_of(spec)
        if host is None:
            raise ConfigError(
                f"base_url {spec.url()!r} must be an http(s) URL without credentials",
                field="base_url",
            )
        self._check_host(host)

    def _check_host(self, host: str, *, field: str = "base_url") -> None:
        name, _, _port = host.partition(":")
        if host not in self.hosts and name not in self.hosts:
            raise ConfigError(
                f"model host {host!r} is not one this deployment lets models reach "
                f"(allowed: {', '.join(sorted(self.hosts)) or 'none'}; AGENTFN_MODEL_HOSTS)",
                field=field,
            )

    @staticmethod
    def _host_of(spec: ModelSpec) -> str | None:
        url = spec.url()
        if url is None:
            return _DEFAULT_BASE_HOST[spec.provider]
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        if parts.username is not None or parts.password is not None:
            return None
        return parts.hostname.lower() + (f":{port}" if port is not None else "")
