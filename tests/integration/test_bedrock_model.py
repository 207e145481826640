"""The Bedrock adapter against a local server speaking the Bedrock Runtime Converse REST
protocol (boto3 pointed at it with AWS_ENDPOINT_URL_BEDROCK_RUNTIME, credentials from the
environment — the SDK's own mechanisms): a two-turn agent with a tool call, usage recorded and
priced, throttling retried, a permanent error surfaced with Bedrock's message."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pytest

from agentfn.adapters.models.factory import clear_model_cache
from agentfn.errors import ConfigError
from agentfn.model_policy import ModelPolicy
from agentfn.model_spec import ModelSpec
from agentfn.runs import RunStatus
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import drain, make_engine, project

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


class Converse(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []
    throttle_next: ClassVar[int] = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        Converse.seen.append(
            {"path": self.path, "body": body, "auth": self.headers.get("authorization", "")}
        )
        if Converse.throttle_next:
            Converse.throttle_next -= 1
            return self._send(
                429, {"message": "Too many requests, please wait."}, "ThrottlingException"
            )
        if "/model/bad-model/" in self.path:
            return self._send(
                400, {"message": "The provided model identifier is invalid."}, "ValidationException"
            )
        last = body["messages"][-1]["content"]
        if any("toolResult" in block for block in last):
            result = next(b["toolResult"] for b in last if "toolResult" in b)
            reply = {
                "role": "assistant",
                "content": [{"text": f"done: {result['content'][0]['text']}"}],
            }
            stop = "end_turn"
        else:
            use = {"toolUseId": "tooluse_1", "name": "record", "input": {"label": "bedrock"}}
            reply = {"role": "assistant", "content": [{"text": "Let me record."}, {"toolUse": use}]}
            stop = "tool_use"
        self._send(
            200,
            {
                "output": {"message": reply},
                "stopReason": stop,
                "usage": {"inputTokens": 100, "outputTokens": 20, "totalTokens": 120},
                "metrics": {"latencyMs": 5},
            },
        )

    def _send(self, status: int, body: dict[str, Any], error: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        if error:
            self.send_header("x-amzn-errortype", error)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Converse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Converse.seen, Converse.throttle_next = [], 0
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    clear_model_cache()
    yield endpoint
    server.shutdown()
    clear_model_cache()


def flow(model: str) -> str:
    return f"""
models:
  bedrock: {{provider: bedrock, model: "{model}", max_retries: 3}}
prices:
  "{MODEL}": {{input_per_mtok: 0.25, output_per_mtok: 1.25}}
agents:
  recorder: {{instructions: Record what you are told., model: bedrock, tools: [record]}}
nodes:
  - {{id: ask, type: agent, agent: recorder, prompt: "Record bedrock."}}
"""


def test_a_two_turn_agent_with_a_tool_call_on_bedrock(tmp_path: Path, bedrock: str) -> None:
    engine = make_engine(tmp_path)
    run = drain(engine, engine.start(load_blueprint(project(tmp_path, flow(MODEL))), {}).id)
    assert run.status is RunStatus.completed, run.error
    assert run.output == {"ask": "done: BEDROCK"}  # the record tool shouts
    first, second = Converse.seen
    assert first["path"] == f"/model/{quote(MODEL, safe='')}/converse"  # the id, URL-encoded
    assert first["body"]["system"] == [{"text": "Record what you are told."}]
    assert first["body"]["toolConfig"]["tools"][0]["toolSpec"]["name"] == "record"
    assert first["auth"].startswith("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/")  # signed
    # the second turn carries the assistant's toolUse and our toolResult, alternating roles
    roles = [m["role"] for m in second["body"]["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert second["body"]["messages"][2]["content"][0]["toolResult"]["toolUseId"] == "tooluse_1"
    assert (run.usage.prompt_tokens, run.usage.completion_tokens) == (200, 40)
    assert run.cost_usd == pytest.approx((200 * 0.25 + 40 * 1.25) / 1e6)
    prompts = list(engine.prompts.entries(run.id))
    assert [p.model for p in prompts] == [MODEL, MODEL]


def test_throttling_is_retried_and_a_permanent_error_fails_the_step(
    tmp_path: Path, bedrock: str
) -> None:
    engine = make_engine(tmp_path)
    Converse.throttle_next = 1
    ok = drain(
        engine, engine.start(load_blueprint(project(tmp_path, flow(MODEL), name="ok")), {}).id
    )
    assert ok.status is RunStatus.completed and len(Converse.seen) == 3  # 429, then two turns
    bad = drain(
        engine,
        engine.start(load_blueprint(project(tmp_path, flow("bad-model"), name="bad")), {}).id,
    )
    assert bad.status is RunStatus.failed and bad.error is not None
    assert "ValidationException" in bad.error.message
    assert "The provided model identifier is invalid." in bad.error.message


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
