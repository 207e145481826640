"""BlobStore on any Apache Libcloud storage driver (S3-compatibles, GCS, Azure, OpenStack
Swift, the local filesystem, ...), for providers without an adapter of their own.

Libcloud's storage API has no conditional writes, so ``put_if_absent`` and ``put_if_match`` are
check-then-write under a per-key lock: an exclusive ``flock`` on a lock file in ``lock_dir``
(local disk). That makes them linearizable among all processes on one host that share the
lock directory, and nothing more: writers on other machines are not excluded. With the
``local`` driver every writer is on the same host by construction, so the guarantee is full.

Etags are content hashes (quoted BLAKE2b-128) computed here, not the driver's own hash: the
local driver hashes the file's mtime, which two quick writes can share, and S3 multipart etags
are not content digests, so neither could back a compare-and-swap.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Self
from urllib.parse import parse_qsl, unquote, urlparse

from libcloud.common.types import LibcloudError
from libcloud.storage.providers import get_driver
from libcloud.storage.types import (
    ContainerAlreadyExistsError,
    ContainerDoesNotExistError,
    ObjectDoesNotExistError,
    ObjectError,
)

from agentfn.adapters._url import about_url
from agentfn.blob_args import (
    as_bytes,
    bare_etag,
    check_etag,
    check_listing,
    content_etag,
    content_hash,
    page_of,
)
from agentfn.errors import ConfigError, NotFound, PreconditionFailed, UserError
from agentfn.keys import check_path
from agentfn.ports import CHUNK_SIZE, Blob, Page

__all__ = ["LibcloudBlobStore"]

_MAX_KEY_BYTES = 1024
_MAX_SEGMENT = 255  # NAME_MAX, for the local driver
_LOCAL_HIDDEN = frozenset({".lock", ".hash"})  # folders the local driver never lists
_RETRIES = 100  # writes racing a concurrent delete's pruning of empty folders
_INT_KWARGS = frozenset({"port"})
_BOOL_KWARGS = frozenset({"secure"})
_TRUE, _FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})


def _check(value: object, field: str, *, local: bool, max_bytes: int) -> str:
    """Plain relative paths (agentfn.keys); the local driver also limits segments."""
    segments = check_path(value, field, allow_empty=field == "prefix", max_bytes=max_bytes)
    assert isinstance(value, str)
    for seg in segments if local else []:
        if len(seg.encode("utf-8")) > _MAX_SEGMENT:
            raise UserError(
                f"{field} {value!r} has a segment longer than {_MAX_SEGMENT} bytes", field=field
            )
        if seg in _LOCAL_HIDDEN:
            raise UserError(
                f"{field} {value!r} uses {seg!r}, which the local driver hides", field=field
            )
    return value


class _Source:
    """Chunks for ``upload_object_via_stream``, hashed as they go; remembers whether reading
    started, because only a write that consumed nothing may be retried."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.digest = content_hash()
        self.started = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.started = True
            self.digest.update(chunk)
            yield chunk


class LibcloudBlobStore:
    """Objects in one container of a Libcloud storage driver, under an optional prefix.

    ``driver`` is a Libcloud provider id (``local``, ``s3``, ``google_storage``,
    ``azure_blobs``, ...); ``key``/``secret`` are its credentials (for ``local``, ``key`` is
    the root folder, which holds one folder per container). Other keyword arguments go to the
    driver (``region``, ``host``, ...). ``create`` makes the container (and a local root)
    when missing. ``lock_dir`` holds the per-key lock files (default: a per-user folder in the
    system temp dir).
    """

    def __init__(
        self,
        driver: str,
        container: str,
        prefix: str = "",
        key: str | None = None,
        secret: str | None = None,
        *,
        create: bool = False,
        lock_dir: str | Path | None = None,
        **driver_kwargs: Any,
    ) -> None:
        if not isinstance(driver, str) or not driver:
            raise ConfigError("driver must be a Libcloud provider id", field="driver")
        if not isinstance(container, str) or not container or "/" in container:
            raise ConfigError(f"bad container name {container!r}", field="container")
        if key is None:
            key = os.environ.get("LIBCLOUD_KEY")
        if secret is None:
            secret = os.environ.get("LIBCLOUD_SECRET")
        if not key:
            what = "the root folder" if driver == "local" else "the access key"
            raise ConfigError(
                f"libcloud driver {driver!r} needs key= ({what}) or LIBCLOUD_KEY", field="key"
            )
        self.driver_name = driver
        self.local = driver == "local"
        prefix = prefix.strip("/") if isinstance(prefix, str) else prefix
        if prefix:
            _check(prefix, "prefix", local=self.local, max_bytes=_MAX_KEY_BYTES)
            prefix += "/"
        self.prefix = prefix
        self._max_key = _MAX_KEY_BYTES - len(prefix.encode("utf-8"))
        try:
            cls = get_driver(driver)
        except (AttributeError, LibcloudError, KeyError) as exc:
            raise ConfigError(f"unknown libcloud storage driver {driver!r}", field="driver") from (
                exc
            )
        if self.local:
            key = str(Path(key).expanduser().resolve())
            if create:
                Path(key).mkdir(parents=True, exist_ok=True)
            # Keep the driver's own locking on (its default): without it, the local driver's
            # no-op lock swallows every error raised while writing a file.
        try:
            self._driver: Any = cls(key, secret, **driver_kwargs)
        except LibcloudError as exc:
            raise ConfigError(
                f"libcloud {driver!r} driver rejected its settings: {exc.value}", field="driver"
            ) from None
        self._container = self._open_container(container, create)
        self.container = container
        identity = f"{driver}\0{key}\0{sorted(driver_kwargs.items())}\0{container}"
        self._identity = hashlib.blake2b(identity.encode("utf-8"), digest_size=16).hexdigest()
        if lock_dir is None:
            lock_dir = Path(tempfile.gettempdir()) / f"agentfn-libcloud-locks-{os.getuid()}"
        self.lock_dir = Path(lock_dir)
        self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``libcloud+<driver>://<container>[/<prefix>][?driver_option=value...]``.

        The local driver names its root folder with ``?root=/abs/path``. Use ``-`` for ``_``
        in driver ids (URL schemes cannot hold ``_``): ``libcloud+google-storage://...``.
        Credentials come from ``LIBCLOUD_KEY`` / ``LIBCLOUD_SECRET``, never from the URL.
        """
        parsed = urlparse(url)
        scheme, plus, driver = parsed.scheme.partition("+")
        if scheme != "libcloud" or not plus or not driver:
            raise ConfigError(
                f"{url!r} is not a libcloud+<driver>://container/prefix URL", field="url"
            )
        driver = driver.replace("-", "_")
        if not parsed.netloc or parsed.fragment or parsed.params:
            raise ConfigError(
                f"{url!r} names no container (libcloud+{driver}://container/prefix)", field="url"
            )
        params: dict[str, Any] = {}
        for name, value in parse_qsl(parsed.query, keep_blank_values=True):
            if name in params or not value:
                raise ConfigError(f"{url!r}: query parameter {name!r} needs one value", field="url")
            if name in ("key", "secret"):
                raise ConfigError(
                    f"{url!r}: put credentials in LIBCLOUD_KEY / LIBCLOUD_SECRET, not the URL",
                    field="url",
                )
            params[name] = _convert(url, name, value)
        if "root" in params:
            params["key"] = str(params.pop("root"))
        elif driver == "local":
            raise ConfigError(f"{url!r}: the local driver needs ?root=/abs/path", field="url")
        with about_url(url, UserError):
            return cls(driver, unquote(parsed.netloc), unquote(parsed.path), **params, **options)

    def __repr__(self) -> str:
        return (
            f"LibcloudBlobStore(driver={self.driver_name!r}, container={self.container!r}, "
            f"prefix={self.prefix!r})"
        )

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> Blob:
        name = self._name(key)
        with self._locked(name, shared=True):
            obj = self._object(name)
            if obj is None:
                raise NotFound(f"blob {key!r} not found")
            data = b"".join(self._driver.download_object_as_stream(obj, chunk_size=CHUNK_SIZE))
        return Blob(key=key, data=data, etag=content_etag(content_hash(data)))

    def list(self, prefix: str = "", *, cursor: str | None = None, limit: int = 1000) -> Page:
        _check(prefix, "prefix", local=self.local, max_bytes=_MAX_KEY_BYTES)
        check_listing(cursor, limit)
        for attempt in range(_RETRIES):
            try:
                keys = self._list(self.prefix + prefix, cursor, limit + 1)
                break
            except ObjectDoesNotExistError:
                # The local driver stats every file it walks: one deleted meanwhile fails the
                # whole walk. Walk again.
                if attempt == _RETRIES - 1:
                    raise
        return page_of(keys, limit)

    # ------------------------------------------------------------------ writes

    def put(self, key: str, data: bytes) -> str:
        name = self._name(key)
        body = as_bytes(data)
        with self._locked(name):
            return self._write(key, name, iter((body,)))

    def put_if_absent(self, key: str, data: bytes) -> str:
        name = self._name(key)
        body = as_bytes(data)
        with self._locked(name):
            if self._object(name) is not None:
                raise PreconditionFailed(f"blob {key!r} already exists")
            return self._write(key, name, iter((body,)))

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        name = self._name(key)
        body = as_bytes(data)
        check_etag(etag)
        with self._locked(name):
            obj = self._object(name)
            if obj is None:
                raise PreconditionFailed(f"blob {key!r} does not exist")
            digest = content_hash()
            for chunk in self._driver.download_object_as_stream(obj, chunk_size=CHUNK_SIZE):
                digest.update(chunk)
            if bare_etag(content_etag(digest)) != bare_etag(etag):
                raise PreconditionFailed(f"blob {key!r} changed (etag mismatch)")
            return self._write(key, name, iter((body,)))

    def delete(self, key: str) -> None:
        name = self._name(key)
        with self._locked(name):
            obj = self._object(name)
            if obj is None:
                return
            try:
                self._driver.delete_object(obj)
            except (ObjectDoesNotExistError, OSError):
                # The local driver prunes empty parent folders after unlinking; a sibling's
                # delete may have pruned them first. What matters is that the object is gone.
                if self._object(name) is not None:
                    raise

    # ------------------------------------------------------------------ streaming

    def upload(self, key: str, stream: BinaryIO) -> str:
        name = self._name(key)

        def chunks() -> Iterator[bytes]:
            while chunk := stream.read(CHUNK_SIZE):
                yield chunk

        with self._locked(name):
            return self._write(key, name, chunks())

    def download(self, key: str, sink: BinaryIO) -> str:
        name = self._name(key)
        digest = content_hash()
        with self._locked(name, shared=True):
            obj = self._object(name)
            if obj is None:
                raise NotFound(f"blob {key!r} not found")
            for chunk in self._driver.download_object_as_stream(obj, chunk_size=CHUNK_SIZE):
                digest.update(chunk)
                sink.write(chunk)
        return content_etag(digest)

    # ------------------------------------------------------------------ internals

    def _name(self, key: str) -> str:
        return self.prefix + _check(key, "key", local=self.local, max_bytes=self._max_key)

    def _open_container(self, name: str, create: bool) -> Any:
        try:
            return self._driver.get_container(name)
        except ContainerDoesNotExistError:
            if not create:
                raise ConfigError(
                    f"libcloud container {name!r} does not exist (create it, or pass create=True)",
                    field="container",
                ) from None
        try:
            return self._driver.create_container(name)
        except ContainerAlreadyExistsError:
            return self._driver.get_container(name)

    def _object(self, name: str) -> Any:
        """The object's metadata, or None if there is none (a folder is not an object)."""
        try:
            return self._driver.get_object(self.container, name)
        except (ObjectDoesNotExistError, ObjectError):
            return None

    def _write(self, key: str, name: str, chunks: Iterator[bytes]) -> str:
        source = _Source(chunks)
        for attempt in range(_RETRIES):
            try:
                self._driver.upload_object_via_stream(iter(source), self._container, name)
                return content_etag(source.digest)
            except (IsADirectoryError, NotADirectoryError) as exc:
                raise self._conflict(key) from exc
            except FileNotFoundError:
                # A concurrent delete pruned the (empty) folder between the driver's mkdir and
                # its open. Nothing was consumed yet, so writing again is safe.
                if source.started or attempt == _RETRIES - 1:
                    raise
            except OSError as exc:
                if exc.errno == errno.ENAMETOOLONG:
                    raise UserError(
                        f"key {key!r} is too long for the filesystem", field="key"
                    ) from exc
                if exc.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise self._conflict(key) from exc
                raise
        raise AssertionError("unreachable")

    @staticmethod
    def _conflict(key: str) -> UserError:
        return UserError(
            f"key {key!r} conflicts with an existing key: the local driver cannot hold both a "
            "key and keys below it",
            field="key",
        )

    def _list(self, full_prefix: str, cursor: str | None, want: int) -> builtins.list[str]:
        """Up to ``want`` keys after ``cursor``, in order, prefix stripped."""
        after = self.prefix + cursor if cursor is not None else None
        # The local driver filters prefixes itself (with a warning) after a full walk anyway.
        objects = self._driver.iterate_container_objects(
            self._container, prefix=None if self.local else full_prefix
        )
        names: builtins.list[str] = []
        ordered = True
        for obj in objects:
            name = str(obj.name)
            if not name.startswith(full_prefix) or (after is not None and name <= after):
                continue
            if names and name < names[-1]:
                ordered = False  # a driver that does not list in key order: sort everything
            names.append(name)
            if ordered and len(names) >= want:
                break
        if not ordered:
            names = sorted(names)[:want]
        cut = len(self.prefix)
        return [name[cut:] for name in names]

    @contextlib.contextmanager
    def _locked(self, name: str, *, shared: bool = False) -> Iterator[None]:
        """Per-key ``flock``: exclusive for writers; shared for readers of the local driver,
        which rewrites files in place (other drivers' reads are atomic on the service)."""
        if shared and not self.local:
            yield
            return
        digest = hashlib.blake2b(f"{self._identity}\0{name}".encode(), digest_size=16)
        path = self.lock_dir / f"{digest.hexdigest()}.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:  # someone removed the lock folder: recreate it
            self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock


def _convert(url: str, name: str, value: str) -> Any:
    if name in _INT_KWARGS:
        if not value.isdigit():
            raise ConfigError(f"{url!r}: {name} must be a whole number", field="url")
        return int(value)
    if name in _BOOL_KWARGS or name == "create":
        if value.lower() not in _TRUE | _FALSE:
            raise ConfigError(f"{url!r}: {name} must be true or false", field="url")
        return value.lower() in _TRUE
    return value
