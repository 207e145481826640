"""Each cloud's artifact calls its cloud's own model the way the platform runs it: a clean
interpreter with only the artifact (plus what the platform's build installs), the environment
the Terraform stack sets with its model switch on, and the platform's credential mechanism —
Lambda's role credentials in the environment, the metadata server a Cloud Function's ADC reads,
the managed-identity endpoint of a Function App. The SDK each adapter needs must be in the
artifact, and the stack's AGENTFN_MODEL_HOSTS must let the blueprint's model through.

A local server speaking the provider's REST protocol stands in for the model's host (the SDK's
own endpoint override, or for Azure the account endpoint the model is given, the stack allowing
the real account's host); a two-turn exchange with a tool call crosses it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from agentfn.functions.local.packaging import Artifact
from tests.support.deployed import PLATFORM_ENV, build_artifact, platform_path, run_clean
from tests.support.engine_harness import RULES
from tests.support.model_servers import (
    AzureChatServer,
    ConverseServer,
    CredentialServer,
    GenerateContentServer,
    ModelServer,
    scripted,
)
from tests.support.stacks import stack_environment

ACCOUNT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/brief"
ENDPOINT = "https://brief.openai.azure.com/"
INSTRUCTIONS = "Use the record tool."

# The exchange the function makes: the model asks for the tool, reads its result, answers.
EXCHANGE = """
import json
from pathlib import Path
from agentfn.adapters.local.env_secrets import EnvSecretStore
from agentfn.adapters.models.factory import build_model
from agentfn.model_spec import ModelSpec
from agentfn.ports import ChatRequest, Message, ToolSpec
from agentfn.settings import Settings

policy = Settings.from_env().model_policy
policy.check(ModelSpec.model_validate({checked!r}))  # the stack lets this model through
model = build_model(ModelSpec.model_validate({spec!r}), secrets=EnvSecretStore(None), base_dir=Path("."))
tool = ToolSpec(name="record", description="Record a label.",
                parameters={{"type": "object", "properties": {{"label": {{"type": "string"}}}}}})
history = [Message(role="system", content={instructions!r}),
           Message(role="user", content="Record label deployed.")]
first = model.chat(ChatRequest(messages=history, tools=[tool]))
[call] = first.tool_calls
history += [Message(role="assistant", tool_calls=first.tool_calls),
            Message(role="tool", content="DEPLOYED", tool_call_id=call.id, name=call.name)]
second = model.chat(ChatRequest(messages=history, tools=[tool]))
print(json.dumps({{"call": call.arguments, "answer": second.content, "model": second.model,
                  "tokens": first.usage.prompt_tokens + second.usage.prompt_tokens}}))
"""

Case = Callable[
    [ExitStack, Path],
    tuple[ModelServer, dict[str, str], dict[str, Any], dict[str, Any], dict[str, str]],
]


def aws(stack: ExitStack, rules: Path) -> Any:
    server = stack.enter_context(ConverseServer(scripted(rules, {INSTRUCTIONS: "helper"})))
    model_id = "anthropic.claude-3-haiku-20240307-v1:0"
    variables = {"name": "agentfn", "region": PLATFORM_ENV["aws"]["AWS_REGION"],
                 "bedrock_models": f'["{model_id}"]'}  # fmt: skip
    spec = {"provider": "bedrock", "model": model_id}
    return server, variables, spec, spec, {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": server.url}


def gcp(stack: ExitStack, rules: Path) -> Any:
    tokens = stack.enter_context(CredentialServer())
    server = stack.enter_context(
        GenerateContentServer(scripted(rules, {INSTRUCTIONS: "helper"}), tokens=tokens)
    )
    variables = {"name": "agentfn", "project": tokens.project, "region": "europe-west4",
                 "vertex_ai": "true"}  # fmt: skip
    spec = {"provider": "vertex", "model": "gemini-2.0-flash"}  # the stack names the location
    network = {
        "GCE_METADATA_HOST": tokens.metadata_host,  # the metadata server's address
        "GCE_METADATA_IP": tokens.metadata_host,
        "GOOGLE_VERTEX_BASE_URL": server.url + "/",
    }
    return server, variables, spec, spec, network


def azure(stack: ExitStack, rules: Path) -> Any:
    platform = PLATFORM_ENV["azure"]
    tokens = stack.enter_context(CredentialServer(identity_header=platform["IDENTITY_HEADER"]))
    server = stack.enter_context(
        AzureChatServer(scripted(rules, {INSTRUCTIONS: "helper"}), tokens=tokens,
                        deployments={"brief": "gpt-4o-mini-2024-07-18"})
    )  # fmt: skip
    variables = {
        "name": "agentfn",
        "openai_account": f'{{id = "{ACCOUNT}", endpoint = "{ENDPOINT}"}}',
    }
    checked = {"provider": "azure-openai", "model": "brief"}  # the stack names the account
    spec = {**checked, "base_url": server.url}  # the local server stands in for the account
    return server, variables, checked, spec, {"IDENTITY_ENDPOINT": tokens.identity_endpoint}


@pytest.mark.slow
@pytest.mark.parametrize("case", [aws, gcp, azure], ids=lambda c: c.__name__)
def test_the_artifact_calls_its_clouds_model_with_the_platforms_identity(
    case: Case, tmp_path: Path
) -> None:
    cloud = case.__name__
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    artifact: Artifact = build_artifact(cloud, tmp_path / "dist")
    path = platform_path(cloud, artifact, tmp_path / "platform")
    with ExitStack() as stack:
        server, variables, checked, spec, network = case(stack, rules)
        stack_env = {k: v for k, v in stack_environment(cloud, variables).items() if "<" not in v}
        env = {**PLATFORM_ENV[cloud], **stack_env, **network}
        code = EXCHANGE.format(checked=checked, spec=spec, instructions=INSTRUCTIONS)
        out = run_clean(cloud, code, path=path, env=env, stack_env=stack_env, cwd=tmp_path)
        result = json.loads(out.strip().splitlines()[-1])
        assert result["call"] == {"label": "deployed"}
        assert result["answer"] == "helper saw DEPLOYED"
        assert result["tokens"] == sum(r.usage.prompt_tokens for r in server.replies) > 0
        assert len(server.requests) == 2
        assert all(not server.authorize(r.headers) for r in server.requests)
        if server.tokens is not None:
            assert server.tokens.asked, "the platform's token endpoint was never asked"
