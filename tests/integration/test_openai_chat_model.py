from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentfn.adapters.models.openai_chat import OpenAIChatModel
from agentfn.errors import ModelError, TransientModelError
from agentfn.ports import ChatRequest, Message, Model, ToolCall, ToolSpec
from agentfn.resilience import Backoff, CircuitBreaker, ResilientModel
from tests.support.chat_server import ChatCompletionsServer

ROOT = Path(__file__).resolve().parents[2]

API_KEY = "sk-test-SECRET-0123456789abcdef"
WORD_COUNT = ToolSpec(
    name="word_count",
    description="Count words",
    parameters={"type": "object", "properties": {"text": {"type": "string"}}},
)


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the SDK's HTTP client from routing 127.0.0.1 through an ambient proxy."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[ChatCompletionsServer]:
    with ChatCompletionsServer() as srv:
        yield srv
        assert srv.problems == []


def make_model(server: ChatCompletionsServer, timeout_s: float = 5.0) -> OpenAIChatModel:
    return OpenAIChatModel(
        "gpt-test", api_key=API_KEY, base_url=server.base_url, timeout_s=timeout_s
    )


def ask(text: str = "hello", **kwargs: object) -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content=text)], **kwargs)


def test_text_reply(server: ChatCompletionsServer) -> None:
    server.reply_text("Hi there", usage=(12, 3), model="gpt-test-2024")
    model = make_model(server)
    assert isinstance(model, Model)
    reply = model.chat(
        ChatRequest(
            messages=[
                Message(role="system", content="Be brief."),
                Message(role="user", content="hi"),
            ],
            temperature=0.2,
        )
    )
    assert reply.content == "Hi there"
    assert reply.tool_calls == []
    assert reply.finish_reason == "stop"
    assert reply.model == "gpt-test-2024"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (12, 3)

    (sent,) = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.bearer == API_KEY
    assert sent.body["model"] == "gpt-test"
    assert sent.body["temperature"] == 0.2
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert "tools" not in sent.body


def test_request_model_override_and_default_temperature(server: ChatCompletionsServer) -> None:
    server.reply_text("ok")
    model = OpenAIChatModel("gpt-test", api_key=API_KEY, base_url=server.base_url, temperature=0.7)
    model.chat(ask(model="gpt-other"))
    assert server.requests[0].body["model"] == "gpt-other"
    assert server.requests[0].body["temperature"] == 0.7


def test_missing_usage_maps_to_zero(server: ChatCompletionsServer) -> None:
    server.reply_text("no usage", usage=None)
    reply = make_model(server).chat(ask())
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (0, 0)


def test_tool_call_round_trip(server: ChatCompletionsServer) -> None:
    model = make_model(server)
    server.reply_tool_calls([("word_count", {"text": "a b c"})], ids=["call_abc"], usage=(20, 7))
    first = model.chat(ask("count a b c", tools=[WORD_COUNT]))
    assert first.finish_reason == "tool_calls"
    assert first.content is None
    assert first.tool_calls == [
        ToolCall(id="call_abc", name="word_count", arguments={"text": "a b c"})
    ]
    assert first.usage.completion_tokens == 7
    assert server.requests[0].body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "word_count",
                "description": "Count words",
                "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
            },
        }
    ]

    server.reply_text("There are 3 words.")
    follow_up = ChatRequest(
        messages=[
            Message(role="user", content="count a b c"),
            Message(role="assistant", content=None, tool_calls=first.tool_calls),
            Message(role="tool", tool_call_id="call_abc", name="word_count", content="3"),
        ],
        tools=[WORD_COUNT],
    )
    second = model.chat(follow_up)
    assert second.content == "There are 3 words."
    assert server.requests[1].body["messages"] == [
        {"role": "user", "content": "count a b c"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "word_count", "arguments": '{"text": "a b c"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": "3"},
    ]


def test_tool_with_empty_parameters_gets_an_object_schema(server: ChatCompletionsServer) -> None:
    server.reply_text("ok")
    make_model(server).chat(ask(tools=[ToolSpec(name="now")]))
    fn = server.requests[0].body["tools"][0]["function"]
    assert fn["parameters"] == {"type": "object", "properties": {}}


def test_invalid_tool_arguments_json_is_model_error(server: ChatCompletionsServer) -> None:
    server.reply_tool_calls([("word_count", '{"text": "unterminated')])
    with pytest.raises(ModelError, match="word_count") as info:
        make_model(server).chat(ask(tools=[WORD_COUNT]))
    assert not isinstance(info.value, TransientModelError)


def test_non_object_tool_arguments_is_model_error(server: ChatCompletionsServer) -> None:
    server.reply_tool_calls([("word_count", "[1, 2]")])
    with pytest.raises(ModelError, match="word_count"):
        make_model(server).chat(ask(tools=[WORD_COUNT]))


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_transient_statuses_are_retried_then_succeed(
    server: ChatCompletionsServer, status: int
) -> None:
    server.reply_error(status, "try later", type="server_error")
    server.reply_error(status, "try later", type="server_error")
    server.reply_text("finally")
    slept: list[float] = []
    model = ResilientModel(
        make_model(server), attempts=3, backoff=Backoff(base_s=0.01), sleep=slept.append
    )
    assert model.chat(ask()).content == "finally"
    assert len(server.requests) == 3
    assert len(slept) == 2


@pytest.mark.parametrize("status", [500, 429])
def test_transient_status_maps_to_transient_error(
    server: ChatCompletionsServer, status: int
) -> None:
    server.reply_error(status, "overloaded right now")
    with pytest.raises(TransientModelError, match=rf"HTTP {status}: overloaded right now"):
        make_model(server).chat(ask())


def test_unauthorized_is_not_retried_and_never_leaks_the_key(
    server: ChatCompletionsServer,
) -> None:
    # A server that echoes the key back, as some do.
    server.reply_error(401, f"Incorrect API key provided: {API_KEY}", type="invalid_request_error")
    breaker = CircuitBreaker(failure_threshold=1)
    model = ResilientModel(make_model(server), attempts=3, breaker=breaker, sleep=lambda s: None)
    with pytest.raises(ModelError) as info:
        model.chat(ask())
    err = info.value
    assert not isinstance(err, TransientModelError)
    assert "401" in str(err)
    assert "Incorrect API key provided" in str(err)
    assert API_KEY not in str(err)
    assert API_KEY not in repr(err)
    assert err.__cause__ is None and err.__suppress_context__
    assert len(server.requests) == 1
    assert breaker.state == "closed"


def test_not_found_is_model_error_with_server_message(server: ChatCompletionsServer) -> None:
    server.reply_error(404, "The model `gpt-nope` does not exist", code="model_not_found")
    with pytest.raises(ModelError, match="HTTP 404: The model `gpt-nope` does not exist"):
        make_model(server).chat(ask())


def test_timeout_is_transient(server: ChatCompletionsServer) -> None:
    server.reply_delay(3.0)
    with pytest.raises(TransientModelError, match="timed out"):
        make_model(server, timeout_s=0.5).chat(ask())


def test_connection_refused_is_transient() -> None:
    with ChatCompletionsServer() as srv:
        base_url = srv.base_url
    model = OpenAIChatModel("gpt-test", api_key=API_KEY, base_url=base_url, timeout_s=2)
    with pytest.raises(TransientModelError):
        model.chat(ask())


def test_repr_hides_the_key(server: ChatCompletionsServer) -> None:
    assert API_KEY not in repr(make_model(server))


def test_module_import_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "import agentfn.adapters.models.openai_chat, agentfn.adapters.models\n"
        "print('openai' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "False"
