"""One tenant's view of the BlobStore: every key under ``tenants/<tenant>/`` (see
:mod:`agentfn.tenancy`), listings and cursors given back without the prefix."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import BinaryIO

from agentfn.blob_args import check_listing
from agentfn.keys import check_path
from agentfn.ports import Batching, Blob, BlobStore, Page
from agentfn.tenancy import tenant_prefix


class TenantBlobs:
    """One tenant's view of a BlobStore: its keys are the store's under the tenant prefix."""

    def __init__(self, inner: BlobStore, tenant: str) -> None:
        self.inner = inner
        self.tenant = tenant
        self.prefix = tenant_prefix(tenant)

    def _key(self, key: str, field: str = "key") -> str:
        # The caller's key is checked as given, so its errors name what it sent, not the prefix.
        check_path(key, field, allow_empty=field == "prefix")
        return self.prefix + key

    def _own(self, key: str) -> str:
        return key[len(self.prefix) :]

    def get(self, key: str) -> Blob:
        blob = self.inner.get(self._key(key))
        return Blob(key=key, data=blob.data, etag=blob.etag)

    def put(self, key: str, data: bytes) -> str:
        return self.inner.put(self._key(key), data)

    def put_if_absent(self, key: str, data: bytes) -> str:
        return self.inner.put_if_absent(self._key(key), data)

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        return self.inner.put_if_match(self._key(key), data, etag)

    def list(self, prefix: str = "", *, cursor: str | None = None, limit: int = 1000) -> Page:
        check_listing(cursor, limit)
        after = None if cursor is None else self.prefix + str(cursor)
        page = self.inner.list(self._key(prefix, "prefix"), cursor=after, limit=limit)
        keys = [self._own(k) for k in page.keys]
        return Page(keys=keys, cursor=None if page.cursor is None else self._own(page.cursor))

    def delete(self, key: str) -> None:
        self.inner.delete(self._key(key))

    def upload(self, key: str, stream: BinaryIO) -> str:
        return self.inner.upload(self._key(key), stream)

    def download(self, key: str, sink: BinaryIO) -> str:
        return self.inner.download(self._key(key), sink)


class BatchingTenantBlobs(TenantBlobs):
    """The view of a store whose writes commit together (SQLite): batches pass through."""

    inner: BlobStore

    def batch(self) -> AbstractContextManager[None]:
        assert isinstance(self.inner, Batching)
        return self.inner.batch()

    def after_commit(self, fn: Callable[[], None]) -> None:
        assert isinstance(self.inner, Batching)
        self.inner.after_commit(fn)


def tenant_blobs(inner: BlobStore, tenant: str) -> TenantBlobs:
    """``tenant``'s view of ``inner``, batching where ``inner`` does."""
    if isinstance(inner, Batching):
        return BatchingTenantBlobs(inner, tenant)
    return TenantBlobs(inner, tenant)
