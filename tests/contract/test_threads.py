"""Conversation threads on every BlobStore: appends by compare-and-swap lose nothing when runs
finish on one thread at once; a thread past its TTL, or deleted, is gone."""

from __future__ import annotations

import threading

import pytest

from agentfn.errors import NotFound, ValidationFailed
from agentfn.ports import BlobStore, Message
from agentfn.threads import ThreadStore


def said(*texts: str) -> list[Message]:
    return [Message(role="user", content=t) for t in texts]


def test_appends_keep_every_message_in_order(blobstore: BlobStore) -> None:
    store = ThreadStore(blobstore)
    store.append("t-1", said("hello", "hi there"))
    thread = store.append("t-1", said("what did I say first?"))
    assert [m.content for m in store.get("t-1").messages] == [
        "hello",
        "hi there",
        "what did I say first?",
    ]
    assert thread.created_at <= thread.updated_at


def test_concurrent_appends_lose_nothing(blobstore: BlobStore) -> None:
    store = ThreadStore(blobstore)
    writers, each = 4, 3

    def run(w: int) -> None:
        for i in range(each):
            store.append("busy", said(f"w{w}-{i}"))

    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    texts = [m.content for m in store.get("busy").messages]
    assert sorted(texts) == sorted(f"w{w}-{i}" for w in range(writers) for i in range(each))
    for w in range(writers):  # each writer's own messages stay in its order
        mine = [t for t in texts if t is not None and t.startswith(f"w{w}-")]
        assert mine == [f"w{w}-{i}" for i in range(each)]


def test_a_thread_past_its_ttl_or_deleted_is_gone(blobstore: BlobStore) -> None:
    now = [1000.0]
    store = ThreadStore(blobstore, clock=lambda: now[0])
    store.append("short", said("remember me"), ttl_s=60)
    now[0] += 59
    assert store.get("short").expires_at == 1060
    now[0] += 2
    with pytest.raises(NotFound):
        store.get("short")
    with pytest.raises(NotFound):
        blobstore.get("threads/short.json")  # reading it removed it from the store
    fresh = store.append("short", said("new start"))
    assert [m.content for m in fresh.messages] == ["new start"]  # nothing of the old one
    assert fresh.ttl_s is None and fresh.created_at == 1061
    store.append("lapsed", said("old"), ttl_s=10)
    now[0] += 11
    assert [m.content for m in store.append("lapsed", said("new")).messages] == ["new"]
    store.delete("short")
    store.delete("short")  # deleting again is no error
    with pytest.raises(NotFound):
        store.get("short")


@pytest.mark.parametrize("bad", ["", "../other", "a/b", "x" * 129, "-leading"])
def test_a_thread_id_is_checked(blobstore: BlobStore, bad: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        ThreadStore(blobstore).append(bad, said("x"))
    assert refused.value.field == "thread"
