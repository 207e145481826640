"""Agent memory, end to end on a real engine: on the local default (files + SQLite queue) and
on the AWS adapters against moto's server (S3 + SQS).

- a three-run conversation on one thread, whose third answer depends on the first message;
- two runs finishing on one thread at once: both land, nothing lost;
- a history longer than an agent's budget is cut (oldest first) or summarised;
- a thread past its TTL, or deleted, is gone: its record, the prompt-log entries and turn
  conversations of its runs, the facts remembered in it;
- an agent recalls a fact remembered in an earlier run, per tenant and agent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentfn.engine import Engine
from agentfn.errors import Conflict, NotFound, UserError
from agentfn.runs import Run, RunStatus
from agentfn.tenant_blobs import TenantBlobs
from agentfn.workflows import LoadedBlueprint, load_blueprint
from tests.support.engine_harness import drain, make_engine

RULES = r"""
model: scripted-test
rules:
  - instructions: help customers
    match: "(?i)what is my name"
    earlier: 'my name is (?P<name>\w+)'
    reply: {content: "Your name is {name}."}
  - instructions: help customers
    match: "(?i)what is my name"
    reply: {content: "I do not know your name."}
  - instructions: help customers
    match: "(?i)how many"
    earlier: '(?P<first>user: [^\n]*)'
    reply: {content: "The oldest I see is <{first}>."}
  - instructions: help customers
    reply: {content: "Noted: {last_user}"}
  - agent: condenser
    reply: {content: "SUMMARY OF {last_user}"}
  - instructions: keep facts
    match: 'remember (?P<key>[a-z ]+?) is (?P<value>\w+)'
    after_tool: false
    reply:
      tool_calls: [{name: remember, arguments: {key: "{key}", value: "{value}"}}]
  - instructions: keep facts
    match: 'what is (?P<key>[a-z ]+?)\?'
    after_tool: false
    reply:
      tool_calls: [{name: recall, arguments: {query: "{key}"}}]
  - instructions: keep facts
    match: "forget (?P<key>[a-z ]+)"
    after_tool: false
    reply:
      tool_calls: [{name: forget, arguments: {key: "{key}"}}]
  - instructions: keep facts
    after_tool: true
    reply: {content: "memory says {tool_result}"}
"""

WORKFLOW = """
name: support
models:
  default: {provider: scripted, rules: rules.yaml}
prices:
  scripted-test: {input_per_mtok: 1.0, output_per_mtok: 2.0}
agents:
  support: {instructions: You help customers.}
  brief: {instructions: You help customers., history_tokens: 30}
  summarised:
    instructions: You help customers.
    history_tokens: 30
    history_summariser: condenser
  condenser: {instructions: Summarise the conversation.}
  keeper:
    instructions: Keep facts for the user.
    tools: [remember, recall, forget]
  thread_keeper:
    instructions: Keep facts for the user.
    tools: [remember, recall, forget]
    memory: {scope: thread, ttl_s: 3600}
inputs:
  message: {type: string}
nodes:
  - {id: answer, type: agent, agent: AGENT, prompt: "{{ input.message }}"}
"""


@pytest.fixture(params=["local", "s3"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "local":
        yield make_engine(tmp_path)
    else:
        from tests.support.aws_engine import moto_engine

        yield moto_engine()[0]


def flow(tmp_path: Path, agent: str = "support") -> LoadedBlueprint:
    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    (folder / "rules.yaml").write_text(RULES)
    path = folder / f"{agent}.yaml"
    path.write_text(WORKFLOW.replace("AGENT", agent))
    return load_blueprint(path)


def say(engine: Engine, loaded: LoadedBlueprint, message: str, **start: Any) -> Run:
    run = drain(engine, engine.start(loaded, {"message": message}, **start).id)
    assert run.status is RunStatus.completed, run.error
    return run


def test_a_three_run_conversation_remembers_the_first_message(
    engine: Engine, tmp_path: Path
) -> None:
    loaded = flow(tmp_path)
    first = say(engine, loaded, "Hello, my name is Ada.", thread="chat-1")
    second = say(engine, loaded, "I would like to change my plan.", thread="chat-1")
    third = say(engine, loaded, "What is my name?", thread="chat-1")
    assert third.output == {"answer": "Your name is Ada."}
    # the same question without the thread, or on another one, has no history to go on
    assert say(engine, loaded, "What is my name?").output == {"answer": "I do not know your name."}
    other = say(engine, loaded, "What is my name?", thread="chat-2")
    assert other.output == {"answer": "I do not know your name."}

    thread = engine.conversations.get("chat-1")
    assert thread.runs == [first.id, second.id, third.id]
    assert [(m.role, m.content) for m in thread.messages] == [
        ("user", "Hello, my name is Ada."),
        ("assistant", "Noted: Hello, my name is Ada."),
        ("user", "I would like to change my plan."),
        ("assistant", "Noted: I would like to change my plan."),
        ("user", "What is my name?"),
        ("assistant", "Your name is Ada."),
    ]
    # the third run's agent started from the two runs before it: instructions, history, prompt
    [entry] = engine.prompts.entries(third.id)
    assert entry.thread == "chat-1"
    assert [m.role for m in entry.request.messages] == [
        "system",
        *["user", "assistant"] * 2,
        "user",
    ]
    # a replay starts from the same history (the thread has grown since) and adds nothing
    replayed = drain(engine, engine.replay(second.id).id)
    assert replayed.output == second.output
    [served] = engine.prompts.entries(replayed.id)
    assert served.replayed_from == second.id  # the same conversation, served from the log
    assert len(engine.conversations.get("chat-1").messages) == 6
    assert replayed.id in engine.conversations.runs("chat-1")  # its prompts hold the thread


def test_a_redelivered_completion_appends_once(engine: Engine, tmp_path: Path) -> None:
    loaded = flow(tmp_path)
    run = say(engine, loaded, "my name is Bo", thread="again")
    assert engine.conversations.finish(run) is not None  # as a redelivery would, after a crash
    assert len(engine.conversations.get("again").messages) == 2


def test_two_runs_finishing_on_one_thread_at_once_lose_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    loaded = flow(tmp_path)
    starts = [engine.start(loaded, {"message": f"note {i}"}, thread="busy") for i in range(4)]
    stop = threading.Event()
    workers = [
        threading.Thread(target=engine.work, kwargs={"stop": stop.is_set, "poll_s": 0.05})
        for _ in range(3)
    ]
    for w in workers:
        w.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(engine.store.get(r.id).status.terminal for r in starts):
                break
            time.sleep(0.05)
    finally:
        stop.set()
        for w in workers:
            w.join()
    thread = engine.conversations.get("busy")
    assert sorted(thread.runs) == sorted(r.id for r in starts)
    said = sorted(m.content or "" for m in thread.messages if m.role == "user")
    assert said == [f"note {i}" for i in range(4)]
    assert len(thread.messages) == 8


def test_history_beyond_the_budget_is_dropped_oldest_first_or_summarised(
    engine: Engine, tmp_path: Path
) -> None:
    support = flow(tmp_path)
    for text in ("first thing", "second thing", "third thing"):
        say(engine, support, text, thread="long")
    # "brief" holds 30 tokens of history: the last exchange only (each message is ~8)
    brief = say(engine, flow(tmp_path, "brief"), "how many do you see?", thread="long")
    [entry] = engine.prompts.entries(brief.id)
    assert [m.content for m in entry.request.messages[1:-1]] == [
        "second thing",
        "Noted: second thing",
        "third thing",
        "Noted: third thing",
    ][-len(entry.request.messages[1:-1]) :]
    assert "first thing" not in entry.request.model_dump_json()
    # "summarised" hands what its budget drops to the condenser, and starts from its summary
    summarised = say(engine, flow(tmp_path, "summarised"), "how many now?", thread="long")
    entries = {e.step: e for e in engine.prompts.entries(summarised.id)}
    summary = entries["answer@0/summary"]
    assert (
        summary.agent == "condenser" and "user: first thing" in summary.request.messages[-1].content
    )  # type: ignore[operator]
    system = entries["answer@0"].request.messages[0].content or ""
    assert system.startswith("You help customers.") and "SUMMARY OF user: first thing" in system
    # both calls were paid for, and counted on the run
    assert summarised.usage.total_tokens == sum(
        e.reply.usage.total_tokens for e in entries.values()
    )


def test_a_thread_past_its_ttl_is_gone_with_what_held_its_messages(
    engine: Engine, tmp_path: Path
) -> None:
    loaded = flow(tmp_path)
    first = say(engine, loaded, "my name is Cy", thread="short", thread_ttl_s=1.5)
    assert engine.conversations.get("short").ttl_s == 1.5
    assert list(engine.prompts.entries(first.id))
    time.sleep(1.7)
    with pytest.raises(NotFound):
        engine.conversations.get("short")
    with pytest.raises(NotFound):  # the run that held its messages went with it
        engine.store.get(first.id)
    assert list(engine.prompts.entries(first.id)) == []
    assert list(engine.store.steps(first.id)) == []
    # a run on it now starts a new conversation, without the old one
    again = say(engine, loaded, "What is my name?", thread="short")
    assert again.output == {"answer": "I do not know your name."}
    assert engine.conversations.get("short").runs == [again.id]


def test_a_deleted_thread_is_gone_everywhere(engine: Engine, tmp_path: Path) -> None:
    loaded = flow(tmp_path)
    keeper = flow(tmp_path, "thread_keeper")
    first = say(engine, loaded, "my name is Di", thread="doomed")
    kept = say(engine, keeper, "remember the order id is A17", thread="doomed")
    assert engine.conversations.memory.recall("thread_keeper", thread="doomed")
    # while a run on the thread is going, it cannot be deleted (its end would bring it back)
    going = engine.start(loaded, {"message": "still talking"}, thread="doomed")
    with pytest.raises(Conflict):
        engine.conversations.delete("doomed")
    engine.cancel(going.id)

    assert sorted(engine.conversations.delete("doomed")) == sorted([first.id, kept.id, going.id])
    with pytest.raises(NotFound):
        engine.conversations.get("doomed")
    # the runs on it went with it: records, steps, prompt log, their place in the listing
    for run in (first, kept, going):
        with pytest.raises(NotFound):
            engine.store.get(run.id)
        assert list(engine.prompts.entries(run.id)) == []
        assert list(engine.store.blobs.list(f"runs/{run.id}/").keys) == []
    listed, _ = engine.store.list_runs(limit=100)
    assert not {first.id, kept.id, going.id} & {r.id for r in listed}
    assert engine.conversations.memory.recall("thread_keeper", thread="doomed") == []
    assert engine.conversations.runs("doomed") == []
    with pytest.raises(NotFound):  # nothing of it left to delete
        engine.conversations.delete("doomed")
    again = say(engine, loaded, "What is my name?", thread="doomed")
    assert again.output == {"answer": "I do not know your name."}


def test_an_agent_recalls_a_fact_remembered_in_an_earlier_run(
    engine: Engine, tmp_path: Path
) -> None:
    keeper = flow(tmp_path, "keeper")
    say(engine, keeper, "remember the favourite colour is green")
    recalled = say(engine, keeper, "what is the favourite colour?")
    assert recalled.output["answer"] == (
        'memory says {"facts": [{"key": "the favourite colour", "value": "green"}]}'
    )
    # another agent of the tenant has its own memory
    assert engine.conversations.memory.recall("thread_keeper") == []
    gone = say(engine, keeper, "forget the favourite colour")
    assert gone.output["answer"] == 'memory says {"forgotten": true}'
    empty = say(engine, keeper, "what is the favourite colour?")
    assert empty.output["answer"] == 'memory says {"facts": []}'


def test_thread_scoped_memory_stays_in_its_thread(engine: Engine, tmp_path: Path) -> None:
    keeper = flow(tmp_path, "thread_keeper")
    say(engine, keeper, "remember the order id is A17", thread="t-1")
    same = say(engine, keeper, "what is the order id?", thread="t-1")
    other = say(engine, keeper, "what is the order id?", thread="t-2")
    alone = say(engine, keeper, "what is the order id?")
    assert "A17" in same.output["answer"]
    assert "A17" not in other.output["answer"] and "A17" not in alone.output["answer"]
    [fact] = engine.conversations.memory.recall("thread_keeper", thread="t-1")
    assert fact.expires_at is not None and fact.expires_at - fact.saved_at == 3600


def test_nothing_crosses_tenants(tmp_path: Path) -> None:
    from agentfn.adapters.local import FileBlobStore, SqliteQueue

    store = FileBlobStore(tmp_path / "store")
    base = make_engine(tmp_path)
    engines = {
        t: Engine(
            TenantBlobs(store, t),
            SqliteQueue(tmp_path / f"{t}.db"),
            model_factory=base.model_factory,
            tenant=t,
        )
        for t in ("acme", "globex")
    }
    acme, globex = engines["acme"], engines["globex"]
    say(acme, flow(tmp_path), "my name is Ed", thread="shared-name")
    say(acme, flow(tmp_path, "keeper"), "remember the secret plan is tulips")
    # the same thread id and the same agent, in another tenant: nothing of acme's
    asked = say(globex, flow(tmp_path), "What is my name?", thread="shared-name")
    assert asked.output == {"answer": "I do not know your name."}
    recalled = say(globex, flow(tmp_path, "keeper"), "what is the secret plan?")
    assert "tulips" not in recalled.output["answer"]
    assert globex.conversations.get("shared-name").runs == [asked.id]
    with pytest.raises(NotFound):
        globex.conversations.delete("other")
    assert len(acme.conversations.get("shared-name").messages) == 2
    every = store.list("").keys
    assert {k.split("/")[1] for k in every if k.startswith("tenants/")} == {"acme", "globex"}


def test_bad_thread_ids_and_ttls_are_refused(engine: Engine, tmp_path: Path) -> None:
    loaded = flow(tmp_path)
    for bad in ("", "../x", "a/b", "x" * 129):
        with pytest.raises(UserError) as caught:
            engine.start(loaded, {"message": "hi"}, thread=bad)
        assert caught.value.field == "thread"
    with pytest.raises(UserError) as caught:
        engine.start(loaded, {"message": "hi"}, thread="ok", thread_ttl_s=0)
    assert caught.value.field == "thread_ttl_s"
