"""A tenant's view of the store: its keys live under tenants/<t>/ and it can name no other."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentfn.adapters.local import SqliteBlobStore
from agentfn.errors import NotFound, UserError
from agentfn.ports import Batching
from agentfn.tenancy import check_tenant
from agentfn.tenant_blobs import BatchingTenantBlobs, tenant_blobs
from agentfn.testing import MemoryBlobStore


def test_keys_are_stored_under_the_tenant_prefix() -> None:
    root = MemoryBlobStore()
    tenant_blobs(root, "acme").put("runs/r1/run.json", b"a")
    assert root.list("").keys == ["tenants/acme/runs/r1/run.json"]
    assert tenant_blobs(root, "acme").get("runs/r1/run.json").key == "runs/r1/run.json"


def test_one_tenant_sees_nothing_of_another() -> None:
    root = MemoryBlobStore()
    acme, beta = tenant_blobs(root, "acme"), tenant_blobs(root, "beta")
    acme.put("runs/r1/run.json", b"a")
    with pytest.raises(NotFound):
        beta.get("runs/r1/run.json")
    assert beta.list("").keys == []
    beta.delete("runs/r1/run.json")
    assert acme.get("runs/r1/run.json").data == b"a"


@pytest.mark.parametrize("key", ["../beta/runs/r1/run.json", "/tenants/beta/x", "a/../../b", ""])
def test_no_key_climbs_out_of_the_prefix(key: str) -> None:
    with pytest.raises(UserError) as err:
        tenant_blobs(MemoryBlobStore(), "acme").get(key)
    assert err.value.field == "key"


def test_listing_pages_with_cursors_of_the_view() -> None:
    root = MemoryBlobStore()
    tenant_blobs(root, "beta").put("k/0", b"x")  # sorts beside acme's keys: never listed
    acme = tenant_blobs(root, "acme")
    for i in range(5):
        acme.put(f"k/{i}", b"x")
    seen, cursor = [], None
    while True:
        page = acme.list("k/", cursor=cursor, limit=2)
        seen += page.keys
        if page.cursor is None:
            break
        assert not page.cursor.startswith("tenants/")
        cursor = page.cursor
    assert seen == [f"k/{i}" for i in range(5)]


def test_a_batching_store_keeps_batching_through_the_view(tmp_path: Path) -> None:
    view = tenant_blobs(SqliteBlobStore(tmp_path / "b.db"), "acme")
    assert isinstance(view, BatchingTenantBlobs) and isinstance(view, Batching)
    with pytest.raises(RuntimeError), view.batch():
        view.put("a", b"1")
        raise RuntimeError("roll back")
    with pytest.raises(NotFound):
        view.get("a")
    assert not isinstance(tenant_blobs(MemoryBlobStore(), "acme"), Batching)


@pytest.mark.parametrize("name", ["Acme", "-acme", "acme-", "a/b", "a" * 41, "", "tenants"])
def test_tenant_names_are_checked(name: str) -> None:
    if name == "tenants":  # an ordinary name: nothing about it is special
        assert check_tenant(name) == name
        return
    with pytest.raises(UserError) as err:
        check_tenant(name)
    assert err.value.field == "tenant"
