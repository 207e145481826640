"""API authentication: ``Authorization: Bearer <key>`` or ``x-api-key: <key>``.

Two kinds of key, one interface. Keys created over the API or the CLI (``afn_<id>_<secret>``)
are checked against their salted hash in the :class:`~agentfn.api_keys.KeyStore` and carry
their tenant and role. The bootstrap key is the secret ``AGENTFN_API_KEY`` in the SecretStore:
its holder administers tenant ``default`` and creates the first keys. Keys are compared in
constant time and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from agentfn.errors import NotFound, Unauthorized
from agentfn.tenancy import DEFAULT_TENANT

if TYPE_CHECKING:
    from agentfn.api_keys import KeyStore
    from agentfn.ports import SecretStore

API_KEY_SECRET = "AGENTFN_API_KEY"
BOOTSTRAP_KEY_ID = "bootstrap"  # the actor the audit log names for the bootstrap key
# What a key secret holds before anyone set a key (older Azure stacks seeded this literal):
# never accepted, so a stack that was not finished refuses every call instead of opening up.
PLACEHOLDER_KEYS = frozenset({"set-after-deploy"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant every route serves, the key's roles, and the key's id (the
    actor in the audit log)."""

    tenant: str
    roles: frozenset[str] = field(default_factory=frozenset)
    key_id: str = ""


class Authenticator(Protocol):
    def authenticate(self, headers: Mapping[str, str]) -> Principal: ...


def required_key(headers: Mapping[str, str]) -> str:
    key = presented_key(headers)
    if key is None:
        raise Unauthorized(
            "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
            field="authorization",
        )
    return key


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
        key = required_key(headers)
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
            tenant=DEFAULT_TENANT, roles=frozenset({"tenant_admin"}), key_id=BOOTSTRAP_KEY_ID
        )


class KeyAuthenticator:
    """Stored keys by their shape, anything else against the bootstrap key."""

    def __init__(self, keys: KeyStore, bootstrap: Authenticator) -> None:
        self.keys = keys
        self.bootstrap = bootstrap

    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        from agentfn.api_keys import KEY_PATTERN

        key = required_key(headers)
        if KEY_PATTERN.fullmatch(key) is None:
            return self.bootstrap.authenticate(headers)
        record = self.keys.authenticate(key)
        return Principal(record.tenant, frozenset({record.role.value}), record.id)
