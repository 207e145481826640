"""Adapter selection by URL: one setting per port switches a deployment between clouds.

| port    | schemes                                                           |
|---------|-------------------------------------------------------------------|
| storage | sqlite://, file://, s3://, gs://, az://, libcloud+<driver>://      |
| queue   | sqlite://, sqs://, pubsub://, azqueue://                           |
| secrets | env://, aws-sm://, gcp-sm://, keyvault://, keyvault+https://       |

A ``sqlite://`` URL may say ``?synchronous=full`` or ``?synchronous=normal`` (how a commit
reaches the disk; see ``agentfn.adapters.local._sqlite``). Imports are lazy, so a handler
pays only for the SDK of the cloud it runs on; a scheme whose SDK is not installed names the
extra to install.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from agentfn.errors import ConfigError
from agentfn.ports import BlobStore, Queue, SecretStore

# scheme -> (module, class, extra that installs its SDK)
STORAGE = {
    "s3": ("agentfn.adapters.aws.s3", "S3BlobStore", "aws"),
    "gs": ("agentfn.adapters.gcp.gcs", "GcsBlobStore", "gcp"),
    "az": ("agentfn.adapters.azure.blob", "AzureBlobStore", "azure"),
}
QUEUES = {
    "sqs": ("agentfn.adapters.aws.sqs", "SqsQueue", "aws"),
    "pubsub": ("agentfn.adapters.gcp.pubsub", "PubSubQueue", "gcp"),
    "azqueue": ("agentfn.adapters.azure.storage_queue", "AzureStorageQueue", "azure"),
}
SECRETS = {
    "aws-sm": ("agentfn.adapters.aws.secrets_manager", "SecretsManagerStore", "aws"),
    "gcp-sm": ("agentfn.adapters.gcp.secret_manager", "GcpSecretManagerStore", "gcp"),
    "keyvault": ("agentfn.adapters.azure.key_vault", "KeyVaultSecretStore", "azure"),
    "keyvault+https": ("agentfn.adapters.azure.key_vault", "KeyVaultSecretStore", "azure"),
}
LIBCLOUD = ("agentfn.adapters.libcloud.blobstore", "LibcloudBlobStore", "libcloud")


def _scheme(url: str, port: str, known: list[str]) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"{port} URL {url!r} must look like scheme://…", field=port)
    scheme = urlparse(url).scheme
    if scheme not in known and not (port == "storage" and scheme.startswith("libcloud+")):
        raise ConfigError(
            f"unknown {port} URL scheme {scheme + '://'!r} "
            f"(supported: {', '.join(s + '://' for s in known)})",
            field=port,
        )
    return scheme


def _load(entry: tuple[str, str, str], url: str, **options: Any) -> Any:
    module_name, class_name, extra = entry
    try:  # adapters may import their SDK at import time or on first use
        return getattr(importlib.import_module(module_name), class_name).from_url(url, **options)
    except ImportError as exc:
        raise ConfigError(
            f"{urlparse(url).scheme}:// needs the {extra} extra "
            f"(pip install 'agentfn[{extra}]'): {exc.name or exc} is not installed",
            field="url",
        ) from None


def _local_path(url: str) -> Path:
    """``file:///abs``, ``sqlite:///abs``, ``sqlite://relative`` all name a local path."""
    parsed = urlparse(url)
    raw = unquote(parsed.netloc + parsed.path)
    if not raw:
        raise ConfigError(f"{url!r} names no path", field="url")
    return Path(raw)


def _sqlite_options(url: str, default: str) -> str:
    """The ``synchronous`` option of a ``sqlite://`` URL; any other option is refused."""
    from agentfn.adapters.local._sqlite import SYNCHRONOUS

    options = parse_qs(urlparse(url).query, keep_blank_values=True)
    unknown = sorted(set(options) - {"synchronous"})
    if unknown:
        raise ConfigError(
            f"{url!r}: unknown option {unknown[0]!r} (supported: synchronous)", field="url"
        )
    value = options.get("synchronous", [default])[-1]
    if value not in SYNCHRONOUS:
        raise ConfigError(
            f"{url!r}: synchronous must be one of {', '.join(SYNCHRONOUS)}, got {value!r}",
            field="url",
        )
    return value


def open_blobstore(url: str) -> BlobStore:
    scheme = _scheme(url, "storage", ["sqlite", "file", *STORAGE, "libcloud+<driver>"])
    if scheme == "sqlite":
        from agentfn.adapters.local.sqlite_blobs import SqliteBlobStore

        sync = _sqlite_options(url, "normal")
        return SqliteBlobStore(_local_path(url), synchronous=sync)  # type: ignore[arg-type]
    if scheme == "file":
        from agentfn.adapters.local.filesystem import FileBlobStore

        return FileBlobStore(_local_path(url))
    store: BlobStore = _load(STORAGE.get(scheme, LIBCLOUD), url)
    return store


def open_queue(url: str, *, max_attempts: int = 5) -> Queue:
    scheme = _scheme(url, "queue", ["sqlite", *QUEUES])
    if scheme == "sqlite":
        from agentfn.adapters.local.sqlite_queue import SqliteQueue

        path = _local_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        sync = _sqlite_options(url, "normal")
        return SqliteQueue(path, max_attempts=max_attempts, synchronous=sync)  # type: ignore[arg-type]
    queue: Queue = _load(QUEUES[scheme], url, max_attempts=max_attempts)
    return queue


def open_secrets(url: str) -> SecretStore:
    scheme = _scheme(url, "secrets", ["env", *SECRETS])
    if scheme == "env":
        from agentfn.adapters.local.env_secrets import EnvSecretStore

        parsed = urlparse(url)
        raw = unquote(parsed.netloc + parsed.path)
        return EnvSecretStore(Path(raw) if raw else None)
    store: SecretStore = _load(SECRETS[scheme], url)
    return store
