"""Evaluation suites: a workflow, cases (inputs) and checks on what each run produced.

A suite is YAML::

    name: brief-quality
    workflow: workflow.yaml          # relative to the suite file
    judge: {agent: critic}           # optional: the agent (of the workflow) that judges
    cases:
      - name: edge-ai
        input: {subject: edge AI}
        checks:
          - {type: contains, value: brief}
          - {type: regex, pattern: "^A "}
          - {type: exact, value: "A full brief."}
          - {type: json_schema, schema: {type: object, required: [title]}}
          - {type: judge, criteria: "Is it concise?"}
          - {type: contains, value: risk, target: steps.risk}   # a node's output

A case's score is the share of its checks that passed (a run that did not complete passes
none); the suite's score is the mean over cases. ``agentfn eval`` runs a suite; ``agentfn
tune`` runs it once per configuration of a grid and ranks them.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentfn.errors import BlueprintError, ConfigError, UserError
from agentfn.replay import ReplayChanges
from agentfn.runs import Run, RunStore
from agentfn.yaml_source import parse_yaml


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str = Field(
        default="output",
        pattern=r"^(output|steps\.[A-Za-z0-9_-]{1,64})$",
        description="the run's output, or steps.<node> for a node's output",
    )


class Exact(_Check):
    type: Literal["exact"]
    value: Any


class Contains(_Check):
    type: Literal["contains"]
    value: str
    case_sensitive: bool = False


class Regex(_Check):
    type: Literal["regex"]
    pattern: str = Field(max_length=1000)


class JsonSchema(_Check):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class Judge(_Check):
    type: Literal["judge"]
    criteria: str = Field(min_length=1, max_length=4000)


Check = Annotated[Exact | Contains | Regex | JsonSchema | Judge, Field(discriminator="type")]


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_. -]{1,64}$")
    input: dict[str, Any] = Field(default_factory=dict)
    checks: list[Check] = Field(min_length=1, max_length=50)


class JudgeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str = Field(description="an agent of the workflow: it answers PASS or FAIL")


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    workflow: str
    judge: JudgeSpec | None = None
    cases: list[Case] = Field(min_length=1, max_length=500)


def load_suite(path: Path) -> tuple[Suite, Path]:
    """The suite and its workflow's path; errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"suite file not found: {path}", field="suite") from None
    source = parse_yaml(text, str(path))
    try:
        suite = Suite.model_validate(source.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BlueprintError(f"{path}: {where}: {first['msg']}") from None
    workflow = (path.parent / suite.workflow).resolve()
    if not workflow.is_file():
        raise UserError(f"{path}: workflow {suite.workflow!r} not found", field="workflow")
    needs_judge = any(isinstance(c, Judge) for case in suite.cases for c in case.checks)
    if needs_judge and suite.judge is None:
        raise BlueprintError(f"{path}: a judge check needs `judge: {{agent: ...}}` in the suite")
    return suite, workflow


# ------------------------------------------------------------------ results


class CheckResult(BaseModel):
    check: str
    passed: bool
    detail: str = ""


class CaseResult(BaseModel):
    case: str
    run_id: str
    status: str
    score: float
    checks: list[CheckResult]
    tokens: int
    cost_usd: float
    seconds: float | None


class SuiteResult(BaseModel):
    suite: str
    config: dict[str, Any] = Field(default_factory=dict)
    score: float
    cases: list[CaseResult]
    cost_usd: float
    mean_seconds: float | None


JudgeCall = Callable[[str, str], str]  # (criteria, text) -> the judge's reply


def check_one(check: Check, value: Any, judge: JudgeCall | None) -> CheckResult:
    text = (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    )
    label = check.type if check.target == "output" else f"{check.type} ({check.target})"
    if isinstance(check, Exact):
        return CheckResult(check=label, passed=value == check.value)
    if isinstance(check, Contains):
        haystack, needle = (
            (text, check.value) if check.case_sensitive else (text.lower(), check.value.lower())
        )
        return CheckResult(check=label, passed=needle in haystack)
    if isinstance(check, Regex):
        return CheckResult(check=label, passed=re.search(check.pattern, text) is not None)
    if isinstance(check, JsonSchema):
        return _schema_check(label, check.schema_, value)
    assert judge is not None  # load_suite refuses judge checks without a judge
    reply = judge(check.criteria, text)
    verdict = re.search(r"\b(PASS|FAIL)\b", reply.upper())
    return CheckResult(
        check=label,
        passed=verdict is not None and verdict.group(1) == "PASS",
        detail=reply.strip()[:200],
    )


def _schema_check(label: str, schema: dict[str, Any], value: Any) -> CheckResult:
    try:
        import jsonschema
    except ImportError:
        raise ConfigError("json_schema checks need jsonschema: install agentfn[eval]") from None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return CheckResult(check=label, passed=False, detail="the output is not JSON")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=str)
    detail = errors[0].message[:200] if errors else ""
    return CheckResult(check=label, passed=not errors, detail=detail)


def score_case(case: Case, run: Run, store: RunStore, judge: JudgeCall | None) -> CaseResult:
    completed = run.status.value == "completed"
    results = []
    for check in case.checks:
        if not completed:
            results.append(
                CheckResult(check=check.type, passed=False, detail=f"run {run.status.value}")
            )
            continue
        if check.target == "output":
            value = run.output
        else:
            node = check.target.removeprefix("steps.")
            value = store.node_output(run.id, node) if node in run.finished else None
        results.append(check_one(check, value, judge))
    seconds = run.finished_at - run.created_at if run.finished_at is not None else None
    return CaseResult(
        case=case.name,
        run_id=run.id,
        status=run.status.value,
        score=sum(r.passed for r in results) / len(results),
        checks=results,
        tokens=run.usage.total_tokens,
        cost_usd=run.cost_usd,
        seconds=seconds,
    )


def summarize(suite: Suite, cases: list[CaseResult], config: dict[str, Any]) -> SuiteResult:
    timed = [c.seconds for c in cases if c.seconds is not None]
    return SuiteResult(
        suite=suite.name,
        config=config,
        score=sum(c.score for c in cases) / len(cases),
        cases=cases,
        cost_usd=sum(c.cost_usd for c in cases),
        mean_seconds=sum(timed) / len(timed) if timed else None,
    )


# ------------------------------------------------------------------ grids


def parse_grid(options: Iterable[str]) -> list[dict[str, Any]]:
    """``--grid model=a,b --grid temperature=0,0.7 --grid instructions.writer=@short.txt,@long.txt``
    as the list of configurations (their product), each a ``ReplayChanges`` in dict form."""
    axes: list[tuple[str, list[Any]]] = []
    for option in options:
        name, sep, values = option.partition("=")
        name = name.strip()
        if not sep or not values.strip():
            raise UserError(f"--grid {option!r}: give NAME=VALUE[,VALUE...]", field="grid")
        if name not in ("model", "temperature") and not name.startswith("instructions."):
            raise UserError(
                f"--grid {name!r}: a grid varies model, temperature or instructions.<agent>",
                field="grid",
            )
        parsed: list[Any] = []
        for raw in values.split(","):
            raw = raw.strip()
            if name == "temperature":
                try:
                    parsed.append(float(raw))
                except ValueError:
                    raise UserError(
                        f"--grid temperature: {raw!r} is not a number", field="grid"
                    ) from None
            elif raw.startswith("@"):
                try:
                    parsed.append(Path(raw[1:]).read_text(encoding="utf-8").strip())
                except OSError as exc:
                    raise UserError(
                        f"--grid {name}: cannot read {raw[1:]!r}: {exc.strerror}", field="grid"
                    ) from None
            else:
                parsed.append(raw)
        axes.append((name, parsed))
    if not axes:
        raise UserError("give at least one --grid NAME=VALUE,...", field="grid")
    configs = []
    for combo in itertools.product(*(values for _, values in axes)):
        config = dict(zip((name for name, _ in axes), combo, strict=True))
        changes(config)  # refuse a bad value now, not after some configurations ran
        configs.append(config)
    return configs


def changes(config: dict[str, Any]) -> ReplayChanges:
    """A grid configuration as the changes it makes to the blueprint."""
    instructions = {
        name.removeprefix("instructions."): value
        for name, value in config.items()
        if name.startswith("instructions.")
    }
    try:
        return ReplayChanges(
            model=config.get("model"),
            temperature=config.get("temperature"),
            instructions=instructions,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(f"--grid {first['loc'][0]}: {first['msg']}", field="grid") from None


def rank(results: list[SuiteResult]) -> list[SuiteResult]:
    """Best first: the highest score, then the cheapest, then the fastest."""
    return sorted(results, key=lambda r: (-r.score, r.cost_usd, r.mean_seconds or 0.0))
