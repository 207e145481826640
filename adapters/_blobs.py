"""BlobStore mechanics that several adapters wrote alike: how an etag a caller passes back is
read, how content etags are computed, and how a listing that fetched one key more than a page
is cut into a ``Page``.

No SDK is imported.
"""

from __future__ import annotations

import hashlib

from agentfn.ports import Page

__all__ = ["bare_etag", "content_etag", "content_hash", "page_of", "quoted_etag"]


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
