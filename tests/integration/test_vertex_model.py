"""The Vertex AI adapter against a local server speaking Vertex AI's generateContent REST
protocol (google-genai pointed at it with GOOGLE_VERTEX_BASE_URL), signed in by Application
Default Credentials from an ADC file whose token endpoint is local too — the SDKs' own
mechanisms: a two-turn agent with a function call, usage recorded and priced, throttling
retried, a permanent error surfaced with Vertex AI's message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentfn.adapters.models.factory import clear_model_cache
from agentfn.errors import ConfigError
from agentfn.model_policy import ModelPolicy
from agentfn.model_spec import ModelSpec
from agentfn.runs import RunStatus
from tests.support.engine_harness import make_engine, project, run_to_end
from tests.support.model_servers import (
    CredentialServer,
    GenerateContentServer,
    proto_field,
    scripted,
)

MODEL = "gemini-2.0-flash"
PROJECT = CredentialServer.project  # the service account key names it


def flow(model: str) -> str:
    return f"""
models:
  gemini: {{provider: vertex, model: "{model}", region: europe-west4}}
agents:
  helper: {{instructions: Use the record tool., model: gemini, tools: [record]}}
nodes:
  - {{id: ask, type: agent, agent: helper, prompt: "Record label vertex."}}
"""


@pytest.fixture
def vertex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GenerateContentServer]:
    rules = Path(project(tmp_path, "nodes: []", name="rules-only")).with_name("rules.yaml")
    with (
        CredentialServer() as tokens,
        GenerateContentServer(
            scripted(rules, {"Use the record tool.": "helper"}), tokens=tokens
        ) as server,
    ):
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", server.url + "/")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tokens.adc_file(tmp_path)))
        for name in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_API_KEY"):
            monkeypatch.delenv(name, raising=False)
        clear_model_cache()
        yield server
        clear_model_cache()


def test_a_two_turn_agent_with_a_function_call_on_vertex(
    tmp_path: Path, vertex: GenerateContentServer
) -> None:
    engine = make_engine(tmp_path)
    run = run_to_end(engine, project(tmp_path, flow(MODEL)))
    assert run.status is RunStatus.completed, run.error
    assert run.output == {"ask": "helper saw VERTEX"}  # the record tool shouts
    first, second = vertex.requests
    assert first.path == (
        f"/v1/projects/{PROJECT}/locations/europe-west4/publishers/google/models/{MODEL}"
        ":generateContent"
    )
    assert first.body["systemInstruction"]["parts"] == [{"text": "Use the record tool."}]
    [declaration] = first.body["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "record"
    schema = proto_field(declaration, "parametersJsonSchema")  # the tool's whole JSON schema
    assert schema["properties"]["label"]["type"] == "string" and schema["required"] == ["label"]
    # signed in by ADC: the bearer is a token the ADC file's token endpoint issued
    assert first.headers["authorization"] == "Bearer oauth-token-1"
    # the second turn: the model's functionCall, then our functionResponse in a user turn
    roles = [c["role"] for c in second.body["contents"]]
    assert roles == ["user", "model", "user"]
    [call] = second.body["contents"][1]["parts"]
    [answer] = second.body["contents"][2]["parts"]
    assert answer["functionResponse"]["name"] == call["functionCall"]["name"] == "record"
    assert answer["functionResponse"]["id"] == call["functionCall"]["id"]
    assert answer["functionResponse"]["response"] == {"output": "VERTEX"}
    sent = [r.usage for r in vertex.replies]
    assert run.usage.prompt_tokens == sum(u.prompt_tokens for u in sent) > 0
    assert run.usage.completion_tokens == sum(u.completion_tokens for u in sent) > 0
    # replies name a version ("gemini-2.0-flash-001"), priced by the built-in table
    assert run.cost_usd == pytest.approx(
        (run.usage.prompt_tokens * 0.15 + run.usage.completion_tokens * 0.60) / 1e6
    )
    assert [p.model for p in engine.prompts.entries(run.id)] == [f"{MODEL}-001"] * 2


def test_throttling_is_retried_and_a_permanent_error_fails_the_step(
    tmp_path: Path, vertex: GenerateContentServer
) -> None:
    engine = make_engine(tmp_path)
    vertex.fail_next(429, "RESOURCE_EXHAUSTED", "Resource exhausted. Please try again later.")
    ok = run_to_end(engine, project(tmp_path, flow(MODEL), name="ok"))
    assert ok.status is RunStatus.completed, ok.error
    assert len(vertex.requests) == 3  # 429, then two turns
    vertex.fail_next(
        404, "NOT_FOUND", "Publisher Model `gemini-0` was not found or your project does not "
        "have access to it.", times=5
    )  # fmt: skip
    bad = run_to_end(engine, project(tmp_path, flow("gemini-0"), name="bad"))
    assert bad.status is RunStatus.failed and bad.error is not None
    assert "Vertex AI 404 NOT_FOUND" in bad.error.message
    assert "Publisher Model `gemini-0` was not found" in bad.error.message
    assert len(vertex.requests) == 4  # permanent: asked once, not retried


def test_the_deployment_decides_which_vertex_hosts_models_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = ModelSpec(provider="vertex", model=MODEL, region="us-central1")
    ModelPolicy.of([], ["us-central1-aiplatform.googleapis.com"]).check(spec)
    with pytest.raises(ConfigError, match=r"us-central1-aiplatform\.googleapis\.com"):
        ModelPolicy().check(spec)  # the default allows OpenAI's host only
    ModelPolicy.of([], ["aiplatform.googleapis.com"]).check(
        ModelSpec(provider="vertex", model=MODEL, region="global")
    )
    monkeypatch.delenv("GOOGLE_CLOUD_LOCATION", raising=False)
    with pytest.raises(ConfigError, match="needs a region"):
        ModelPolicy.of([], ["x"]).check(ModelSpec(provider="vertex", model=MODEL))
    for field in ("base_url", "api_key_secret"):
        with pytest.raises(ValueError, match=f"takes no {field}"):
            ModelSpec.model_validate({"provider": "vertex", "model": MODEL, field: "x"})
