"""The Bedrock adapter against a local server speaking the Bedrock Runtime Converse REST
protocol (boto3 pointed at it with AWS_ENDPOINT_URL_BEDROCK_RUNTIME, credentials from the
environment — the SDK's own mechanisms): a two-turn agent with a tool call, usage recorded and
priced, throttling retried, a permanent error surfaced with Bedrock's message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from agentfn.adapters.models.factory import clear_model_cache
from agentfn.errors import ConfigError
from agentfn.model_policy import ModelPolicy
from agentfn.model_spec import ModelSpec
from agentfn.runs import RunStatus
from tests.support.engine_harness import make_engine, project, run_to_end
from tests.support.model_servers import ConverseServer, scripted

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def flow(model: str) -> str:
    return f"""
models:
  bedrock: {{provider: bedrock, model: "{model}", max_retries: 3}}
agents:
  helper: {{instructions: Use the record tool., model: bedrock, tools: [record]}}
nodes:
  - {{id: ask, type: agent, agent: helper, prompt: "Record label bedrock."}}
"""


@pytest.fixture
def bedrock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConverseServer]:
    rules = Path(project(tmp_path, "nodes: []", name="rules-only")).with_name("rules.yaml")
    with ConverseServer(scripted(rules, {"Use the record tool.": "helper"})) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        clear_model_cache()
        yield server
        clear_model_cache()


def test_a_two_turn_agent_with_a_tool_call_on_bedrock(
    tmp_path: Path, bedrock: ConverseServer
) -> None:
    engine = make_engine(tmp_path)
    run = run_to_end(engine, project(tmp_path, flow(MODEL)))
    assert run.status is RunStatus.completed, run.error
    assert run.output == {"ask": "helper saw BEDROCK"}  # the record tool shouts
    first, second = bedrock.requests
    assert first.path == f"/model/{quote(MODEL, safe='')}/converse"  # the id, URL-encoded
    assert first.body["system"] == [{"text": "Use the record tool."}]
    assert first.body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "record"
    auth = first.headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/")  # signed
    assert "/us-east-1/bedrock/aws4_request" in auth  # for the function's region
    # the second turn carries the assistant's toolUse and our toolResult, alternating roles
    roles = [m["role"] for m in second.body["messages"]]
    assert roles == ["user", "assistant", "user"]
    use = next(b for b in second.body["messages"][1]["content"] if "toolUse" in b)
    result = second.body["messages"][2]["content"][0]["toolResult"]
    assert result["toolUseId"] == use["toolUse"]["toolUseId"]
    assert result["content"] == [{"text": "BEDROCK"}]
    sent = [r.usage for r in bedrock.replies]
    assert run.usage.prompt_tokens == sum(u.prompt_tokens for u in sent) > 0
    assert run.usage.completion_tokens == sum(u.completion_tokens for u in sent) > 0
    assert run.cost_usd == pytest.approx(
        (run.usage.prompt_tokens * 0.25 + run.usage.completion_tokens * 1.25) / 1e6
    )  # the built-in price of Claude 3 Haiku on Bedrock
    assert [p.model for p in engine.prompts.entries(run.id)] == [MODEL, MODEL]


def test_throttling_is_retried_and_a_permanent_error_fails_the_step(
    tmp_path: Path, bedrock: ConverseServer
) -> None:
    engine = make_engine(tmp_path)
    bedrock.fail_next(429, "ThrottlingException", "Too many requests, please wait.")
    ok = run_to_end(engine, project(tmp_path, flow(MODEL), name="ok"))
    assert ok.status is RunStatus.completed, ok.error
    assert len(bedrock.requests) == 3  # 429, then two turns
    bedrock.fail_next(
        400, "ValidationException", "The provided model identifier is invalid.", times=5
    )
    bad = run_to_end(engine, project(tmp_path, flow("bad-model"), name="bad"))
    assert bad.status is RunStatus.failed and bad.error is not None
    assert "ValidationException" in bad.error.message
    assert "The provided model identifier is invalid." in bad.error.message
    assert len(bedrock.requests) == 4  # permanent: asked once, not retried


def test_the_deployment_decides_which_bedrock_hosts_models_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = ModelSpec(provider="bedrock", model=MODEL, region="eu-west-1")
    ModelPolicy.of([], ["bedrock-runtime.eu-west-1.amazonaws.com"]).check(spec)
    with pytest.raises(ConfigError, match=r"bedrock-runtime\.eu-west-1\.amazonaws\.com"):
        ModelPolicy().check(spec)  # the default allows OpenAI's host only
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ConfigError, match="needs a region"):
        ModelPolicy.of([], ["x"]).check(ModelSpec(provider="bedrock", model=MODEL))
    with pytest.raises(ValueError, match="takes no base_url"):
        ModelSpec(provider="bedrock", model=MODEL, base_url="https://attacker.example")
