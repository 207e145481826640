from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from agentfn.adapters.models import ScriptedModel, build_model, clear_model_cache
from agentfn.adapters.models.openai_chat import OpenAIChatModel
from agentfn.errors import ConfigError, NotFound
from agentfn.model_spec import ModelSpec
from agentfn.ports import ChatRequest, Message, Model, SecretStore
from agentfn.resilience import ResilientModel


class DictSecrets:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.asked: list[str] = []

    def get(self, name: str) -> str:
        self.asked.append(name)
        try:
            return self.values[name]
        except KeyError:
            raise NotFound(f"secret {name}") from None


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_model_cache()
    yield
    clear_model_cache()


@pytest.fixture
def blueprint_dir(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "demo.yaml").write_text(
        "model: scripted-demo\ndefault:\n  content: 'hello from {agent}'\n"
    )
    return tmp_path


def test_dict_secrets_is_a_secret_store() -> None:
    assert isinstance(DictSecrets({}), SecretStore)


def test_build_scripted(blueprint_dir: Path) -> None:
    spec = ModelSpec(provider="scripted", rules="models/demo.yaml", max_retries=2)
    model = build_model(spec, secrets=DictSecrets({}), base_dir=blueprint_dir)
    assert isinstance(model, ResilientModel)
    assert isinstance(model, Model)
    assert isinstance(model.inner, ScriptedModel)
    assert model.attempts == 2
    assert model.name == "scripted-demo"
    reply = model.chat(ChatRequest(agent="bob", messages=[Message(role="user", content="hi")]))
    assert reply.content == "hello from bob"


def test_scripted_model_name_can_be_overridden(blueprint_dir: Path) -> None:
    spec = ModelSpec(provider="scripted", rules="models/demo.yaml", model="renamed")
    assert build_model(spec, secrets=DictSecrets({}), base_dir=blueprint_dir).name == "renamed"


def test_build_scripted_missing_file_is_config_error(tmp_path: Path) -> None:
    spec = ModelSpec(provider="scripted", rules="missing.yaml")
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        build_model(spec, secrets=DictSecrets({}), base_dir=tmp_path)


def test_build_openai(tmp_path: Path) -> None:
    secrets = DictSecrets({"MY_KEY": "sk-factory-test"})
    spec = ModelSpec(
        provider="openai",
        model="gpt-test",
        base_url="http://127.0.0.1:9/v1",
        api_key_secret="MY_KEY",
        timeout_s=5,
        max_retries=4,
        breaker_threshold=7,
        breaker_reset_s=12,
        temperature=0.3,
    )
    model = build_model(spec, secrets=secrets, base_dir=tmp_path)
    assert isinstance(model, ResilientModel)
    inner = model.inner
    assert isinstance(inner, OpenAIChatModel)
    assert (inner.name, inner.base_url, inner.timeout_s, inner.temperature) == (
        "gpt-test",
        "http://127.0.0.1:9/v1",
        5,
        0.3,
    )
    assert model.attempts == 4
    assert (model.breaker.failure_threshold, model.breaker.reset_timeout_s) == (7, 12)
    assert secrets.asked == ["MY_KEY"]


def test_missing_secret_is_config_error(tmp_path: Path) -> None:
    spec = ModelSpec(provider="openai", model="gpt-test")
    with pytest.raises(ConfigError, match="model 'openai' needs secret OPENAI_API_KEY"):
        build_model(spec, secrets=DictSecrets({}), base_dir=tmp_path)


def test_cached_instance_is_reused(blueprint_dir: Path) -> None:
    secrets = DictSecrets({"OPENAI_API_KEY": "sk-1"})
    scripted = ModelSpec(provider="scripted", rules="models/demo.yaml")
    a = build_model(scripted, secrets=secrets, base_dir=blueprint_dir)
    assert build_model(scripted.model_copy(), secrets=secrets, base_dir=blueprint_dir) is a

    openai_spec = ModelSpec(provider="openai", model="gpt-test", base_url="http://127.0.0.1:9")
    b = build_model(openai_spec, secrets=secrets, base_dir=blueprint_dir)
    assert build_model(openai_spec, secrets=secrets, base_dir=blueprint_dir) is b
    assert b is not a

    other = ModelSpec(
        provider="openai", model="gpt-test", base_url="http://127.0.0.1:9", timeout_s=1
    )
    assert build_model(other, secrets=secrets, base_dir=blueprint_dir) is not b
    assert build_model(openai_spec, secrets=secrets, base_dir=blueprint_dir / "models") is not b


def test_rotated_secret_builds_a_fresh_client(tmp_path: Path) -> None:
    secrets = DictSecrets({"OPENAI_API_KEY": "sk-old"})
    spec = ModelSpec(provider="openai", model="gpt-test", base_url="http://127.0.0.1:9")
    old = build_model(spec, secrets=secrets, base_dir=tmp_path)
    secrets.values["OPENAI_API_KEY"] = "sk-new"
    assert build_model(spec, secrets=secrets, base_dir=tmp_path) is not old


@pytest.mark.parametrize(
    "kwargs",
    [
        {"provider": "scripted"},
        {"provider": "openai"},
        {"provider": "anthropic", "model": "x"},
        {"provider": "openai", "model": "x", "max_retries": 0},
        {"provider": "openai", "model": "x", "surprise": True},
    ],
)
def test_model_spec_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ModelSpec(**kwargs)
