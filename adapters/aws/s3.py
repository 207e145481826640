"""BlobStore on Amazon S3 with S3's own conditional writes.

``put_if_absent`` sends ``If-None-Match: *`` and ``put_if_match`` sends ``If-Match: <etag>`` on
``PutObject``: S3 evaluates the condition and the write atomically, so exactly one of several
racing writers wins without any lock of ours. Large objects move part by part (8 MiB) through
the multipart API, so neither direction holds an object whole in memory.
"""

from __future__ import annotations

import contextlib
from typing import Any, BinaryIO, Self
from urllib.parse import unquote

from botocore.exceptions import ClientError

from agentfn.adapters._errors import Outcome
from agentfn.adapters._url import about_url, parse_url
from agentfn.adapters.aws._client import make_client
from agentfn.adapters.aws._errors import MISSING_KEY, PRECONDITION, Key, map_errors
from agentfn.blob_args import check_etag, check_listing, page_of, quoted_etag
from agentfn.errors import ConfigError, NotFound, PreconditionFailed, UserError
from agentfn.keys import check_path
from agentfn.ports import CHUNK_SIZE, Blob, Page

__all__ = ["S3BlobStore", "check_key"]

PART_SIZE = 8 * 1024 * 1024  # multipart part size: bounds memory at about one part
_MAX_KEY_BYTES = 1024  # S3's limit on a full object key, prefix included
_MAX_PAGE = 1000  # S3 returns at most this many keys per ListObjectsV2 call
# A lost conditional write, or a missing key, by code or by HTTP status.
_LOST = PRECONDITION | {409, 412}
_MISSING = MISSING_KEY | {404}


def check_key(value: object, field: str = "key", *, max_bytes: int = _MAX_KEY_BYTES) -> str:
    """Plain relative paths (agentfn.keys) within S3's key length."""
    check_path(value, field, allow_empty=field == "prefix", max_bytes=max_bytes)
    assert isinstance(value, str)
    return value


def _data(data: object) -> bytes | bytearray:
    if isinstance(data, memoryview):
        return bytes(data)
    if not isinstance(data, bytes | bytearray):
        raise UserError(f"data must be bytes, got {type(data).__name__}", field="data")
    return data


class S3BlobStore:
    """Objects in ``bucket`` under an optional ``prefix``; etags are S3's own ETags.

    The prefix is invisible to callers: keys are given and listed without it. Etags are
    quoted MD5s for single-part writes and ``"<md5>-<parts>"`` for multipart uploads.
    """

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        if not isinstance(bucket, str) or not bucket or "/" in bucket:
            raise ConfigError(f"bad S3 bucket name {bucket!r}", field="bucket")
        prefix = prefix.strip("/") if isinstance(prefix, str) else prefix
        if prefix:
            check_key(prefix, "prefix")
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix
        self._client = client if client is not None else make_client("s3")
        self._max_key = _MAX_KEY_BYTES - len(prefix.encode("utf-8"))

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``s3://bucket`` or ``s3://bucket/some/prefix``."""
        parsed = parse_url(url, "s3", article="an", names="bucket (s3://bucket/prefix)")
        prefix = unquote(parsed.path).strip("/")
        with about_url(url, UserError):
            return cls(parsed.netloc, prefix, **options)

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> Blob:
        name = self._name(key)
        with map_errors(self._errors(key)):
            response = self._client.get_object(Bucket=self.bucket, Key=name)
        body = response["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        return Blob(key=key, data=data, etag=str(response["ETag"]))

    def list(self, prefix: str = "", *, cursor: str | None = None, limit: int = 1000) -> Page:
        check_key(prefix, "prefix")
        check_listing(cursor, limit)
        keys: list[str] = []
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if cursor:
            args["StartAfter"] = self.prefix + cursor
        cut = len(self.prefix)
        while True:
            # One key more than asked tells whether another page exists without an empty page.
            args["MaxKeys"] = min(_MAX_PAGE, limit + 1 - len(keys))
            with map_errors(self._errors(prefix)):
                response = self._client.list_objects_v2(**args)
            keys.extend(item["Key"][cut:] for item in response.get("Contents", []))
            token = response.get("NextContinuationToken")
            if len(keys) > limit or not response.get("IsTruncated") or not token:
                return page_of(keys, limit)
            args.pop("StartAfter", None)
            args["ContinuationToken"] = token

    # ------------------------------------------------------------------ writes

    def put(self, key: str, data: bytes) -> str:
        return self._put(key, data, "")

    def put_if_absent(self, key: str, data: bytes) -> str:
        return self._put(key, data, "IfNoneMatch", "*")

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        return self._put(key, data, "IfMatch", quoted_etag(check_etag(etag)))

    def delete(self, key: str) -> None:
        name = self._name(key)
        with map_errors({MISSING_KEY: None, **self._errors(key)}):
            self._client.delete_object(Bucket=self.bucket, Key=name)  # S3 deletes idempotently

    # ------------------------------------------------------------------ streaming

    def upload(self, key: str, stream: BinaryIO) -> str:
        """Write ``stream`` to ``key`` (plain put semantics), one 8 MiB part at a time.

        Objects smaller than one part go up in a single PutObject; larger ones as a multipart
        upload, aborted if anything fails so no orphaned parts are left to pay for.
        """
        name = self._name(key)
        part = _read_part(stream)
        if len(part) < PART_SIZE:
            return self._put(key, part, "")
        with map_errors(self._errors(key)):
            upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=name)[
                "UploadId"
            ]
        parts: list[dict[str, Any]] = []
        try:
            while part:
                number = len(parts) + 1
                response = self._client.upload_part(
                    Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=part
                )
                parts.append({"ETag": response["ETag"], "PartNumber": number})
                del part  # drop this part before reading the next: one part in memory
                part = _read_part(stream)
            done = self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # If even the abort fails, a lifecycle rule for incomplete uploads cleans up.
            with contextlib.suppress(ClientError):
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=name, UploadId=upload_id
                )
            raise
        return str(done["ETag"])

    def download(self, key: str, sink: BinaryIO) -> str:
        """Stream ``key`` into ``sink``; the etag is the one of the bytes written.

        One GET serves the whole object, so data and etag come from the same version even if
        the key is overwritten meanwhile (ranged parallel GETs could mix versions).
        """
        name = self._name(key)
        with map_errors(self._errors(key)):
            response = self._client.get_object(Bucket=self.bucket, Key=name)
        body = response["Body"]
        try:
            for chunk in body.iter_chunks(CHUNK_SIZE):
                sink.write(chunk)
        finally:
            body.close()
        return str(response["ETag"])

    # ------------------------------------------------------------------ internals

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key, "key", max_bytes=self._max_key)

    def _put(self, key: str, data: bytes | bytearray, condition: str, value: str = "") -> str:
        """PutObject, with ``condition`` (IfNoneMatch/IfMatch) checked by S3 when given."""
        name = self._name(key)
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": name, "Body": _data(data)}
        if condition:
            args[condition] = value
        with map_errors(self._errors(key, condition)):
            response = self._client.put_object(**args)
        return str(response["ETag"])

    def _errors(self, key: str, condition: str = "") -> dict[Key, Outcome[ClientError]]:
        """What S3's answers mean for ``key``, written with ``condition`` (IfNoneMatch or
        IfMatch) when given; other errors propagate as botocore raised them."""
        errors: dict[Key, Outcome[ClientError]] = {
            "NoSuchBucket": ConfigError(f"S3 bucket {self.bucket!r} does not exist", field="bucket")
        }
        if condition == "IfNoneMatch":
            errors[_LOST] = PreconditionFailed(f"blob {key!r} already exists")
        elif condition:
            errors[_LOST] = PreconditionFailed(f"blob {key!r} changed (etag mismatch)")
        if condition:
            errors[_MISSING] = PreconditionFailed(f"blob {key!r} does not exist")
        else:
            errors[_MISSING] = NotFound(f"blob {key!r} not found")
        return errors


def _read_part(stream: BinaryIO) -> bytearray:
    """Read up to one part into one buffer (short reads from pipes are topped up).

    Filling a single bytearray keeps one copy of the part in memory; botocore sends a
    bytearray body as it is.
    """
    buffer = bytearray(PART_SIZE)
    view = memoryview(buffer)
    size = 0
    try:
        while size < PART_SIZE:
            chunk = stream.read(min(CHUNK_SIZE, PART_SIZE - size))
            if not chunk:
                break
            view[size : size + len(chunk)] = chunk
            size += len(chunk)
    finally:
        view.release()
    del buffer[size:]
    return buffer
