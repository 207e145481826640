"""Adapter selection by URL: one setting per port switches a deployment between clouds.

Imports are lazy so a handler pays only for the SDK of the cloud it runs on.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from core.errors import ConfigError
from core.ports import BlobStore, Queue, SecretStore


def _scheme(url: str, port: str, known: list[str]) -> str:
    scheme = urlparse(url).scheme
    if scheme not in known:
        raise ConfigError(
            f"unknown {port} URL scheme {scheme + '://' if scheme else url!r} "
            f"(supported: {', '.join(s + '://' for s in known)})",
            field=port,
        )
    return scheme


def _local_path(url: str) -> Path:
    """``file:///abs``, ``sqlite:///abs``, ``sqlite://relative`` all name a local path."""
    parsed = urlparse(url)
    raw = unquote(parsed.netloc + parsed.path)
    if not raw:
        raise ConfigError(f"{url!r} names no path", field="url")
    return Path(raw)


def open_blobstore(url: str) -> BlobStore:
    _scheme(url, "storage", ["file"])
    from adapters.local.filesystem import FileBlobStore

    return FileBlobStore(_local_path(url))


def open_queue(url: str, *, max_attempts: int = 5) -> Queue:
    _scheme(url, "queue", ["sqlite"])
    from adapters.local.sqlite_queue import SqliteQueue

    path = _local_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteQueue(path, max_attempts=max_attempts)


def open_secrets(url: str) -> SecretStore:
    _scheme(url, "secrets", ["env"])
    from adapters.local.env_secrets import EnvSecretStore

    parsed = urlparse(url)
    raw = unquote(parsed.netloc + parsed.path)
    return EnvSecretStore(Path(raw) if raw else None)
