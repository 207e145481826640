"""BlobStore on a Cloud Storage bucket.

Etags are object *generations*: Cloud Storage's preconditions (``ifGenerationMatch``) compare
generations, and a generation changes on every write even when the bytes do not, so
``put_if_match`` is a real compare-and-swap decided by the service (``ifGenerationMatch=0`` is
"only if absent"). Large objects move through resumable uploads and ranged downloads in
``chunk_size`` pieces, so they never sit whole in memory.
"""

from __future__ import annotations

import io
import re
from typing import Any, BinaryIO, Self

import google.cloud.storage as storage
from google.api_core import exceptions as gexc

from agentfn.adapters._url import about_url, parse_url
from agentfn.adapters.gcp._errors import map_errors
from agentfn.blob_args import as_bytes, bare_etag, check_etag, check_listing, page_of
from agentfn.errors import ConfigError, NotFound, PreconditionFailed, UserError
from agentfn.keys import check_path
from agentfn.ports import Blob, Page

__all__ = ["GcsBlobStore"]

_CHUNK_QUANTUM = 256 * 1024  # Cloud Storage resumable chunks are multiples of 256 KiB
DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
_MAX_NAME_BYTES = 1024  # Cloud Storage object-name limit (prefix included)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_CONTENT_TYPE = "application/octet-stream"


def _check_path(value: object, field: str, *, allow_empty: bool) -> str:
    """Reject keys that are not plain relative paths (the rules of agentfn.keys)."""
    check_path(value, field, allow_empty=allow_empty)
    assert isinstance(value, str)
    return value


def _generation(etag: str) -> int | None:
    """The generation an etag names, or None if it cannot be one of ours."""
    etag = bare_etag(etag)
    if not etag.isascii() or not etag.isdigit():
        return None
    generation = int(etag)
    return generation if generation > 0 else None  # 0 means "absent" to Cloud Storage


class _ChunkReader(io.RawIOBase):
    """Presents a forward-only stream the way resumable uploads read it.

    The upload asks ``tell()``, reads ``chunk_size`` bytes at a time (a short read means "last
    chunk", so reads here are filled until EOF), and after a partial commit by the service
    seeks back into the chunk it just sent. Only that chunk is kept, so memory stays at one
    chunk whatever the object's size.
    """

    def __init__(self, source: BinaryIO) -> None:
        super().__init__()
        self._source = source
        self._pos = 0  # position of the next byte handed out
        self._kept = b""  # the last chunk read, for a seek back into it
        self._kept_at = 0  # stream offset of _kept[0]
        self._end = 0  # bytes consumed from the source

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos}.get(whence)
        if target is None or not self._kept_at <= target + offset <= self._end:
            raise io.UnsupportedOperation("only seeks within the last chunk are possible")
        self._pos = target + offset
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = 1 << 62
        out: list[bytes] = []
        got = 0
        if self._pos < self._end:  # replaying after a seek back
            replay = self._kept[self._pos - self._kept_at :][:size]
            out.append(replay)
            got = len(replay)
        while got < size:
            piece = self._source.read(size - got)
            if not piece:
                break
            out.append(piece)
            got += len(piece)
            self._end += len(piece)
        data = out[0] if len(out) == 1 else b"".join(out)  # no copy in the usual case
        self._kept, self._kept_at = data, self._pos
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class GcsBlobStore:
    """Objects under ``prefix`` in ``bucket``; etag = the object's generation, as a string.

    ``client`` defaults to ``google.cloud.storage.Client()``, which honours
    ``STORAGE_EMULATOR_HOST`` (anonymous credentials) and otherwise Application Default
    Credentials. It is created on first use, so building the store does no I/O.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise ConfigError(f"invalid Cloud Storage bucket name {bucket!r}", field="bucket")
        if not isinstance(prefix, str):
            raise ConfigError("prefix must be a string", field="prefix")
        prefix = prefix.strip("/")
        if prefix:
            _check_path(prefix, "prefix", allow_empty=False)
            prefix += "/"
        if (
            isinstance(chunk_size, bool)
            or not isinstance(chunk_size, int)
            or chunk_size <= 0
            or chunk_size % _CHUNK_QUANTUM
        ):
            raise ConfigError(
                f"chunk_size must be a positive multiple of {_CHUNK_QUANTUM} bytes",
                field="chunk_size",
            )
        self.bucket_name = bucket
        self.prefix = prefix
        self.chunk_size = chunk_size
        self._client = client
        self._bucket: Any = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``gs://bucket`` or ``gs://bucket/prefix``."""
        parsed = parse_url(url, "gs", names="bucket (gs://bucket/prefix)")
        if not _BUCKET.fullmatch(parsed.netloc) or ".." in parsed.netloc:
            raise ConfigError(f"{url!r}: {parsed.netloc!r} is not a valid bucket name", field="url")
        prefix = parsed.path.strip("/")
        if prefix:
            with about_url(url, UserError):
                _check_path(prefix, "prefix", allow_empty=False)
        return cls(parsed.netloc, prefix, **options)

    def __repr__(self) -> str:
        return f"GcsBlobStore(url={'gs://' + self.bucket_name + '/' + self.prefix!r})"

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> Blob:
        blob = self._blob(key)
        with map_errors({gexc.NotFound: NotFound(f"blob {key!r} not found")}):
            data = blob.download_as_bytes()
        return Blob(key=key, data=data, etag=str(blob.generation))

    def list(self, prefix: str = "", *, cursor: str | None = None, limit: int = 1000) -> Page:
        _check_path(prefix, "prefix", allow_empty=True)
        check_listing(cursor, limit)
        full_prefix = self.prefix + prefix
        after = self.prefix + cursor if cursor is not None else None
        # start_offset is inclusive: ask from the cursor and drop it (and anything before).
        start = after if after is not None and after > full_prefix else None
        want = limit + 1  # one more than a page tells whether another page exists
        iterator = self._client_().list_blobs(
            self.bucket_name,
            prefix=full_prefix,
            start_offset=start,
            max_results=want + 1,
            page_size=min(want + 1, 1000),
            fields="items(name),nextPageToken",
        )
        keys: list[str] = []
        for item in iterator:
            name: str = item.name
            if after is not None and name <= after:
                continue
            keys.append(name[len(self.prefix) :])
            if len(keys) >= want:
                break
        return page_of(keys, limit)

    # ------------------------------------------------------------------ writes

    def put(self, key: str, data: bytes) -> str:
        return self._write(key, data, None)

    def put_if_absent(self, key: str, data: bytes) -> str:
        with map_errors(
            {gexc.PreconditionFailed: PreconditionFailed(f"blob {key!r} already exists")}
        ):
            return self._write(key, data, 0)

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        blob_data = as_bytes(data)
        self._check_key(key)
        generation = _generation(check_etag(etag))
        if generation is None:
            raise PreconditionFailed(f"blob {key!r} changed (etag mismatch)")
        lost = PreconditionFailed(f"blob {key!r} changed or does not exist (etag mismatch)")
        with map_errors({gexc.PreconditionFailed: lost}):
            return self._write(key, blob_data, generation)

    def delete(self, key: str) -> None:
        blob = self._blob(key)
        with map_errors({gexc.NotFound: None}):
            blob.delete()

    # ------------------------------------------------------------------ streaming

    def upload(self, key: str, stream: BinaryIO) -> str:
        """A resumable upload in ``chunk_size`` pieces; only one chunk is in memory at a time."""
        blob = self._blob(key, chunk_size=self.chunk_size)
        blob.upload_from_file(_ChunkReader(stream), content_type=_CONTENT_TYPE, rewind=False)
        return str(blob.generation)

    def download(self, key: str, sink: BinaryIO) -> str:
        """Ranged reads in ``chunk_size`` pieces, all of one generation.

        Every range names the generation first seen, so a concurrent overwrite makes the read
        fail with ``PreconditionFailed`` instead of mixing two versions (``sink`` may then
        hold a partial copy).
        """
        name = self._check_key(key)
        head = self._blob(key)
        with map_errors({gexc.NotFound: NotFound(f"blob {key!r} not found")}):
            head.reload()
        generation = int(head.generation)
        pinned = self._bucket_().blob(name, chunk_size=self.chunk_size, generation=generation)
        try:
            pinned.download_to_file(sink)
        except gexc.NotFound:
            # That generation is gone: replaced by a newer one, or deleted.
            deleted = NotFound(f"blob {key!r} was deleted while being downloaded")
            with map_errors({gexc.NotFound: deleted}):
                self._blob(key).reload()
            raise PreconditionFailed(f"blob {key!r} changed while being downloaded") from None
        return str(generation)

    # ------------------------------------------------------------------ internals

    def _client_(self) -> Any:
        if self._client is None:
            self._client = storage.Client()
        return self._client

    def _check_key(self, key: str) -> str:
        _check_path(key, "key", allow_empty=False)
        name = self.prefix + key
        if len(name.encode("utf-8")) > _MAX_NAME_BYTES:
            raise UserError(
                f"key {key!r} is too long: object names are at most {_MAX_NAME_BYTES} bytes",
                field="key",
            )
        return name

    def _bucket_(self) -> Any:
        if self._bucket is None:
            self._bucket = self._client_().bucket(self.bucket_name)
        return self._bucket

    def _blob(self, key: str, *, chunk_size: int | None = None) -> Any:
        return self._bucket_().blob(self._check_key(key), chunk_size=chunk_size)

    def _write(self, key: str, data: bytes, if_generation_match: int | None) -> str:
        data = as_bytes(data)
        blob = self._blob(key)
        blob.upload_from_string(
            data, content_type=_CONTENT_TYPE, if_generation_match=if_generation_match
        )
        return str(blob.generation)

    # The store pickles without its client (e.g. into a worker process), which rebuilds one.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None, "_bucket": None}
