"""What an agent on a thread starts from: the thread as its run found it, cut to the agent's
token budget from the oldest end, always opening with a user message; and a thread that stays
bounded, dropping its oldest messages, without moving any run's place in it."""

from __future__ import annotations

from agentfn.conversations import Conversations, fit_history, message_tokens
from agentfn.memory import MemoryStore
from agentfn.ports import Message
from agentfn.runs import RunStore
from agentfn.testing import MemoryBlobStore
from agentfn.threads import ThreadStore


def exchange(n: int) -> list[Message]:
    return [
        Message(role="user", content=f"question {n}"),
        Message(role="assistant", content=f"answer {n}"),
    ]


def test_the_budget_keeps_the_newest_messages_from_a_user_message() -> None:
    history = [*exchange(1), *exchange(2), *exchange(3)]
    each = message_tokens(history[0])
    assert message_tokens(Message(role="user", content="x" * 40)) == 4 + 10
    kept, dropped = fit_history(history, budget_tokens=4 * each)
    assert kept == history[2:] and dropped == history[:2]
    # a budget that ends inside an exchange does not open on the assistant's half of it
    kept, dropped = fit_history(history, budget_tokens=3 * each)
    assert kept == history[4:] and [m.role for m in kept] == ["user", "assistant"]
    assert fit_history(history, budget_tokens=0) == ([], history)
    assert fit_history(history, budget_tokens=10_000) == (history, [])


def test_a_thread_drops_its_oldest_messages_past_its_bound() -> None:
    threads = ThreadStore(MemoryBlobStore(), max_messages=5)
    for n in range(1, 4):
        thread = threads.append("t", exchange(n), run_id=f"run_{n}")
    # six messages, five kept at most, opening on a user message: the first exchange goes
    assert [m.content for m in thread.messages] == [
        "question 2",
        "answer 2",
        "question 3",
        "answer 3",
    ]
    assert (thread.trimmed, thread.appended) == (2, 6)
    assert threads.get("t").trimmed == 2


def test_a_run_keeps_its_place_in_a_thread_that_was_trimmed_since() -> None:
    blobs = MemoryBlobStore()
    conversations = Conversations(RunStore(blobs), MemoryStore(blobs))
    conversations.threads.max_messages = 4
    conversations.threads.append("t", exchange(1))
    conversations.threads.append("t", exchange(2))
    mark = conversations.begin("t", "run_x")  # starts after exchanges 1 and 2
    assert mark.upto == 4
    conversations.threads.append("t", exchange(3))  # another run finishes: 1 is dropped
    assert [m.content for m in conversations.history(mark)] == ["question 2", "answer 2"]
    conversations.threads.append("t", [*exchange(4), *exchange(5)])  # 2 and 3 dropped too
    assert conversations.history(mark) == []
