"""API authentication: ``Authorization: Bearer <key>`` or ``x-api-key: <key>``.

One interface for every key scheme. This version accepts the single key configured in the
SecretStore (secret ``AGENTFN_API_KEY``); keys are compared as SHA-256 digests in constant
time and are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from agentfn.errors import NotFound, Unauthorized

if TYPE_CHECKING:
    from agentfn.ports import SecretStore

API_KEY_SECRET = "AGENTFN_API_KEY"
# What a key secret holds before anyone set a key (older Azure stacks seeded this literal):
# never accepted, so a stack that was not finished refuses every call instead of opening up.
PLACEHOLDER_KEYS = frozenset({"set-after-deploy"})


@dataclass(frozen=True)
class Principal:
    tenant: str
    roles: frozenset[str] = field(default_factory=frozenset)
    key_id: str = ""


class Authenticator(Protocol):
    def authenticate(self, headers: Mapping[str, str]) -> Principal: ...


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries (headers are lower-cased), or None."""
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class SingleKeyAuthenticator:
    """Accepts the one key stored in the SecretStore; its holder administers tenant 'default'."""

    def __init__(self, secrets: SecretStore, secret_name: str = API_KEY_SECRET) -> None:
        self.secrets = secrets
        self.secret_name = secret_name

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        key = presented_key(headers)
        if key is None:
            raise Unauthorized(
                "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
                field="authorization",
            )
        try:
            expected = self.secrets.get(self.secret_name)
        except NotFound:
            raise Unauthorized(
                f"no API key is configured (secret {self.secret_name})", field="authorization"
            ) from None
        if not expected.strip() or expected.strip() in PLACEHOLDER_KEYS:
            raise Unauthorized(
                f"no API key is configured (secret {self.secret_name} is empty or a placeholder)",
                field="authorization",
            )
        if not hmac.compare_digest(digest(key), digest(expected)):
            raise Unauthorized("invalid API key", field="authorization")
        return Principal(
            tenant="default", roles=frozenset({"tenant_admin"}), key_id=digest(key)[:12]
        )
