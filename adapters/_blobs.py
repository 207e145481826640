"""BlobStore mechanics that several adapters wrote alike: how an etag a caller passes back is
read, and how a listing that fetched one key more than a page is cut into a ``Page``.

No SDK is imported.
"""

from __future__ import annotations

from agentfn.ports import Page

__all__ = ["bare_etag", "page_of", "quoted_etag"]


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
