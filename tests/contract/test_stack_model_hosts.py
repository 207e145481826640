"""Which model hosts each stack lets its functions reach (``AGENTFN_MODEL_HOSTS``).

The code refuses a blueprint whose model host is not in that list (``agentfn.model_policy``),
so a stack that grants one of its cloud's own models must list that model's host too, and a
stack that grants none lists only the code's default (OpenAI's). The environment is the one
the artifacts are booted with (``stack_environment``; Terraform evaluates the expression),
with each model variable left unset and then set.
"""

from __future__ import annotations

import pytest

from agentfn.errors import ConfigError
from agentfn.model_policy import ModelPolicy
from agentfn.model_spec import ModelSpec
from agentfn.settings import DEFAULT_MODEL_HOSTS, Settings
from tests.support.stacks import stack_environment

NAMES = {"name": "stack", "project": "p"}
ACCOUNT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a"
# cloud -> (the variables that grant a model, the host its models are then reached at)
SWITCHED_ON = {
    "aws": (
        {"region": "eu-west-1", "bedrock_models": '["anthropic.claude-3-haiku-20240307-v1:0"]'},
        "bedrock-runtime.eu-west-1.amazonaws.com",
    ),
    "gcp": (
        {"region": "europe-west4", "vertex_ai": "true"},
        "europe-west4-aiplatform.googleapis.com",
    ),
    "azure": (
        {"openai_account": f'{{id = "{ACCOUNT}", endpoint = "https://MyAcct.openai.azure.com/"}}'},
        "myacct.openai.azure.com",
    ),
}
OFF = {"aws": {"region": "eu-west-1"}, "gcp": {"region": "europe-west4"}, "azure": {}}


def policy(env: dict[str, str]) -> ModelPolicy:
    settings = Settings.from_env(env)
    return ModelPolicy.of(settings.model_secrets, settings.model_hosts)


def spec_at(cloud: str, host: str) -> ModelSpec:
    """The cloud's own model, as a blueprint names it, reached at ``host``."""
    if cloud == "aws":
        return ModelSpec(
            provider="bedrock", model="anthropic.claude-3-haiku-20240307-v1:0", region="eu-west-1"
        )
    if cloud == "gcp":
        region = host.removesuffix("aiplatform.googleapis.com").rstrip("-") or "global"
        return ModelSpec(provider="vertex", model="gemini-2.0-flash", region=region)
    return ModelSpec(provider="azure-openai", model="chat", base_url=f"https://{host}")


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_by_default_models_reach_only_the_codes_default_hosts(cloud: str) -> None:
    env = stack_environment(cloud, {**NAMES, **OFF[cloud]})
    assert env["AGENTFN_MODEL_HOSTS"] == ",".join(DEFAULT_MODEL_HOSTS)
    assert Settings.from_env(env).model_hosts == DEFAULT_MODEL_HOSTS
    _, host = SWITCHED_ON[cloud]
    with pytest.raises(ConfigError, match="AGENTFN_MODEL_HOSTS"):
        policy(env).check(spec_at(cloud, host))


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_a_granted_cloud_model_is_reachable(cloud: str) -> None:
    variables, host = SWITCHED_ON[cloud]
    env = stack_environment(cloud, {**NAMES, **variables})
    assert Settings.from_env(env).model_hosts == (*DEFAULT_MODEL_HOSTS, host)
    policy(env).check(spec_at(cloud, host))
    policy(env).check(ModelSpec(provider="openai", model="gpt-4o-mini"))  # OpenAI still is


def test_an_azure_openai_blueprint_may_leave_the_account_to_the_stack() -> None:
    variables, _ = SWITCHED_ON["azure"]
    env = stack_environment("azure", {**NAMES, **variables})
    assert env["AZURE_OPENAI_ENDPOINT"] == "https://MyAcct.openai.azure.com/"
    assert stack_environment("azure", {**NAMES, **OFF["azure"]})["AZURE_OPENAI_ENDPOINT"] == ""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AZURE_OPENAI_ENDPOINT", env["AZURE_OPENAI_ENDPOINT"])
        spec = ModelSpec(provider="azure-openai", model="chat")
        assert spec.url() == "https://MyAcct.openai.azure.com/"
        policy(env).check(spec)
        patch.setenv("AZURE_OPENAI_ENDPOINT", "")  # the stack without an account
        with pytest.raises(ConfigError, match="needs the account's endpoint") as missing:
            policy(env).check(spec)
        assert missing.value.field == "base_url"


@pytest.mark.parametrize(
    ("location", "host"),
    [
        ("us-central1", "us-central1-aiplatform.googleapis.com"),
        ("global", "aiplatform.googleapis.com"),  # the global endpoint has no regional prefix
    ],
)
def test_vertex_location_names_the_host(location: str, host: str) -> None:
    variables = {
        **NAMES,
        "region": "europe-west4",
        "vertex_ai": "true",
        "vertex_location": location,
    }
    env = stack_environment("gcp", variables)
    assert env["AGENTFN_MODEL_HOSTS"] == f"{DEFAULT_MODEL_HOSTS[0]},{host}"
    # a vertex model without `region:` is called where the stack says, and is let through
    assert env["GOOGLE_CLOUD_LOCATION"] == location
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOOGLE_CLOUD_LOCATION", env["GOOGLE_CLOUD_LOCATION"])
        policy(env).check(ModelSpec(provider="vertex", model="gemini-2.0-flash"))
