"""Argument checks that several adapters wrote word for word.

Bad input then fails the same way on every backend, a ``UserError`` naming the field, before
anything is sent. They sit beside the checks in core (``agentfn.keys`` for blob keys,
``agentfn.queue_args`` for queue arguments), which stay where they are. No SDK is imported.
"""

from __future__ import annotations

from agentfn.errors import UserError

__all__ = ["as_bytes", "check_etag", "check_limit", "check_listing", "check_max_attempts"]


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


def check_limit(limit: object) -> int:
    """A page size or dead-letter count: an integer >= 1."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise UserError("limit must be a positive integer", field="limit")
    return limit


def check_listing(cursor: object, limit: object) -> None:
    """The ``cursor`` and ``limit`` of ``BlobStore.list``."""
    if cursor is not None and not isinstance(cursor, str):
        raise UserError("cursor must be a string or None", field="cursor")
    check_limit(limit)


def check_max_attempts(max_attempts: object) -> int:
    """A queue's ``max_attempts``: an integer >= 1."""
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise UserError("max_attempts must be an integer >= 1", field="max_attempts")
    return max_attempts
