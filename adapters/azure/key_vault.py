"""SecretStore on Azure Key Vault, read through the official ``SecretClient``.

The SDK handles Key Vault's challenge authentication (the first request is answered 401 with
the tenant and resource to get a token for). Values are cached for ``ttl_s``
(agentfn.adapters._secret_cache) so a hot path does not call the vault each time, while a
rotated secret is picked up within one TTL. Values never appear in messages, reprs or logs.

Key Vault names allow only letters, digits and '-', so a requested name maps ``_`` to ``-``
(``AGENTFN_API_KEY`` reads the vault secret ``AGENTFN-API-KEY``); names are case-insensitive.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Self
from urllib.parse import urlparse

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.keyvault.secrets import SecretClient

from agentfn.adapters._secret_cache import CachedSecretStore
from agentfn.adapters.azure import default_credential
from agentfn.adapters.azure._errors import error_code, map_errors
from agentfn.errors import AgentfnError, ConfigError, InternalError, NotFound, UserError

__all__ = ["KeyVaultSecretStore"]

log = logging.getLogger(__name__)

_SECRET_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
_VAULT_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){2,23}")
_PUBLIC_SUFFIX = "vault.azure.net"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_vault_url(vault_url: object) -> str:
    """An ``https://host[:port]`` origin: the vault is the whole authority, paths are API."""
    if not isinstance(vault_url, str):
        raise ConfigError("vault_url must be a string", field="url")
    parsed = urlparse(vault_url.strip())
    try:
        port = parsed.port
    except ValueError:
        raise ConfigError(f"{vault_url!r} has an invalid port", field="url") from None
    if parsed.scheme != "https" or not parsed.hostname:
        raise ConfigError(f"{vault_url!r} is not an https:// vault URL", field="url")
    if parsed.username or parsed.password:
        raise ConfigError(f"{vault_url!r} must not carry credentials", field="url")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment or parsed.params:
        raise ConfigError(f"{vault_url!r} must be a bare origin (no path or query)", field="url")
    host = parsed.hostname
    netloc = f"[{host}]" if ":" in host else host
    return f"https://{netloc}" + (f":{port}" if port is not None else "")


class KeyVaultSecretStore(CachedSecretStore):
    """Secrets from one vault's latest versions; cached for ``ttl_s`` seconds by ``clock``.

    ``credential`` defaults to ``DefaultAzureCredential``. ``connection_verify`` may name a CA
    bundle (private endpoints behind an inspecting proxy, or a test server). The SDK checks
    that the challenge's resource matches the vault's domain; that check cannot pass for a
    loopback address, so ``verify_challenge_resource`` defaults to off only there.
    """

    def __init__(
        self,
        vault_url: str,
        *,
        credential: Any = None,
        ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        connection_verify: bool | str = True,
        verify_challenge_resource: bool | None = None,
    ) -> None:
        super().__init__(ttl_s=ttl_s, clock=clock)
        self.vault_url = _check_vault_url(vault_url)
        host = urlparse(self.vault_url).hostname or ""
        if verify_challenge_resource is None:
            verify_challenge_resource = not _is_loopback(host)
        self._client = SecretClient(
            self.vault_url,
            credential if credential is not None else default_credential(),
            verify_challenge_resource=verify_challenge_resource,
            connection_verify=connection_verify,
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``keyvault://vault-name`` (public cloud) or ``keyvault+https://host[:port]``."""
        if not isinstance(url, str):
            raise ConfigError("secrets URL must be a string", field="url")
        parsed = urlparse(url)
        if parsed.scheme == "keyvault":
            name = parsed.netloc
            if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
                raise ConfigError(f"{url!r}: expected keyvault://<vault-name>", field="url")
            if not _VAULT_NAME.fullmatch(name) or name.endswith("-"):
                raise ConfigError(
                    f"{url!r}: invalid vault name {name!r} (3-24 letters, digits and single "
                    "hyphens, starting with a letter)",
                    field="url",
                )
            vault_url = f"https://{name.lower()}.{_PUBLIC_SUFFIX}"
        elif parsed.scheme == "keyvault+https":
            vault_url = "https://" + url[len("keyvault+https://") :]
        else:
            raise ConfigError(f"{url!r} is not a keyvault:// or keyvault+https:// URL", field="url")
        allowed = {"credential", "ttl_s", "clock", "connection_verify", "verify_challenge_resource"}
        unknown = set(options) - allowed
        if unknown:
            raise ConfigError(
                f"unknown KeyVaultSecretStore options: {sorted(unknown)}", field="url"
            )
        return cls(vault_url, **options)

    def __repr__(self) -> str:
        return f"KeyVaultSecretStore(vault_url={self.vault_url!r}, cached={len(self._cache)})"

    def close(self) -> None:
        """Close the SDK client's connections."""
        self._client.close()

    def _cache_key(self, name: str) -> str:
        if not isinstance(name, str) or not name or "=" in name or "\x00" in name:
            raise UserError(
                "secret name must be a non-empty string without '=' or NUL", field="name"
            )
        if not _SECRET_NAME.fullmatch(_vault_name(name)):
            raise UserError(
                f"secret name {name!r} cannot name a Key Vault secret: use at most 127 letters, "
                "digits, '-' and '_' (read as '-')",
                field="name",
            )
        return _vault_name(name).lower()  # Key Vault names are case-insensitive

    def _fetch(self, name: str) -> str:
        vault_name = _vault_name(name)
        as_named = f" (as {vault_name!r})" if vault_name != name else ""
        with map_errors(
            {
                ResourceNotFoundError: NotFound(
                    f"secret {name!r} not found in Key Vault {self.vault_url}{as_named}"
                ),
                (ClientAuthenticationError, 401): partial(self._denied, name),
                (ClientAuthenticationError, 403): partial(self._denied, name),
                ClientAuthenticationError: self._no_token,
                (HttpResponseError, 403): partial(self._forbidden, name),
                (HttpResponseError, 401): partial(self._denied, name),
                HttpResponseError: partial(self._failed, name),
                ServiceRequestError: self._unreachable,
                # The SDK rejects a challenge whose resource does not match the vault's domain.
                ValueError: lambda exc: ConfigError(
                    f"Key Vault {self.vault_url} sent an unacceptable authentication "
                    f"challenge: {exc}",
                    field="secrets",
                ),
            }
        ):
            secret = self._client.get_secret(vault_name)
        log.debug("secret %r loaded from Key Vault %s", name, self.vault_url)
        return secret.value if secret.value is not None else ""

    # What each refusal means; messages name the vault and the secret, never a value.

    def _denied(self, name: str, exc: Exception) -> ConfigError:
        return ConfigError(
            f"Key Vault {self.vault_url} denied reading secret {name!r} "
            f"(HTTP {_status(exc)} {error_code(exc)}); the identity needs the "
            "'Key Vault Secrets User' role or a 'get' access policy",
            field="secrets",
        )

    def _forbidden(self, name: str, exc: Exception) -> AgentfnError:
        if "disabled" in str(getattr(exc, "message", "")).lower():
            return NotFound(f"secret {name!r} is disabled in {self.vault_url}")
        return self._denied(name, exc)

    def _no_token(self, exc: Exception) -> ConfigError:
        # The credential could not get a token: its message says why, and holds no value.
        first = str(getattr(exc, "message", None) or type(exc).__name__).splitlines()[0]
        return ConfigError(
            f"cannot get a token for Key Vault {self.vault_url}: {first}", field="secrets"
        )

    def _failed(self, name: str, exc: Exception) -> InternalError:
        return InternalError(
            f"Key Vault {self.vault_url} failed reading secret {name!r}: "
            f"HTTP {_status(exc)} {error_code(exc)}".rstrip()
        )

    def _unreachable(self, exc: Exception) -> InternalError:
        why = type(exc).__name__
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            why = "its TLS certificate is not trusted (see connection_verify)"
        return InternalError(f"cannot reach Key Vault {self.vault_url}: {why}")


def _vault_name(name: str) -> str:
    """Key Vault names allow only letters, digits and '-': ``_`` reads as ``-``."""
    return name.replace("_", "-")


def _status(exc: Exception) -> object:
    return getattr(exc, "status_code", None)
