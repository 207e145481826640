"""The bundled pattern blueprints (functions/local/example/patterns) run as their docs
pages say, on the local adapters with the scripted model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from agentfn.functions.local.cli import EXAMPLE
from agentfn.runs import Run, RunStatus
from agentfn.steps import StepKey
from agentfn.workflows import load_blueprint
from tests.support.engine_harness import drain, make_engine, recorded

PATTERNS = EXAMPLE / "patterns"


def run_pattern(tmp_path: Path, name: str, given: dict[str, Any], folder: Path = PATTERNS) -> Any:
    engine = make_engine(tmp_path)
    started = engine.start(load_blueprint(folder / f"{name}.yaml"), given)
    done: Run = drain(engine, started.id)
    assert done.status is RunStatus.completed, done.error
    return engine, done


def test_every_pattern_has_a_docs_page_and_a_rule_file() -> None:
    names = sorted(p.stem for p in PATTERNS.glob("*.yaml") if not p.stem.endswith(".rules"))
    assert names == ["debate", "hierarchical", "master-worker", "peer-review"]
    docs = Path(__file__).parents[2] / "docs" / "patterns"
    for name in names:
        assert (PATTERNS / f"{name}.rules.yaml").is_file()
        page = (docs / f"{name}.md").read_text()
        assert f"patterns/{name}.yaml" in page and "tests/unit/test_patterns.py" in page


def test_master_worker_splits_fans_out_and_joins(tmp_path: Path) -> None:
    engine, done = run_pattern(tmp_path, "master-worker", {"task": "a guide"})
    assert done.output == ("1. cold starts: covered.\n\n2. retries: covered.\n\n3. costs: covered.")
    # One job per part: the workers' steps are fan-out items of their own.
    items = {k for k in recorded(engine, done.id) if StepKey.parse(k).item is not None}
    assert items == {"work[0]@0", "work[1]@0", "work[2]@0"}


def test_peer_review_stops_at_approval(tmp_path: Path) -> None:
    engine, done = run_pattern(tmp_path, "peer-review", {"topic": "durable agents"})
    assert done.output == {
        "text": "Draft 3: durable agents keep their work.",
        "approved": True,
        "rounds": 3,
    }
    calls = {c.step: c.request.messages[-1].content for c in engine.prompts.entries(done.id)}
    assert "First draft." in calls["review#1.draft@0"]
    assert "Critique: REVISE: give an example." in calls["review#2.draft@0"]


def test_peer_review_stops_at_the_round_limit(tmp_path: Path) -> None:
    folder = tmp_path / "patterns"
    shutil.copytree(PATTERNS, folder)
    rules = folder / "peer-review.rules.yaml"
    rules.write_text(rules.read_text().replace('match: "Draft 3:"', 'match: "never"'))
    _, done = run_pattern(tmp_path, "peer-review", {"topic": "x"}, folder)
    assert done.output == {
        "text": "Draft 4: durable agents keep their work.",
        "approved": False,
        "rounds": 4,
    }


def test_hierarchical_delegates_two_levels_and_compiles(tmp_path: Path) -> None:
    engine, done = run_pattern(tmp_path, "hierarchical", {"project": "a status page"})
    reports = [
        "Done: build the backend.",
        "Done: test the backend.",
        "Done: build the frontend.",
        "Done: test the frontend.",
    ]
    assert done.output["reports"] == reports
    assert done.output["summary"].startswith("Summary of [") and all(
        r in done.output["summary"] for r in reports
    )
    agents = {c.step: c.agent for c in engine.prompts.entries(done.id)}
    assert agents["teams[1]@0"] == "team_lead" and agents["specialists[3]@0"] == "specialist"
    assert agents["summary@0"] == "editor"


def test_debate_votes_and_judges(tmp_path: Path) -> None:
    _, done = run_pattern(tmp_path, "debate", {"question": "Should we cache model replies?"})
    assert done.output["majority"] == "Yes"
    assert done.output["votes"] == [{"value": "Yes", "count": 2}, {"value": "No", "count": 1}]
    assert done.output["verdict"].startswith("Yes: two of three agree")
