"""SecretStore on AWS Secrets Manager.

A secret named ``NAME`` is the Secrets Manager secret ``<prefix>NAME`` (its current
``SecretString``). Values are cached for ``ttl_s`` so a hot path does not pay one API call per
read, while a rotated value is still seen within one TTL. Values never appear in messages,
reprs or logs.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Self
from urllib.parse import unquote, urlparse

from botocore.exceptions import ClientError

from agentfn.adapters.aws.s3 import error_code, make_client
from agentfn.errors import ConfigError, NotFound, UserError

__all__ = ["SecretsManagerStore"]

log = logging.getLogger(__name__)

# Secrets Manager names: 1-512 of letters, digits and /_+=.@-
_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]+")
_MAX_NAME = 512
_MISSING = frozenset({"ResourceNotFoundException"})
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


class SecretsManagerStore:
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
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or not ttl_s >= 0:
            raise ConfigError("ttl_s must be >= 0", field="ttl_s")
        self.prefix = prefix
        self.ttl_s = float(ttl_s)
        self._clock = clock
        self._client = client if client is not None else make_client("secretsmanager")
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``aws-sm://`` (no prefix) or ``aws-sm://prefix/`` (prepended verbatim to names)."""
        parsed = urlparse(url)
        if parsed.scheme != "aws-sm":
            raise ConfigError(f"{url!r} is not an aws-sm:// URL", field="url")
        if parsed.query or parsed.fragment or parsed.params:
            raise ConfigError(f"{url!r}: aws-sm:// URLs take no query or fragment", field="url")
        prefix = unquote(parsed.netloc + parsed.path)
        try:
            return cls(prefix, **options)
        except ConfigError as exc:
            raise ConfigError(f"{url!r}: {exc.message}", field="url") from None

    def __repr__(self) -> str:
        return f"SecretsManagerStore(prefix={self.prefix!r}, cached={len(self._cache)})"

    def get(self, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise UserError("secret name must be a non-empty string", field="name")
        secret_id = self.prefix + name
        if not _NAME.fullmatch(name) or len(secret_id) > _MAX_NAME:
            raise UserError(
                f"secret name {name!r} must be letters, digits and /_+=.@- "
                f"({_MAX_NAME} characters at most with the prefix)",
                field="name",
            )
        now = self._clock()
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and now - hit[1] < self.ttl_s:
                return hit[0]
        value = self._fetch(name, secret_id)
        if value is None:
            with self._lock:
                self._cache.pop(name, None)
            # Misses are not cached: a secret created later is seen on the next call.
            raise NotFound(f"secret {name!r} not found")
        with self._lock:
            self._cache[name] = (value, now)
        log.debug("secret %r loaded from Secrets Manager", name)
        return value

    def clear(self) -> None:
        """Forget cached values, e.g. after a known rotation."""
        with self._lock:
            self._cache.clear()

    def _fetch(self, name: str, secret_id: str) -> str | None:
        try:
            response = self._client.get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            code = error_code(exc)
            if code in _MISSING:
                return None
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if code == "InvalidRequestException" and any(w in message for w in _GONE_WORDS):
                return None
            # Only the code: AWS error messages never carry the value, but be strict.
            raise ConfigError(
                f"cannot read secret {name!r} from Secrets Manager: {code or 'error'}",
                field="secrets",
            ) from None
        if "SecretString" in response:
            return str(response["SecretString"])
        binary = response.get("SecretBinary")
        if isinstance(binary, bytes | bytearray):
            try:
                return bytes(binary).decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigError(
                    f"secret {name!r} is binary and not UTF-8 text", field="secrets"
                ) from None
        return None
