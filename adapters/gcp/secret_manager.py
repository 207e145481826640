"""SecretStore on Google Secret Manager: ``projects/P/secrets/{prefix}{name}/versions/latest``.

``prefix`` (``gcp-sm://project?prefix=stack-``) keeps the secrets of several stacks in one
project apart: the code asks for ``OPENAI_API_KEY``, the stack named ``stack`` holds
``stack-OPENAI_API_KEY``.

Values are cached for ``ttl_s`` (agentfn.adapters._secret_cache) so a hot path does not call
the API each time, while a new version (a rotation) is picked up within one TTL. Values never
appear in messages, reprs or logs; payloads are checked against their CRC32C before they are
trusted.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any, Self
from urllib.parse import parse_qs

import google_crc32c
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud.secretmanager_v1 import SecretManagerServiceClient

from agentfn.adapters._secret_cache import CachedSecretStore
from agentfn.adapters._url import parse_url
from agentfn.adapters.gcp._errors import map_errors
from agentfn.errors import ConfigError, InternalError, NotFound, UserError

__all__ = ["ENDPOINT_VAR", "GcpSecretManagerStore"]

log = logging.getLogger(__name__)

# Google ships no Secret Manager emulator and the SDK reads no endpoint variable, so we follow
# the *_EMULATOR_HOST convention of the Pub/Sub and Storage SDKs: REST, plain HTTP, anonymous.
ENDPOINT_VAR = "SECRET_MANAGER_EMULATOR_HOST"
_SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
_PROJECT = re.compile(r"[a-z0-9][a-z0-9.:\-]{0,99}")


def _client_from_env() -> SecretManagerServiceClient:
    endpoint = os.environ.get(ENDPOINT_VAR)
    if not endpoint:
        return SecretManagerServiceClient()
    if "://" not in endpoint:
        endpoint = "http://" + endpoint
    return SecretManagerServiceClient(
        transport="rest",
        client_options={"api_endpoint": endpoint},
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
    )


class GcpSecretManagerStore(CachedSecretStore):
    """Secrets of one project's Secret Manager; the latest version wins; cached for ``ttl_s``.

    ``client`` defaults to ``SecretManagerServiceClient()`` (Application Default Credentials),
    or a REST client for ``$SECRET_MANAGER_EMULATOR_HOST`` when that is set; it is created on
    first use, so building the store does no I/O.
    """

    def __init__(
        self,
        project: str,
        *,
        prefix: str = "",
        ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        client: SecretManagerServiceClient | None = None,
    ) -> None:
        if not isinstance(project, str) or not _PROJECT.fullmatch(project):
            raise ConfigError(f"invalid Google Cloud project id {project!r}", field="project")
        if not isinstance(prefix, str) or (prefix and not _SECRET_ID.fullmatch(prefix)):
            raise ConfigError(
                f"secret prefix {prefix!r} must be letters, digits, '-' or '_'", field="prefix"
            )
        super().__init__(ttl_s=ttl_s, clock=clock)
        self.project = project
        self.prefix = prefix
        self._client = client

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``gcp-sm://project`` or ``gcp-sm://project?prefix=stack-``."""
        parsed = parse_url(url, "gcp-sm", names="project (gcp-sm://project)", query=True)
        query = parse_qs(parsed.query, keep_blank_values=True)
        if (
            parsed.path.strip("/")
            or set(query) - {"prefix"}
            or any(len(v) != 1 or not v[0] for v in query.values())
            or parsed.fragment
            or parsed.params
        ):
            raise ConfigError(
                f"{url!r}: gcp-sm:// URLs name a project and at most a secret prefix "
                "(gcp-sm://project?prefix=stack-)",
                field="url",
            )
        if not _PROJECT.fullmatch(parsed.netloc):
            raise ConfigError(f"{url!r}: {parsed.netloc!r} is not a project id", field="url")
        if "prefix" in query:
            options.setdefault("prefix", query["prefix"][0])
        return cls(parsed.netloc, **options)

    def __repr__(self) -> str:
        return (
            f"GcpSecretManagerStore(project={self.project!r}, prefix={self.prefix!r}, "
            f"cached={len(self._cache)})"
        )

    # ------------------------------------------------------------------ internals

    def _cache_key(self, name: str) -> str:
        if not isinstance(name, str) or not _SECRET_ID.fullmatch(self.prefix + name):
            raise UserError(
                "secret name must be 1-255 letters, digits, '-' or '_' (a Secret Manager id)",
                field="name",
            )
        return name

    def _client_(self) -> SecretManagerServiceClient:
        if self._client is None:
            self._client = _client_from_env()
        return self._client

    def _fetch(self, name: str) -> str:
        """The latest version; read again once if its payload arrives corrupted."""
        path = f"projects/{self.project}/secrets/{self.prefix}{name}/versions/latest"
        errors: dict[type[gexc.GoogleAPICallError], Exception] = {
            gexc.NotFound: NotFound(f"secret {name!r} not found (id {self.prefix + name!r})"),
            gexc.FailedPrecondition: NotFound(f"secret {name!r} has no enabled latest version"),
            gexc.PermissionDenied: ConfigError(
                f"no permission to read secret {name!r} in project {self.project!r} "
                "(needs roles/secretmanager.secretAccessor)",
                field="secrets",
            ),
        }
        for _ in range(2):
            with map_errors(errors):
                response = self._client_().access_secret_version(name=path)
            data: bytes = response.payload.data
            version = response.name.rsplit("/", 1)[-1]
            if "data_crc32c" in response.payload and response.payload.data_crc32c != (
                google_crc32c.value(data)
            ):
                log.warning("secret %r failed its CRC32C check; reading it again", name)
                continue
            try:
                value = data.decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigError(
                    f"secret {name!r} is not UTF-8 text (version {version})", field="secrets"
                ) from None
            log.debug("secret %r loaded from Secret Manager (version %s)", name, version)
            return value
        raise InternalError(f"secret {name!r} failed its CRC32C check twice")
