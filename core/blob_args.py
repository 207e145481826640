"""Argument checks and mechanics every BlobStore applies alike (beside ``agentfn.keys``).

Bad input fails the same way on every backend — a ``UserError`` naming the field, before
anything is sent — and etags, content hashes and pages work the same everywhere: the adapters
and ``agentfn.testing``'s in-memory store share these. No SDK is imported.
"""

from __future__ import annotations

import hashlib

from agentfn.errors import UserError
from agentfn.ports import Page
from agentfn.queue_args import check_limit

__all__ = [
    "as_bytes",
    "bare_etag",
    "check_etag",
    "check_listing",
    "content_etag",
    "content_hash",
    "page_of",
    "quoted_etag",
]


def as_bytes(data: object) -> bytes:
    """Blob data as ``bytes``: a ``bytearray`` or ``memoryview`` is copied, anything else is
    refused."""
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if not isinstance(data, bytes):
        raise UserError(f"data must be bytes, got {type(data).__name__}", field="data")
    return data


def check_etag(etag: object) -> str:
    if not isinstance(etag, str):
        raise UserError("etag must be a string", field="etag")
    return etag


def check_listing(cursor: object, limit: object) -> None:
    """The ``cursor`` and ``limit`` of ``BlobStore.list``."""
    if cursor is not None and not isinstance(cursor, str):
        raise UserError("cursor must be a string or None", field="cursor")
    check_limit(limit)


def bare_etag(etag: str) -> str:
    """An etag without its quotes or weak ``W/`` marker, so callers may pass either form."""
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"')


def quoted_etag(etag: str) -> str:
    """An etag in the quoted form services compare (S3, Azure), from either form."""
    return '"' + bare_etag(etag) + '"'


def page_of(keys: list[str], limit: int) -> Page:
    """The page of up to ``limit + 1`` listed keys: the extra key, when there is one, says that
    another page follows, so the cursor is the page's last key and no empty page is served."""
    if len(keys) > limit:
        return Page(keys=keys[:limit], cursor=keys[limit - 1])
    return Page(keys=keys, cursor=None)


def content_hash(data: bytes = b"") -> hashlib.blake2b:
    """The hash behind content etags (BLAKE2b-128): the local and Libcloud stores compute
    their etags alike, so the same bytes have the same etag in both."""
    return hashlib.blake2b(data, digest_size=16)


def content_etag(digest: hashlib.blake2b) -> str:
    """The quoted etag of a finished :func:`content_hash`."""
    return '"' + digest.hexdigest() + '"'
