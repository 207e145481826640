"""Small JSON records changed by compare-and-swap: the state quotas and concurrency keys share
across function instances. A missing record reads as ``None`` with no etag; writing with no
etag creates it only if it is still missing."""

from __future__ import annotations

import json
from typing import Any

from agentfn.errors import CorruptRecord, NotFound, PreconditionFailed
from agentfn.ports import BlobStore


def read_json(blobs: BlobStore, key: str) -> tuple[Any, str | None]:
    try:
        blob = blobs.get(key)
    except NotFound:
        return None, None
    try:
        return json.loads(blob.data), blob.etag
    except ValueError as exc:
        raise CorruptRecord(f"{key} does not parse: {exc}") from None


def write_json(blobs: BlobStore, key: str, value: Any, etag: str | None) -> bool:
    """Whether the write won (False: someone changed or created the record first)."""
    data = json.dumps(value, sort_keys=True).encode()
    try:
        if etag is None:
            blobs.put_if_absent(key, data)
        else:
            blobs.put_if_match(key, data, etag)
    except PreconditionFailed:
        return False
    return True


def holders_of(value: Any, key: str) -> dict[str, float]:
    """A record mapping names to times (active runs, slot holders)."""
    if value is None:
        return {}
    try:
        return {str(k): float(v) for k, v in value.items()}
    except (AttributeError, TypeError, ValueError) as exc:
        raise CorruptRecord(f"{key} does not parse: {exc}") from None
