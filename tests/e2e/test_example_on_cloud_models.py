"""The bundled example workflow, end to end with `agentfn run` (two worker processes), on each
cloud's own model adapter against a local server speaking that provider's REST protocol.

The servers answer as the example's scripted model would (its rule file, each agent known by its
instructions), so the run must reach the demo's answer through the real wire protocol: the
planner's JSON, three researchers calling ``lookup_facts`` and reading its result, the writer.
Credentials come the way each platform gives them: Lambda's environment variables, the metadata
server a Cloud Function's ADC reads (GCE_METADATA_HOST / GCE_METADATA_IP), the App Service
identity endpoint a Function App's managed identity uses (IDENTITY_ENDPOINT / IDENTITY_HEADER).
The CLI runs in a fresh process whose environment holds nothing else of ours.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.model_servers import (
    AzureChatServer,
    ConverseServer,
    CredentialServer,
    GenerateContentServer,
    ModelServer,
    Responder,
    scripted,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "functions" / "local" / "example"
ANSWER = "A full brief, built from the research above."
CALLS = 1 + 3 * 2 + 1  # the planner, three researchers with a tool call each, the writer

Setup = Callable[[Responder, ExitStack, Path], tuple[ModelServer, dict[str, Any], dict[str, str]]]


def bedrock(respond: Responder, stack: ExitStack, tmp: Path) -> Any:
    server = stack.enter_context(ConverseServer(respond))
    model = {"provider": "bedrock", "model": "anthropic.claude-3-haiku-20240307-v1:0"}
    env = {  # what Lambda gives a function: its region and its role's credentials
        "AWS_REGION": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEEXAMPLE01",
        "AWS_SECRET_ACCESS_KEY": "lambda-role-secret",
        "AWS_SESSION_TOKEN": "lambda-role-session",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": server.url,
        "AGENTFN_MODEL_HOSTS": "bedrock-runtime.eu-central-1.amazonaws.com",
    }
    return server, model, env


def vertex(respond: Responder, stack: ExitStack, tmp: Path) -> Any:
    tokens = stack.enter_context(CredentialServer())
    server = stack.enter_context(GenerateContentServer(respond, tokens=tokens))
    model = {"provider": "vertex", "model": "gemini-2.0-flash", "region": "us-central1"}
    env = {  # what a Cloud Function's ADC reads: the metadata server (project and token)
        "GCE_METADATA_HOST": tokens.metadata_host,
        "GCE_METADATA_IP": tokens.metadata_host,
        "CLOUDSDK_CONFIG": str(tmp / "gcloud"),  # no developer's gcloud login
        "GOOGLE_VERTEX_BASE_URL": server.url + "/",
        "AGENTFN_MODEL_HOSTS": "us-central1-aiplatform.googleapis.com",
    }
    return server, model, env


def azure_openai(respond: Responder, stack: ExitStack, tmp: Path) -> Any:
    tokens = stack.enter_context(CredentialServer())
    server = stack.enter_context(
        AzureChatServer(respond, tokens=tokens, deployments={"brief": "gpt-4o-mini-2024-07-18"})
    )
    model = {"provider": "azure-openai", "model": "brief", "base_url": server.url}
    env = {  # what a Function App's managed identity uses
        "IDENTITY_ENDPOINT": tokens.identity_endpoint,
        "IDENTITY_HEADER": tokens.identity_header,
        "AGENTFN_MODEL_HOSTS": server.url.removeprefix("http://"),
    }
    return server, model, env


def example_with(model: dict[str, Any], folder: Path) -> Path:
    shutil.copytree(EXAMPLE, folder)
    path = folder / "workflow.yaml"
    blueprint = yaml.safe_load(path.read_text())
    blueprint["models"] = {"default": model}
    path.write_text(yaml.safe_dump(blueprint, sort_keys=False))
    return path


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.mark.slow
@pytest.mark.parametrize("setup", [bedrock, vertex, azure_openai], ids=lambda s: s.__name__)
def test_the_example_runs_end_to_end_on_the_cloud_model(
    setup: Setup, stack: ExitStack, tmp_path: Path
) -> None:
    blueprint = yaml.safe_load((EXAMPLE / "workflow.yaml").read_text())
    agents = {a["instructions"]: name for name, a in blueprint["agents"].items()}
    server, model, model_env = setup(
        scripted(EXAMPLE / "model_rules.yaml", agents), stack, tmp_path
    )
    workflow = example_with(model, tmp_path / "project")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "COLUMNS": "200", **model_env}
    done = subprocess.run(
        [sys.executable, "-m", "agentfn.functions.local.cli", "--home", str(tmp_path / "home"),
         "run", str(workflow), "-i", "subject=edge AI", "--workers", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert re.search(r"status\s+completed", done.stdout), done.stdout
    assert re.search(rf"output\s+{re.escape(ANSWER)}", done.stdout), done.stdout
    assert len(server.requests) == CALLS, [r.path for r in server.requests]
    assert all(not server.authorize(r.headers) for r in server.requests)  # all signed in
    if server.tokens is not None:  # by the platform's token endpoint, once per worker at most
        assert 1 <= len(server.tokens.asked) <= 2, server.tokens.asked
    # tokens and a price from the built-in table: the provider's usage reached the ledger
    tokens = re.search(r"tokens\s+(\d+) \((\d+) in, (\d+) out\)", done.stdout)
    assert tokens is not None, done.stdout
    sent = [r.usage for r in server.replies]
    assert int(tokens.group(2)) == sum(u.prompt_tokens for u in sent)
    assert int(tokens.group(3)) == sum(u.completion_tokens for u in sent)
    cost = re.search(r"cost\s+\$(\d+\.\d+)", done.stdout)
    assert cost is not None and float(cost.group(1)) > 0, done.stdout
