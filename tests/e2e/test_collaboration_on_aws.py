"""The same collaboration on the AWS adapters (S3 + SQS on moto's server) gives the local
result: the same agents, results and usage per subtask, and the same failure kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from agentfn.collaboration import Plan, collaboration_blueprint, collaboration_view
from agentfn.engine import Engine
from agentfn.events.cloudevents import job_of
from tests.support.aws_engine import moto_engine
from tests.support.collaboration_team import load_team
from tests.support.engine_harness import drain, make_engine

# The translator's model is down: its every call fails, as a throttled provider's would.
RULES = """\
rules:
  - {agent: translator, reply: {error: "overloaded, try again later", transient: true}}
  - {agent: critic, reply: {content: "reviewed: {last_user}"}}
  - {agent: writer-a, reply: {content: "a wrote: {last_user}"}}
  - {agent: writer-b, reply: {content: "b wrote: {last_user}"}}
"""
RETRY = {"max_attempts": 2, "backoff": {"base_s": 0, "max_s": 0}}
SUBTASKS: list[tuple[str, str, list[str]]] = [
    ("intro", "write", []),
    ("body", "write", []),
    ("facts", "write", []),
    ("german", "translate", ["intro"]),
    ("edit", "review", ["intro", "body", "facts"]),
    ("localised", "review", ["german", "edit"]),  # behind the failure: skipped
    ("final", "write", ["edit"]),
]


def _plan() -> Plan:
    return Plan.model_validate(
        {
            "subtasks": [
                {"id": i, "task": f"Do {i}.", "capability": c, "depends_on": d, "retry": RETRY}
                for i, c, d in SUBTASKS
            ]
        }
    )


def _collaborate(engine: Engine, folder: Path) -> tuple[Any, dict[str, Any]]:
    loaded, given = collaboration_blueprint(_plan(), load_team(folder, RULES))
    run = engine.start(loaded, given)
    drain(engine, run.id, timeout_s=120)
    view = collaboration_view(engine.store, run.id)
    results = {
        s.id: (s.agent, s.status, s.attempts, s.tokens)
        + ((engine.store.node_output(run.id, s.id),) if s.status == "completed" else ())
        for s in view.subtasks
    }
    return view, results


def test_a_collaboration_on_s3_and_sqs_matches_the_local_one(tmp_path: Path) -> None:
    local_view, local = _collaborate(make_engine(tmp_path / "local", lease_s=10.0), tmp_path / "a")
    assert local_view.status == "partially_failed"
    assert local["german"][1:3] == ("failed", 2) and local["localised"][1] == "skipped"

    engine, queue, bucket = moto_engine()
    cloud_view, cloud = _collaborate(engine, tmp_path / "b")
    assert cloud == local
    assert cloud_view.status == "partially_failed"
    assert cloud_view.output == local_view.output and set(cloud_view.output) == {"final"}
    assert cloud_view.progress == local_view.progress
    assert {k: (f.type, f.attempts) for k, f in cloud_view.failures.items()} == {
        "german": ("TransientModelError", 2)
    }
    assert [job_of(d.body)["step"] for d in queue.dead_letters()] == ["german@0"]
    assert queue.receive(10, visibility_timeout=30) == []  # every other job acked
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(f"runs/{cloud_view.id}/run.json" in k for k in keys)
