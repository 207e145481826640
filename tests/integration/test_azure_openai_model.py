"""The Azure OpenAI adapter against a local server speaking Azure OpenAI's chat completions
REST protocol (deployments, api-version), signed in with an Entra ID token that
azure-identity's managed identity got from a local App Service identity endpoint
(IDENTITY_ENDPOINT / IDENTITY_HEADER, as Azure Functions sets them) — or with a key from the
SecretStore: a two-turn agent with a tool call, usage recorded and priced, throttling retried,
a permanent error surfaced with Azure's message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentfn.adapters.models.factory import clear_model_cache
from agentfn.errors import ConfigError
from agentfn.model_policy import ModelPolicy
from agentfn.model_spec import AZURE_OPENAI_API_VERSION, ModelSpec
from agentfn.runs import RunStatus
from tests.support.engine_harness import make_engine, project, run_to_end
from tests.support.model_servers import AzureChatServer, CredentialServer, scripted

DEPLOYMENT = "chat-prod"  # a deployment's name is the account owner's choice...
MODEL = "gpt-4o-mini-2024-07-18"  # ...its replies name the model it serves
KEY = "0123456789abcdef0123456789abcdef"


def flow(deployment: str, *, extra: str = "") -> str:
    return f"""
models:
  azure: {{provider: azure-openai, model: "{deployment}", base_url: "ENDPOINT"{extra}}}
agents:
  helper: {{instructions: Use the record tool., model: azure, tools: [record]}}
nodes:
  - {{id: ask, type: agent, agent: helper, prompt: "Record label azure."}}
"""


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[CredentialServer]:
    with CredentialServer() as server:
        monkeypatch.setenv("IDENTITY_ENDPOINT", server.identity_endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", server.identity_header)
        for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MSI_ENDPOINT"):
            monkeypatch.delenv(name, raising=False)
        clear_model_cache()
        yield server
        clear_model_cache()


@pytest.fixture
def azure(tmp_path: Path, tokens: CredentialServer) -> Iterator[AzureChatServer]:
    rules = Path(project(tmp_path, "nodes: []", name="rules-only")).with_name("rules.yaml")
    responder = scripted(rules, {"Use the record tool.": "helper"})
    with AzureChatServer(
        responder, tokens=tokens, api_key=KEY, deployments={DEPLOYMENT: MODEL}
    ) as server:
        yield server


def start(tmp_path: Path, server: AzureChatServer, body: str, name: str = "wf") -> Path:
    return project(tmp_path, body.replace("ENDPOINT", server.url), name=name)


def test_a_two_turn_agent_with_a_tool_call_on_the_managed_identity(
    tmp_path: Path, azure: AzureChatServer, tokens: CredentialServer
) -> None:
    engine = make_engine(tmp_path)
    run = run_to_end(engine, start(tmp_path, azure, flow(DEPLOYMENT)))
    assert run.status is RunStatus.completed, run.error
    assert run.output == {"ask": "helper saw AZURE"}  # the record tool shouts
    first, second = azure.requests
    assert first.path == (
        f"/openai/deployments/{DEPLOYMENT}/chat/completions?api-version={AZURE_OPENAI_API_VERSION}"
    )
    # an Entra ID token from the App Service identity endpoint, for Cognitive Services
    assert tokens.asked == ["identity"]  # one token, reused for the second turn
    assert (
        first.headers["authorization"]
        == second.headers["authorization"]
        == "Bearer identity-token-1"
    )
    assert "api-key" not in first.headers
    assert first.body["messages"][0] == {"role": "system", "content": "Use the record tool."}
    assert first.body["tools"][0]["function"]["name"] == "record"
    roles = [m["role"] for m in second.body["messages"]]
    assert roles == ["system", "user", "assistant", "tool"]
    call = second.body["messages"][2]["tool_calls"][0]
    assert second.body["messages"][3]["tool_call_id"] == call["id"]
    sent = [r.usage for r in azure.replies]
    assert run.usage.prompt_tokens == sum(u.prompt_tokens for u in sent) > 0
    assert run.usage.completion_tokens == sum(u.completion_tokens for u in sent) > 0
    # priced as the model the deployment serves (gpt-4o-mini), not by the deployment's name
    assert [p.model for p in engine.prompts.entries(run.id)] == [MODEL, MODEL]
    assert run.cost_usd == pytest.approx(
        (run.usage.prompt_tokens * 0.15 + run.usage.completion_tokens * 0.60) / 1e6
    )


def test_a_key_from_the_secret_store_instead_of_the_identity(
    tmp_path: Path,
    azure: AzureChatServer,
    tokens: CredentialServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_KEY", KEY)  # the harness's SecretStore reads the environment
    body = flow(DEPLOYMENT, extra=', api_key_secret: AZURE_OPENAI_KEY, api_version: "2024-06-01"')
    engine = make_engine(tmp_path)
    run = run_to_end(engine, start(tmp_path, azure, body))
    assert run.status is RunStatus.completed, run.error
    assert all(r.headers["api-key"] == KEY for r in azure.requests)
    assert all("authorization" not in r.headers for r in azure.requests)
    assert azure.requests[0].path.endswith("?api-version=2024-06-01")
    assert tokens.asked == []  # the identity was never asked
    assert KEY not in repr(engine.store.get(run.id))


def test_throttling_is_retried_and_a_permanent_error_fails_the_step(
    tmp_path: Path, azure: AzureChatServer
) -> None:
    engine = make_engine(tmp_path)
    azure.fail_next(
        429,
        "429",
        "Requests to the ChatCompletions_Create Operation have exceeded the token rate limit.",
    )
    ok = run_to_end(engine, start(tmp_path, azure, flow(DEPLOYMENT), "ok"))
    assert ok.status is RunStatus.completed, ok.error
    assert len(azure.requests) == 3  # 429, then two turns
    bad = run_to_end(engine, start(tmp_path, azure, flow("missing"), "bad"))
    azure.fail_next(404, "DeploymentNotFound", "unused")  # what follows must not be asked
    assert bad.status is RunStatus.failed and bad.error is not None
    assert "HTTP 404" in bad.error.message and "Resource not found" not in bad.error.message
    assert "The API deployment for this resource does not exist." in bad.error.message
    assert len(azure.requests) == 4  # permanent: asked once, not retried


def test_a_refused_identity_fails_with_what_the_endpoint_said(
    tmp_path: Path, azure: AzureChatServer, tokens: CredentialServer
) -> None:
    tokens.refuse_identity = True
    engine = make_engine(tmp_path)
    run = run_to_end(engine, start(tmp_path, azure, flow(DEPLOYMENT)))
    assert run.status is RunStatus.failed and run.error is not None
    assert "no Entra ID token for Azure OpenAI" in run.error.message
    assert azure.requests == []  # nothing reached the model without a token


def test_the_deployment_decides_which_azure_openai_endpoints_models_reach() -> None:
    spec = ModelSpec(
        provider="azure-openai", model=DEPLOYMENT, base_url="https://acct.openai.azure.com"
    )
    ModelPolicy.of([], ["acct.openai.azure.com"]).check(spec)  # the identity: no secret to allow
    with pytest.raises(ConfigError, match=r"acct\.openai\.azure\.com"):
        ModelPolicy().check(spec)
    keyed = spec.model_copy(update={"api_key_secret": "AGENTFN_API_KEY"})
    with pytest.raises(ConfigError, match="AGENTFN_API_KEY") as refused:
        ModelPolicy.of(["OPENAI_API_KEY"], ["acct.openai.azure.com"]).check(keyed)
    assert refused.value.field == "api_key_secret"
    with pytest.raises(ValueError, match="api_version"):
        ModelSpec(provider="openai", model="gpt-4o", api_version="2024-10-21")
