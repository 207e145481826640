"""The queue-trigger glue is written once: every queue entry point settles jobs through it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from agentfn.functions import runtime

ROOT = Path(__file__).resolve().parents[2]
QUEUE_ENTRY_POINTS = (
    "functions/aws/worker.py",
    "functions/gcp/main.py",
    "functions/azure/function_app.py",
)


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        ('{"run": "r", "step": "a"}', {"run": "r", "step": "a"}),
        (b'{"run": "r"}', {"run": "r"}),
        ("not json", {"raw": "not json"}),
        (b"\xff\xfe", {"raw": "\ufffd\ufffd"}),
        ("[1, 2]", {"raw": [1, 2]}),
        ({"run": "r"}, {"run": "r"}),
        (7, {"raw": 7}),
    ],
)
def test_a_delivered_body_is_a_job_or_wrapped_for_the_dead_letter_queue(
    raw: object, body: dict[str, object]
) -> None:
    assert runtime.job_body(raw) == body


def test_no_entry_point_defines_its_own_settling() -> None:
    for rel in QUEUE_ENTRY_POINTS:
        tree = ast.parse((ROOT / rel).read_text())
        classes = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
        attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert not classes, f"{rel} defines {classes}"
        # Settling goes through runtime.handle_triggered, never the engine or an acker directly.
        assert "handle_triggered" in attributes, rel
        assert not attributes & {"engine", "TriggerAcker", "failed"}, rel


def test_one_step_not_settled_for_every_platform() -> None:
    from agentfn.functions.azure import function_app
    from agentfn.functions.gcp import main

    assert main.StepNotSettled is function_app.StepNotSettled is runtime.StepNotSettled
