"""The audit log: append-only entries, listed newest first with a cursor."""

from __future__ import annotations

import pytest

from agentfn.audit import AuditLog
from agentfn.errors import PreconditionFailed, ValidationFailed
from agentfn.testing import FakeClock, MemoryBlobStore


def test_entries_list_newest_first_and_page() -> None:
    clock = FakeClock(1_800_000_000.0)
    log = AuditLog(MemoryBlobStore(), clock=clock)
    for i in range(5):
        log.record("k1", "key.created", f"key{i}", role="viewer")
        clock.advance(1)
    first = log.page(limit=3)
    assert [e.target for e in first.items] == ["key4", "key3", "key2"]
    assert first.items[0].details == {"role": "viewer"}
    rest = log.page(cursor=first.next_cursor, limit=3)
    assert [e.target for e in rest.items] == ["key1", "key0"] and rest.next_cursor is None


def test_entries_are_never_overwritten() -> None:
    blobs = MemoryBlobStore()
    log = AuditLog(blobs, clock=FakeClock(1_800_000_000.0))
    log.record("k1", "role.denied", "PUT /v1/agents/{name}")
    (key,) = blobs.list("audit/").keys
    with pytest.raises(PreconditionFailed):
        blobs.put_if_absent(key, b"{}")
    log.record("k1", "role.denied", "PUT /v1/agents/{name}")  # the same millisecond: kept too
    assert len(blobs.list("audit/").keys) == 2


def test_a_foreign_cursor_is_refused() -> None:
    with pytest.raises(ValidationFailed) as err:
        AuditLog(MemoryBlobStore()).page(cursor="runs/x")
    assert err.value.field == "cursor"
