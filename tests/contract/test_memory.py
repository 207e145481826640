"""Long-term memory on every BlobStore: facts recalled by key and by text, scoped per agent
(and per thread when asked), expiring, forgotten; nothing crosses tenants."""

from __future__ import annotations

import pytest

from agentfn.errors import ValidationFailed
from agentfn.memory import MemoryStore
from agentfn.ports import BlobStore
from agentfn.tenant_blobs import TenantBlobs


def test_recall_by_key_and_by_text(blobstore: BlobStore) -> None:
    memory = MemoryStore(blobstore)
    memory.remember("researcher", "vector databases", "pgvector and Qdrant were compared")
    memory.remember("researcher", "cold starts", "Lambda cold starts are about 200 ms")
    memory.remember("researcher", "cold starts", "Lambda cold starts are about 150 ms")  # replaced
    [fact] = memory.recall("researcher", key="cold starts")
    assert fact.value == "Lambda cold starts are about 150 ms"
    found = memory.recall("researcher", query="How slow are Lambda cold starts?")
    assert [f.key for f in found] == ["cold starts"]
    assert {f.key for f in memory.recall("researcher")} == {"vector databases", "cold starts"}
    assert memory.recall("researcher", query="kubernetes") == []
    assert memory.recall("writer") == []  # another agent's memory is its own


def test_a_threads_facts_stay_in_the_thread(blobstore: BlobStore) -> None:
    memory = MemoryStore(blobstore)
    memory.remember("support", "name", "Ada", thread="customer-1")
    memory.remember("support", "name", "Grace", thread="customer-2")
    assert [f.value for f in memory.recall("support", key="name", thread="customer-1")] == ["Ada"]
    assert [f.value for f in memory.recall("support", key="name", thread="customer-2")] == ["Grace"]
    assert memory.recall("support", key="name") == []


def test_facts_expire_and_are_forgotten(blobstore: BlobStore) -> None:
    now = [100.0]
    memory = MemoryStore(blobstore, clock=lambda: now[0])
    memory.remember("a1", "short", "lives a minute", ttl_s=60)
    memory.remember("a1", "long", "lives on")
    now[0] += 61
    assert [f.key for f in memory.recall("a1")] == ["long"]
    assert memory.recall("a1", key="short") == []
    assert memory.forget("a1", "long") is True
    assert memory.forget("a1", "long") is False
    assert memory.recall("a1") == []
    assert list(blobstore.list("memory/").keys) == []  # the expired one was removed too


def test_nothing_crosses_tenants(blobstore: BlobStore) -> None:
    acme, globex = TenantBlobs(blobstore, "acme"), TenantBlobs(blobstore, "globex")
    MemoryStore(acme).remember("agent", "secret plan", "launch on Monday")
    assert MemoryStore(globex).recall("agent", query="secret plan launch") == []
    assert MemoryStore(globex).recall("agent", key="secret plan") == []
    assert [f.key for f in MemoryStore(acme).recall("agent", query="plan")] == ["secret plan"]


@pytest.mark.parametrize(
    ("agent", "key", "thread", "field"),
    [("../x", "k", None, "agent"), ("a", "", None, "key"), ("a", "k", "a/b", "thread")],
)
def test_bad_names_are_refused(
    blobstore: BlobStore, agent: str, key: str, thread: str | None, field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        MemoryStore(blobstore).remember(agent, key, "v", thread=thread)
    assert refused.value.field == field


def test_a_plugged_in_search_index_answers_queries(blobstore: BlobStore) -> None:
    from tests.support.fact_index import SynonymIndex

    now = [100.0]
    index = SynonymIndex()
    memory = MemoryStore(
        TenantBlobs(blobstore, "acme"), search=index, tenant="acme", clock=lambda: now[0]
    )
    plain = MemoryStore(TenantBlobs(blobstore, "acme"), clock=lambda: now[0])
    memory.remember("support", "favourite colour", "green")
    memory.remember("support", "plan", "premium", ttl_s=10)
    # the index finds what the word match cannot
    assert [f.value for f in memory.recall("support", query="hue")] == ["green"]
    assert plain.recall("support", query="hue") == []
    # the index keeps tenant, agent and scope apart in its spaces
    spaces = {space for op, space, _ in index.calls if op == "index"}
    assert spaces == {"acme/memory/support/_shared/"}
    memory.remember("support", "colour", "blue", thread="t-9")
    assert ("index", "acme/memory/support/t.t-9/", "colour") in index.calls
    # a key the index returns whose fact expired or is gone is skipped
    now[0] = 200.0
    assert memory.recall("support", query="premium plan") == []
    assert memory.forget("support", "favourite colour")
    assert ("remove", "acme/memory/support/_shared/", "favourite colour") in index.calls
    assert memory.recall("support", query="hue") == []
    # a thread's facts leave the index with the thread
    assert memory.forget_thread("t-9") == 1
    assert ("remove", "acme/memory/support/t.t-9/", "colour") in index.calls
    assert memory.recall("support", thread="t-9") == []
