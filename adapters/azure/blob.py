"""BlobStore on Azure Blob Storage (block blobs in one container, under an optional prefix).

Conditional writes use the service's own preconditions (``If-None-Match: *`` and ``If-Match``),
so they are linearizable per blob without any locking here. Streaming moves 1-2 MiB pieces with
one connection at a time, so a large object never sits whole in memory.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from typing import Any, BinaryIO, Self, cast

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.paging import PageIterator
from azure.storage.blob import BlobServiceClient, ContainerClient

from agentfn.adapters._errors import Outcome
from agentfn.adapters._url import about_url
from agentfn.adapters.azure import connection_string, default_credential, storage_url_parts
from agentfn.adapters.azure._errors import Key, map_errors
from agentfn.blob_args import as_bytes, check_etag, check_listing, quoted_etag
from agentfn.errors import ConfigError, NotFound, PreconditionFailed, UserError
from agentfn.keys import check_path
from agentfn.ports import CHUNK_SIZE, Blob, Page

__all__ = ["STREAM_OPTIONS", "AzureBlobStore", "blob_service_client"]

_BLOCK = 2 * CHUNK_SIZE  # 50,000 blocks of 2 MiB: objects up to ~97 GiB
# Client settings that bound streaming memory. Uploads of unknown or large size go in 2 MiB
# blocks; downloads in 1 MiB ranges (the SDK's default first GET is 32 MiB, and its response
# handling peaks near ten times the range size). Measured peak: ~8 MiB up, ~10 MiB down.
STREAM_OPTIONS: dict[str, Any] = {
    "max_block_size": _BLOCK,
    "max_single_put_size": _BLOCK,
    "max_single_get_size": CHUNK_SIZE,
    "max_chunk_get_size": CHUNK_SIZE,
}
_MAX_NAME = 1024  # Azure's limit on a blob name, in characters
_MAX_SEGMENTS = 254  # Azure's limit on '/'-separated segments in a blob name
_MAX_RESULTS = 5000  # Azure's largest listing page
_MARKERS = 256  # continuation tokens remembered per store
_GET_RETRIES = 3


def blob_service_client(
    *, conn_str: str | None = None, account: str | None = None, credential: Any = None
) -> BlobServiceClient:
    """A service client with :data:`STREAM_OPTIONS`, from a connection string or an account.

    Build injected clients with this (or pass ``**STREAM_OPTIONS`` yourself): the SDK defaults
    would buffer up to 32 MiB per download.
    """
    if conn_str is not None:
        return BlobServiceClient.from_connection_string(conn_str, **STREAM_OPTIONS)
    if account is None:
        raise ConfigError("a connection string or a storage account is required", field="url")
    return BlobServiceClient(
        f"https://{account}.blob.core.windows.net",
        credential=credential if credential is not None else default_credential(),
        **STREAM_OPTIONS,
    )


def _check_container(name: object) -> str:
    """Container names: 3-63 lowercase letters, digits and single hyphens, alphanumeric ends."""
    if (
        not isinstance(name, str)
        or not 3 <= len(name) <= 63
        or not name.isascii()
        or not all(c.islower() or c.isdigit() or c == "-" for c in name)
        or name[0] == "-"
        or name[-1] == "-"
        or "--" in name
    ):
        raise ConfigError(
            f"invalid container name {name!r}: use 3-63 lowercase letters, digits and single "
            "hyphens, starting and ending with a letter or digit",
            field="url",
        )
    return name


def _check_path(value: object, field: str, *, allow_empty: bool) -> str:
    """Plain relative paths (agentfn.keys), and no trailing '.' that Azure may trim."""
    check_path(value, field, allow_empty=allow_empty)
    assert isinstance(value, str)
    if field == "key" and value.endswith("."):
        # Azure documents that names ending in '.' are trimmed by some clients: avoid aliases.
        raise UserError(f"{field} {value!r} ends with '.', which Azure may trim", field=field)
    return value


class AzureBlobStore:
    """Objects as block blobs named ``prefix + key`` in ``container``.

    Etags are the service's (they change on every write, even of identical bytes). Listing
    returns the last key as the cursor; the service's opaque continuation token for it is
    remembered per store, and a cursor from elsewhere resumes with the service's ``startFrom``
    (keys at or before the cursor are always filtered out, so any cursor resumes correctly).
    """

    def __init__(
        self, container: str, prefix: str = "", *, service: BlobServiceClient | None = None
    ) -> None:
        self.container = _check_container(container)
        prefix = _check_path(prefix, "prefix", allow_empty=True)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        if prefix:
            _check_path(prefix[:-1], "prefix", allow_empty=False)
        self.prefix = prefix
        if service is None:
            conn = connection_string()
            if conn is None:
                raise ConfigError(
                    "AzureBlobStore needs AZURE_STORAGE_CONNECTION_STRING or a service client "
                    "(or use from_url('az://<account>/<container>') with DefaultAzureCredential)",
                    field="url",
                )
            service = blob_service_client(conn_str=conn)
        self.service = service
        self._container: ContainerClient = service.get_container_client(container)
        self._markers: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._markers_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``az://container/prefix`` (account from the connection string) or, without
        ``AZURE_STORAGE_CONNECTION_STRING``, ``az://account/container/prefix``."""
        account, parts = storage_url_parts(url, "az", what="container")
        container, prefix = parts[0], "/".join(parts[1:])
        unknown = set(options) - {"service", "credential"}
        if unknown:
            raise ConfigError(f"unknown AzureBlobStore options: {sorted(unknown)}", field="url")
        service = options.get("service")
        if service is None and account is not None:
            service = blob_service_client(account=account, credential=options.get("credential"))
        with about_url(url, UserError):
            return cls(container, prefix, service=service)

    def __repr__(self) -> str:
        return (
            f"AzureBlobStore(account={self.service.account_name!r}, "
            f"container={self.container!r}, prefix={self.prefix!r})"
        )

    def create_container(self) -> None:
        """Create the container if it does not exist (deployments normally provision it)."""
        with contextlib.suppress(ResourceExistsError):
            self._container.create_container()

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> Blob:
        name = self._name(key)
        attempts = 0
        while True:
            try:
                with map_errors(self._errors(key)):
                    downloader = self._container.download_blob(name, max_concurrency=1)
                    data = downloader.readall()
                return Blob(key=key, data=data, etag=str(downloader.properties.etag))
            except ResourceModifiedError:
                # Rewritten between two ranged reads of a large blob: read it again.
                attempts += 1
                if attempts >= _GET_RETRIES:
                    raise PreconditionFailed(f"blob {key!r} kept changing while read") from None

    def list(self, prefix: str = "", *, cursor: str | None = None, limit: int = 1000) -> Page:
        _check_path(prefix, "prefix", allow_empty=True)
        check_listing(cursor, limit)
        marker = self._marker(prefix, cursor) if cursor is not None else None
        extra: dict[str, Any] = {}
        if cursor is not None and marker is None:
            # Inclusive start (service version 2026-02-06+); services that ignore it still
            # give a correct page, because keys <= cursor are filtered below.
            extra["start_from"] = self.prefix + cursor
        keys: list[str] = []
        skip = len(self.prefix)
        with map_errors(self._errors()):
            while True:
                want = min(limit - len(keys), _MAX_RESULTS)
                pages = cast(
                    "PageIterator[str]",
                    self._container.list_blob_names(
                        name_starts_with=self.prefix + prefix, results_per_page=want, **extra
                    ).by_page(continuation_token=marker),
                )
                names = list(next(pages, []))
                marker = pages.continuation_token
                extra = {}  # startFrom only positions the first request
                # At most ``want`` names arrive, so the page is always consumed whole and the
                # token resumes right after the last key kept.
                keys.extend(n[skip:] for n in names if cursor is None or n[skip:] > cursor)
                if len(keys) >= limit or not marker:
                    break
        if marker:  # the loop only stops with a token once the page is full
            self._remember(prefix, keys[-1], marker)
            return Page(keys=keys, cursor=keys[-1])
        return Page(keys=keys, cursor=None)

    # ------------------------------------------------------------------ writes

    def put(self, key: str, data: bytes) -> str:
        return self._upload(key, as_bytes(data), overwrite=True)

    def put_if_absent(self, key: str, data: bytes) -> str:
        name = self._name(key)
        data = as_bytes(data)
        exists = PreconditionFailed(f"blob {key!r} already exists")
        # Some services answer 412 (ResourceModifiedError) to If-None-Match: *.
        with map_errors(
            {ResourceExistsError: exists, ResourceModifiedError: exists, **self._errors()}
        ):
            return self._upload_name(name, data, overwrite=False)

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        name = self._name(key)
        data = as_bytes(data)
        etag = quoted_etag(check_etag(etag))
        errors: dict[Key, Outcome[Exception]] = {
            ResourceModifiedError: PreconditionFailed(f"blob {key!r} changed or does not exist"),
            **self._errors(),
            ResourceNotFoundError: PreconditionFailed(f"blob {key!r} does not exist"),
        }
        with map_errors(errors):
            return self._upload_name(
                name, data, overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified
            )

    def delete(self, key: str) -> None:
        name = self._name(key)
        with map_errors({**self._errors(), ResourceNotFoundError: None}):
            self._container.delete_blob(name, delete_snapshots="include")

    # ------------------------------------------------------------------ streaming

    def upload(self, key: str, stream: BinaryIO) -> str:
        name = self._name(key)
        if not hasattr(stream, "read"):
            raise UserError("stream must be a readable binary file object", field="stream")
        with map_errors(self._errors()):
            result = self._container.get_blob_client(name).upload_blob(
                stream, length=None, overwrite=True, max_concurrency=1
            )
        return str(result["etag"])

    def download(self, key: str, sink: BinaryIO) -> str:
        name = self._name(key)
        if not hasattr(sink, "write"):
            raise UserError("sink must be a writable binary file object", field="sink")
        changed = PreconditionFailed(f"blob {key!r} changed while being downloaded")
        with map_errors({**self._errors(key), ResourceModifiedError: changed}):
            downloader = self._container.download_blob(name, max_concurrency=1)
            downloader.readinto(sink)
        return str(downloader.properties.etag)

    # ------------------------------------------------------------------ internals

    def _name(self, key: str) -> str:
        _check_path(key, "key", allow_empty=False)
        name = self.prefix + key
        if len(name) > _MAX_NAME:
            raise UserError(
                f"key {key!r} makes a blob name longer than Azure's {_MAX_NAME} characters",
                field="key",
            )
        if name.count("/") >= _MAX_SEGMENTS:
            raise UserError(
                f"key {key!r} has more than Azure's {_MAX_SEGMENTS} path segments", field="key"
            )
        return name

    def _upload(self, key: str, data: bytes, *, overwrite: bool) -> str:
        with map_errors(self._errors()):
            return self._upload_name(self._name(key), data, overwrite=overwrite)

    def _upload_name(self, name: str, data: bytes, **kwargs: Any) -> str:
        result = self._container.get_blob_client(name).upload_blob(
            data, length=len(data), max_concurrency=1, **kwargs
        )
        return str(result["etag"])

    def _errors(self, key: str | None = None) -> dict[Key, Outcome[Exception]]:
        """A missing container is a configuration problem; a missing blob, when ``key`` names
        the one read, is ``NotFound``. Other errors propagate as the SDK raised them."""
        errors: dict[Key, Outcome[Exception]] = {
            (ResourceNotFoundError, "ContainerNotFound"): ConfigError(
                f"container {self.container!r} does not exist in storage account "
                f"{self.service.account_name!r}",
                field="url",
            )
        }
        if key is not None:
            errors[ResourceNotFoundError] = NotFound(f"blob {key!r} not found")
        return errors

    def _marker(self, prefix: str, cursor: str) -> str | None:
        with self._markers_lock:
            marker = self._markers.get((prefix, cursor))
            if marker is not None:
                self._markers.move_to_end((prefix, cursor))
            return marker

    def _remember(self, prefix: str, cursor: str, marker: str) -> None:
        with self._markers_lock:
            self._markers[(prefix, cursor)] = marker
            self._markers.move_to_end((prefix, cursor))
            while len(self._markers) > _MARKERS:
                self._markers.popitem(last=False)
