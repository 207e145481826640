"""A deployment plugs a search index into agents' memory with AGENTFN_MEMORY_SEARCH: a file of
its project and a factory in it. Recall queries then go to the index (here one that knows
synonyms, so "hue" finds a fact about a colour, which the built-in word match cannot)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agentfn.errors import ConfigError
from agentfn.functions.runtime import Runtime
from agentfn.runs import RunStatus
from agentfn.settings import Settings
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import drain

FACT_INDEX = Path(__file__).parents[1] / "support" / "fact_index.py"
RULES = r"""
rules:
  - match: 'remember (?P<key>[a-z ]+?) is (?P<value>\w+)'
    after_tool: false
    reply:
      tool_calls: [{name: remember, arguments: {key: "{key}", value: "{value}"}}]
  - match: 'what is (?P<key>[a-z ]+?)\?'
    after_tool: false
    reply:
      tool_calls: [{name: recall, arguments: {query: "{key}"}}]
  - after_tool: true
    reply: {content: "memory says {tool_result}"}
"""
FLOW = """
name: keeper
models: {default: {provider: scripted, rules: rules.yaml}}
agents: {keeper: {instructions: Keep facts., tools: [remember, recall]}}
inputs: {say: {type: string}}
nodes: [{id: answer, type: agent, agent: keeper, prompt: "{{ input.say }}"}]
"""


def runtime(tmp_path: Path, search: str) -> Runtime:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    shutil.copy(FACT_INDEX, project / "search.py")
    with (project / "search.py").open("a") as module:
        module.write("\n\ndef not_an_index() -> dict[str, str]:\n    return {}\n")
    (project / "rules.yaml").write_text(RULES)
    (project / "keeper.yaml").write_text(FLOW)
    env = {"AGENTFN_PROJECT": str(project), "AGENTFN_MEMORY_SEARCH": search}
    return Runtime(Settings.from_env(env, home=tmp_path / "home"))


def ask(rt: Runtime, text: str) -> str:
    engine = rt.engine
    loaded = load_blueprint(rt.settings.project / "keeper.yaml")
    run = drain(engine, engine.start(loaded, {"say": text}).id)
    assert run.status is RunStatus.completed, run.error
    return str(run.output["answer"])


def test_recall_queries_go_to_the_plugged_in_index(tmp_path: Path) -> None:
    plugged = runtime(tmp_path, "search.py:build")
    assert plugged.settings.as_env()["AGENTFN_MEMORY_SEARCH"] == "search.py:build"
    ask(plugged, "remember the favourite colour is green")
    assert "green" in ask(plugged, "what is hue?")
    index = plugged.memory_search
    assert index is not None
    assert ("index", "default/memory/keeper/_shared/", "the favourite colour") in index.calls  # type: ignore[attr-defined]
    # the built-in word match finds nothing for "hue" in the same store
    plain = runtime(tmp_path, "")
    assert plain.memory_search is None
    assert ask(plain, "what is hue?") == 'memory says {"facts": []}'


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("search.py", "must look like search.py:factory"),
        ("../outside.py:build", "inside the project folder"),
        ("/etc/passwd:build", "inside the project folder"),
        ("missing.py:build", "does not exist"),
        ("search.py:nothing", "has no function 'nothing'"),
        ("search.py:_words", "search.py:_words() failed: TypeError"),
        ("search.py:not_an_index", "returned dict, which lacks index/remove/search"),
    ],
)
def test_a_bad_setting_names_the_problem(tmp_path: Path, setting: str, problem: str) -> None:
    rt = runtime(tmp_path, setting)
    with pytest.raises(ConfigError) as caught:
        rt.engine  # noqa: B018 - building the engine loads the index
    assert problem in caught.value.message and "AGENTFN_MEMORY_SEARCH" in caught.value.message
