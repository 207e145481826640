"""SecretStore on AWS Secrets Manager.

A secret named ``NAME`` is the Secrets Manager secret ``<prefix>NAME`` (its current
``SecretString``). Values are cached for ``ttl_s`` (agentfn.adapters._secret_cache) so a hot
path does not pay one API call per read, while a rotated value is still seen within one TTL.
Values never appear in messages, reprs or logs.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, Self
from urllib.parse import unquote

from botocore.exceptions import ClientError

from agentfn.adapters._secret_cache import CachedSecretStore
from agentfn.adapters._url import about_url, parse_url
from agentfn.adapters.aws._client import make_client
from agentfn.adapters.aws._errors import ANY, MISSING_SECRET, error_code, map_errors
from agentfn.errors import AgentfnError, ConfigError, NotFound, UserError

__all__ = ["SecretsManagerStore"]

log = logging.getLogger(__name__)

# Secrets Manager names: 1-512 of letters, digits and /_+=.@-
_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]+")
_MAX_NAME = 512
# A deleted-but-recoverable secret answers InvalidRequestException ("... marked for
# deletion" on AWS, "... marked deleted" on moto): for a reader it is gone.
_GONE_WORDS = ("marked for deletion", "marked deleted")


class _RedactSecretPayloads(logging.Filter):
    """botocore logs whole request and response bodies at DEBUG; for Secrets Manager those
    are the secret values. Records carrying one keep their first line, minus the payload."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not ours
            return True
        if "SecretString" in text or "SecretBinary" in text:
            record.msg = "%s <Secrets Manager payload redacted>"
            record.args = (text.split("\n", 1)[0][:80],)
        return True


def _install_redaction() -> None:
    for name in ("botocore.parsers", "botocore.endpoint"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactSecretPayloads) for f in logger.filters):
            logger.addFilter(_RedactSecretPayloads())


_install_redaction()


class SecretsManagerStore(CachedSecretStore):
    """Secrets ``<prefix><name>`` from Secrets Manager, cached for ``ttl_s`` seconds."""

    def __init__(
        self,
        prefix: str = "",
        *,
        ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        client: Any = None,
    ) -> None:
        if not isinstance(prefix, str) or (prefix and not _NAME.fullmatch(prefix)):
            raise ConfigError(
                f"secret prefix {prefix!r} may only hold letters, digits and /_+=.@-",
                field="prefix",
            )
        super().__init__(ttl_s=ttl_s, clock=clock)
        self.prefix = prefix
        self._client = client if client is not None else make_client("secretsmanager")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``aws-sm://`` (no prefix) or ``aws-sm://prefix/`` (prepended verbatim to names)."""
        parsed = parse_url(url, "aws-sm", article="an")
        prefix = unquote(parsed.netloc + parsed.path)
        with about_url(url, ConfigError):
            return cls(prefix, **options)

    def __repr__(self) -> str:
        return f"SecretsManagerStore(prefix={self.prefix!r}, cached={len(self._cache)})"

    def _cache_key(self, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise UserError("secret name must be a non-empty string", field="name")
        if not _NAME.fullmatch(name) or len(self.prefix + name) > _MAX_NAME:
            raise UserError(
                f"secret name {name!r} must be letters, digits and /_+=.@- "
                f"({_MAX_NAME} characters at most with the prefix)",
                field="name",
            )
        return name

    def _fetch(self, name: str) -> str:
        gone = NotFound(f"secret {name!r} not found")
        with map_errors({MISSING_SECRET: gone, ANY: lambda exc: _unreadable(name, exc, gone)}):
            response = self._client.get_secret_value(SecretId=self.prefix + name)
        if "SecretString" in response:
            value = str(response["SecretString"])
        else:
            binary = response.get("SecretBinary")
            if not isinstance(binary, bytes | bytearray):
                raise gone
            try:
                value = bytes(binary).decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigError(
                    f"secret {name!r} is binary and not UTF-8 text", field="secrets"
                ) from None
        log.debug("secret %r loaded from Secrets Manager", name)
        return value


def _unreadable(name: str, exc: ClientError, gone: NotFound) -> AgentfnError:
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", ""))
    if code == "InvalidRequestException" and any(w in message for w in _GONE_WORDS):
        return gone
    # Only the code: AWS error messages never carry the value, but be strict.
    return ConfigError(
        f"cannot read secret {name!r} from Secrets Manager: {code or 'error'}", field="secrets"
    )
