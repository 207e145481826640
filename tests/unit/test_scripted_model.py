from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from agentfn.adapters.models.scripted import Script, ScriptedModel
from agentfn.errors import ConfigError, ModelError
from agentfn.ports import ChatRequest, Message, Model, ToolCall

RULES = """
model: scripted-demo
rules:
  - agent: planner
    match: "plan (?P<topic>\\\\w+)"
    reply:
      content: "Plan for {topic} by {agent}"
  - agent: writer
    after_tool: true
    reply:
      content: "Counted: {tool_result}"
  - agent: writer
    after_tool: false
    reply:
      content: "{unknown} stays, {last_user}!"
      tool_calls:
        - name: word_count
          arguments:
            text: "{last_user}"
            nested: {items: ["{agent}", 3, "{{literal}}"], flag: true}
        - name: echo
  - match: "^exact$"
    reply:
      content: "exact hit"
default:
  content: "I have nothing to add."
"""


@pytest.fixture
def model(tmp_path: Path) -> ScriptedModel:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return ScriptedModel.from_file(path)


def user(text: str) -> Message:
    return Message(role="user", content=text)


def test_is_a_model_named_by_the_script(model: ScriptedModel) -> None:
    assert isinstance(model, Model)
    assert model.name == "scripted-demo"
    assert ScriptedModel(model.script, name="other").name == "other"


def test_agent_and_regex_groups(model: ScriptedModel) -> None:
    reply = model.chat(ChatRequest(agent="planner", messages=[user("please plan dinner")]))
    assert reply.content == "Plan for dinner by planner"
    assert reply.tool_calls == []
    assert reply.finish_reason == "stop"
    assert reply.model == "scripted-demo"


def test_regex_miss_falls_through_to_default(model: ScriptedModel) -> None:
    reply = model.chat(ChatRequest(agent="planner", messages=[user("nothing here")]))
    assert reply.content == "I have nothing to add."


def test_rule_without_agent_matches_any_agent_and_uses_last_user(model: ScriptedModel) -> None:
    messages = [user("exact"), Message(role="assistant", content="?"), user("exact")]
    assert model.chat(ChatRequest(agent="x", messages=messages)).content == "exact hit"
    messages[-1] = user("not exact")
    assert model.chat(ChatRequest(messages=messages)).content == "I have nothing to add."


def test_tool_calls_ids_and_placeholders(model: ScriptedModel) -> None:
    messages = [
        Message(role="system", content="sys"),
        user("first"),
        Message(role="assistant", content="a"),
        Message(role="assistant", content="b"),
        user("count these words"),
    ]
    reply = model.chat(ChatRequest(agent="writer", messages=messages))
    assert reply.finish_reason == "tool_calls"
    assert reply.content == "{unknown} stays, count these words!"
    assert [c.id for c in reply.tool_calls] == ["call_2_0", "call_2_1"]
    assert reply.tool_calls[0].name == "word_count"
    assert reply.tool_calls[0].arguments == {
        "text": "count these words",
        "nested": {"items": ["writer", 3, "{{literal}}"], "flag": True},
    }
    assert reply.tool_calls[1].arguments == {}


def test_after_tool_joins_trailing_tool_results(model: ScriptedModel) -> None:
    messages = [
        user("count"),
        Message(
            role="assistant",
            tool_calls=[ToolCall(id="c1", name="word_count"), ToolCall(id="c2", name="echo")],
        ),
        Message(role="tool", tool_call_id="c1", content="3"),
        Message(role="tool", tool_call_id="c2", content="echoed"),
    ]
    reply = model.chat(ChatRequest(agent="writer", messages=messages))
    assert reply.content == "Counted: 3\nechoed"
    assert reply.finish_reason == "stop"


def test_no_placeholder_attribute_access(tmp_path: Path) -> None:
    script = Script.model_validate(
        {"rules": [{"reply": {"content": "{agent.__class__} {last_user[0]} {agent}"}}]}
    )
    reply = ScriptedModel(script).chat(ChatRequest(agent="a", messages=[user("xyz")]))
    assert reply.content == "{agent.__class__} {last_user[0]} a"


def test_no_match_without_default_names_the_agent() -> None:
    script = Script.model_validate({"model": "m", "rules": [{"agent": "a", "reply": {}}]})
    with pytest.raises(ModelError, match="'lonely'"):
        ScriptedModel(script).chat(ChatRequest(agent="lonely", messages=[user("hi")]))


def test_usage_is_deterministic(model: ScriptedModel) -> None:
    messages = [
        Message(role="system", content="s" * 9),  # 3 tokens
        user("count these words"),  # 17 chars -> 5
        Message(
            role="assistant",
            content=None,
            tool_calls=[ToolCall(id="c", name="t", arguments={"a": 1})],  # {"a": 1} -> 2
        ),
        user("count these words"),  # 5
    ]
    request = ChatRequest(agent="writer", messages=messages)
    reply = model.chat(request)
    assert reply.usage.prompt_tokens == 3 + 5 + 2 + 5
    expected_completion = math.ceil(len(reply.content or "") / 4) + sum(
        math.ceil(len(json.dumps(c.arguments, sort_keys=True)) / 4) for c in reply.tool_calls
    )
    assert reply.usage.completion_tokens == expected_completion
    assert model.chat(request) == reply


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("rules: [", "invalid YAML"),
        ("- just a list", "must be a mapping"),
        ("rules:\n  - reply: {content: x}\n    bogus: 1\n", "rules.0.bogus"),
        ("rules:\n  - match: '(unclosed'\n    reply: {content: x}\n", "invalid regex"),
        ("rules:\n  - agent: a\n", "rules.0.reply"),
        ("model: m\nextra_top: 1\n", "extra_top"),
    ],
)
def test_bad_rule_file_is_config_error_naming_the_file(
    tmp_path: Path, text: str, needle: str
) -> None:
    path = tmp_path / "broken-rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        ScriptedModel.from_file(path)
    assert "broken-rules.yaml" in str(info.value)
    assert needle in str(info.value)


def test_missing_rule_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        ScriptedModel.from_file(tmp_path / "nope.yaml")


def test_a_rule_may_fail_the_call_transiently_or_for_good() -> None:
    from agentfn.errors import TransientModelError

    script = Script.model_validate(
        {
            "rules": [
                {"match": "busy", "reply": {"error": "overloaded: {last_user}", "transient": True}},
                {"match": "gone", "reply": {"error": "no such model"}},
            ]
        }
    )
    model = ScriptedModel(script)
    with pytest.raises(TransientModelError, match="overloaded: busy now"):
        model.chat(ChatRequest(messages=[user("busy now")]))
    with pytest.raises(ModelError, match="no such model") as gone:
        model.chat(ChatRequest(messages=[user("gone")]))
    assert not isinstance(gone.value, TransientModelError)
    with pytest.raises(ValueError, match="no content or tool_calls"):
        Script.model_validate({"default": {"error": "x", "content": "y"}})
    with pytest.raises(ValueError, match="'transient' describes an 'error'"):
        Script.model_validate({"default": {"content": "y", "transient": True}})
