"""Tenants: every record of a tenant lives under ``tenants/<tenant>/`` in the one BlobStore.

A tenant's engine, catalog, prompt log and audit log see the store through a
:class:`TenantBlobs` view that prefixes every key, so no code path of a tenant can name a key
of another: isolation is a property of the store the code is handed, not of each handler
remembering to check. Queue jobs carry their tenant (see ``step_ready``) and a worker opens
the job's run through that tenant's view only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import BinaryIO

from agentfn.blob_args import check_listing
from agentfn.errors import UserError
from agentfn.keys import check_path
from agentfn.ports import Batching, Blob, BlobStore, Page

DEFAULT_TENANT = "default"
# Lower-case letters, digits and dashes: safe as a key segment on every store and in a log line.
TENANT_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
TENANTS_ROOT = "tenants/"


def check_tenant(value: object, field: str = "tenant") -> str:
    """``value`` as a tenant name, or a :class:`UserError` naming ``field``."""
    if not isinstance(value, str) or TENANT_PATTERN.fullmatch(value) is None:
        raise UserError(
            f"{field} {value!r} is not a tenant name: 1-40 lower-case letters, digits and "
            "dashes, starting and ending with a letter or digit",
            field=field,
        )
    return value


def tenant_prefix(tenant: str) -> str:
    return f"{TENANTS_ROOT}{check_tenant(tenant)}/"


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

