"""The audit log: who did what to a tenant's keys, and which calls its roles or quotas refused.

Append-only: each entry is its own object, written with ``put_if_absent`` under a key no
other entry can take, and nothing in agentfn rewrites or deletes one. Keys sort newest first
(an inverted microsecond clock), so the admin's listing pages back in
time with a cursor.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from agentfn.errors import CorruptRecord, NotFound, PreconditionFailed, ValidationFailed
from agentfn.ports import BlobStore

_PREFIX = "audit/"
_CURSOR = re.compile(r"audit/[0-9]{16}_[0-9a-f]{16}\.json")

Action = Literal[
    "key.created", "key.rotated", "key.revoked", "role.denied", "quota.exceeded", "settings.changed"
]


class AuditEntry(BaseModel):
    at: float
    actor: str  # the key id that acted ("bootstrap" for the deployment's bootstrap key)
    action: Action
    target: str  # what it acted on: a key id, or the route a denial or quota refused
    details: dict[str, Any] = Field(default_factory=dict)


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = None


class AuditLog:
    """One tenant's log; ``blobs`` is that tenant's view of the store."""

    def __init__(self, blobs: BlobStore, *, clock: Callable[[], float] = time.time) -> None:
        self.blobs = blobs
        self.clock = clock

    def record(self, actor: str, action: Action, target: str, **details: Any) -> AuditEntry:
        entry = AuditEntry(
            at=self.clock(), actor=actor, action=action, target=target, details=details
        )
        inverted = 10**16 - int(entry.at * 1_000_000)  # microseconds: calls ms apart stay ordered
        data = entry.model_dump_json().encode()
        while True:
            try:
                self.blobs.put_if_absent(
                    f"{_PREFIX}{inverted:016d}_{secrets.token_hex(8)}.json", data
                )
                return entry
            except PreconditionFailed:  # 64 random bits met another entry: a new key
                continue

    def page(self, *, cursor: str | None = None, limit: int = 50) -> AuditPage:
        if cursor is not None and _CURSOR.fullmatch(cursor) is None:
            raise ValidationFailed("cursor is not one this API returned", field="cursor")
        page = self.blobs.list(_PREFIX, cursor=cursor, limit=limit)
        items = []
        for key in page.keys:
            try:
                items.append(AuditEntry.model_validate_json(self.blobs.get(key).data))
            except NotFound:
                continue
            except ValueError as exc:
                raise CorruptRecord(f"audit entry {key} does not parse: {exc}") from None
        return AuditPage(items=items, next_cursor=page.cursor)
