"""Workflow blueprints: a graph of agent, tool, condition, parallel, join, wait and loop nodes.

Blueprints are YAML written by people, so every error names the file and line. Validation is
complete before a run starts: node references, tools, agents, models, expressions, and the
graph's shape (a DAG: agents loop internally, and a loop node repeats its own parts for a
bounded number of rounds; edges never loop), because a run that fails an hour
in on a typo costs money.
"""

from __future__ import annotations

import graphlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from agentfn.agents import MEMORY_TOOLS, AgentSpec
from agentfn.concurrency_keys import ConcurrencySpec
from agentfn.costs import Price
from agentfn.errors import BlueprintError, ExpressionError, UserError
from agentfn.expressions import compile_expression, compile_template
from agentfn.http_tools import HttpTool, HttpToolSpec
from agentfn.model_policy import ModelPolicy
from agentfn.model_spec import ModelSpec
from agentfn.project_files import project_file
from agentfn.resilience import Backoff
from agentfn.tools import ToolRegistry, load_registry
from agentfn.workflow_scope import Scope, ancestors, scope_for
from agentfn.yaml_source import PathKey, YamlSource, load_yaml_file

NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")
MAX_FAN_OUT = 1000
MAX_NODES = 1000  # per blueprint (docs/blueprints.md); each is a step record per run
MAX_EDGES = 4000
MAX_ROUNDS = 100  # per loop node: each round's parts are steps with their own keys
MAX_LOOP_PARTS = 20
LOOP_NAMES = ("round", "current", "previous", "history")


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=3, ge=1, le=50)
    backoff: Backoff = Field(default_factory=lambda: Backoff(base_s=1.0, max_s=60.0))


def _node_id(v: str) -> str:
    if not NODE_ID.match(v):
        raise ValueError(
            "must start with a letter or '_' and hold only letters, digits, '_', '-' (at most 63)"
        )
    return v


# A node's (or a subtask's) id: it becomes part of step keys and store keys.
NodeId = Annotated[str, AfterValidator(_node_id)]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: NodeId
    description: str = ""
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    step_timeout_s: float | None = Field(default=None, gt=0, le=86_400)
    """Longest one attempt of this node's steps may run; None: the deployment's
    AGENTFN_STEP_TIMEOUT_S. (A wait node's ``timeout_s`` is how long it waits.)"""
    on_failure: Literal["fail", "continue"] = "fail"
    """When a step of this node fails for good: ``fail`` ends the run; ``continue`` records
    the node as failed (``Run.failures``) and treats its edges as not taken, so the paths
    through it are skipped and the rest of the run goes on."""


class AgentNode(_Node):
    type: Literal["agent"]
    agent: str
    prompt: str = "{{ input }}"


class ToolNode(_Node):
    type: Literal["tool"]
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class ConditionNode(_Node):
    type: Literal["condition"]
    expression: str


class ParallelNode(_Node):
    """Fan out over a list: one branch job per item, outputs gathered in order."""

    type: Literal["parallel"]
    for_each: str
    agent: str | None = None
    prompt: str = "{{ item }}"
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    max_items: int = Field(default=100, ge=1, le=MAX_FAN_OUT)


class JoinNode(_Node):
    """Waits for every incoming edge (taken or skipped); outputs ``{source: output}``.

    ``require: any`` starts it if any incoming edge was taken; ``all`` only if every one
    was (a step that needs each result is skipped when one of them is missing)."""

    type: Literal["join"]
    require: Literal["any", "all"] = "any"


class AggregateNode(JoinNode):
    """Combines candidates into one result, by ``strategy``. Waits like a join: every incoming
    edge decides first (``require`` as for a join).

    The candidates are ``candidates`` (an expression giving a list), or else the outputs of
    the incoming edges that were taken, in edge order. ``concatenate`` joins them as text
    with ``separator``; ``vote`` picks the most frequent (ties: the first seen); ``judge``
    asks agent ``judge`` with ``prompt`` (``candidates`` in scope) and takes its answer;
    ``best_score`` calls tool ``score`` with ``args`` (``candidate`` and ``index`` in scope)
    for each candidate and keeps the highest (ties: the first). The output is
    ``{result, strategy, candidates}`` and what decided it (``votes``, ``scores``)."""

    type: Literal["aggregate"]  # type: ignore[assignment]
    strategy: Literal["concatenate", "vote", "judge", "best_score"]
    candidates: str | None = None
    separator: str = Field(default="\n\n", max_length=100)
    judge: str | None = None
    prompt: str = (
        "Choose the best of these answers, or merge them into one better answer:\n{{ candidates }}"
    )
    score: str | None = None
    args: dict[str, Any] = Field(default_factory=lambda: {"candidate": "{{ candidate }}"})


class WaitNode(_Node):
    """Parks the run until a named signal arrives or ``timeout_s`` passes."""

    type: Literal["wait"]
    signal: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    timeout_s: float = Field(default=86_400.0, gt=0, le=31 * 86_400)
    on_timeout: Literal["continue", "fail"] = "continue"


class LoopPart(BaseModel):
    """One step of a loop's round: an agent (``prompt``) or a tool (``args``)."""

    model_config = ConfigDict(extra="forbid")

    id: NodeId
    agent: str | None = None
    prompt: str = "{{ input }}"
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)


class LoopNode(_Node):
    """Repeats its ``parts`` in order, round after round, until ``until`` holds after a round
    or ``max_rounds`` have run: a review cycle without a cycle in the graph.

    Parts see ``round`` (from 1), ``current`` (this round's finished parts by id),
    ``previous`` (the last round's, or null) and ``history`` (every earlier round); ``until``
    sees the finished round as ``current``. The output is ``{rounds, stopped_by, last,
    history}``, ``stopped_by`` being ``until`` or ``max_rounds``."""

    type: Literal["loop"]
    parts: list[LoopPart] = Field(min_length=1, max_length=MAX_LOOP_PARTS)
    max_rounds: int = Field(ge=1, le=MAX_ROUNDS)
    until: str | None = None


AnyNode = (
    AgentNode
    | ToolNode
    | ConditionNode
    | ParallelNode
    | JoinNode
    | AggregateNode
    | WaitNode
    | LoopNode
)
Node = Annotated[AnyNode, Field(discriminator="type")]


def agents_of(node: AnyNode) -> list[str]:
    """The agents a node runs (a loop: one per agent part)."""
    if isinstance(node, LoopNode):
        return [p.agent for p in node.parts if p.agent is not None]
    if isinstance(node, AggregateNode):
        return [node.judge] if node.judge is not None else []
    agent = node.agent if isinstance(node, AgentNode | ParallelNode) else None
    return [agent] if agent is not None else []


def tools_of(node: AnyNode) -> list[str]:
    """The tools a node calls itself (not through an agent)."""
    if isinstance(node, LoopNode):
        return [p.tool for p in node.parts if p.tool is not None]
    if isinstance(node, AggregateNode):
        return [node.score] if node.score is not None else []
    tool = node.tool if isinstance(node, ToolNode | ParallelNode) else None
    return [tool] if tool is not None else []


class Edge(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    when: str | None = None


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["string", "number", "integer", "boolean", "object", "array", "any"] = "string"
    required: bool = True
    default: Any = None
    description: str = ""

    def check(self, key: str, value: Any) -> None:
        expected = _TYPE_CHECKS.get(self.type)
        if expected and (
            not isinstance(value, expected)
            or (self.type in ("number", "integer") and isinstance(value, bool))
        ):
            raise UserError(
                f"input {key!r} must be of type {self.type}, got {type(value).__name__}",
                field=f"input.{key}",
            )


_TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


class Blueprint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    description: str = ""
    version: int = 1
    tools: list[str] = Field(default_factory=list, description="Python files defining @tool")
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    prices: dict[str, Price] = Field(default_factory=dict)
    agents: dict[str, AgentSpec] = Field(default_factory=dict)
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    nodes: list[Node] = Field(min_length=1, max_length=MAX_NODES)
    edges: list[Edge] = Field(default_factory=list, max_length=MAX_EDGES)
    output: str | None = None
    # At most ``limit`` steps of this workflow (of every run of it and of any workflow or agent
    # sharing ``key``) running at once across all workers; the rest wait in the queue.
    concurrency: ConcurrencySpec | None = None

    @cached_property
    def node_map(self) -> dict[str, AnyNode]:
        return {n.id: n for n in self.nodes}

    @cached_property
    def outgoing(self) -> dict[str, list[Edge]]:
        out: dict[str, list[Edge]] = defaultdict(list)
        for e in self.edges:
            out[e.source].append(e)
        return dict(out)

    @cached_property
    def incoming(self) -> dict[str, list[str]]:
        inc: dict[str, list[str]] = defaultdict(list)
        for e in self.edges:
            inc[e.target].append(e.source)
        return dict(inc)

    @property
    def roots(self) -> list[str]:
        return [n.id for n in self.nodes if n.id not in self.incoming]

    def tool_paths(self, base_dir: Path) -> list[Path]:
        """The tool modules, inside the project only (``UserError`` otherwise)."""
        return [project_file(base_dir, t, "tool module") for t in self.tools]

    def bind_inputs(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Check a run's input against ``inputs:``; fill defaults; refuse unknown names."""
        values: dict[str, Any] = {}
        if self.inputs:
            unknown = sorted(set(given) - set(self.inputs))
            if unknown:
                raise UserError(
                    f"unknown input {unknown[0]!r} (declared: {', '.join(sorted(self.inputs))})",
                    field=f"input.{unknown[0]}",
                )
        else:
            return dict(given)
        for key, spec in self.inputs.items():
            if key not in given:
                if spec.required and spec.default is None:
                    raise UserError(f"missing input {key!r}", field=f"input.{key}")
                values[key] = spec.default
                continue
            value = given[key]
            spec.check(key, value)
            values[key] = value
        return values


class LoadedBlueprint(BaseModel):
    """A validated blueprint and the folder its relative paths (tools, rules) resolve from.

    ``http_tools`` snapshots the declarative HTTP tools the blueprint uses, so a run keeps
    the definitions it started with.
    """

    blueprint: Blueprint
    base_dir: str
    source: str = ""
    http_tools: list[HttpToolSpec] = Field(default_factory=list)

    @property
    def base_path(self) -> Path:
        return Path(self.base_dir)


def load_blueprint(path: str | Path, *, check_tools: bool = True) -> LoadedBlueprint:
    path = Path(path)
    source = load_yaml_file(path)
    bp = parse_blueprint(source)
    base_dir = path.resolve().parent
    validate_blueprint(bp, source, base_dir, check_tools=check_tools)
    return LoadedBlueprint(blueprint=bp, base_dir=str(base_dir), source=str(path))


def parse_blueprint(source: YamlSource) -> Blueprint:
    if not isinstance(source.data, dict):
        raise BlueprintError(f"{source.file}: a blueprint must be a YAML mapping")
    try:
        return Blueprint.model_validate(source.data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc = _clean_loc(first["loc"])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise source.error(loc, _pydantic_message(first) + more) from None


def _clean_loc(loc: Iterable[Any]) -> PathKey:
    # Discriminated unions add the tag ("agent") as a path element: drop it.
    tags = {"agent", "tool", "condition", "parallel", "join", "aggregate", "wait", "loop"}
    out: list[str | int] = []
    parts = list(loc)
    for i, part in enumerate(parts):
        if isinstance(part, str) and part in tags and i > 0 and isinstance(parts[i - 1], int):
            continue
        out.append(part if isinstance(part, int) else str(part))
    return tuple(out)


def _pydantic_message(error: Mapping[str, Any]) -> str:
    if error["type"] == "union_tag_invalid":
        return (
            "unknown node type; use one of agent, tool, condition, parallel, join, aggregate, "
            "wait, loop"
        )
    if error["type"] == "union_tag_not_found":
        return "missing 'type' (agent, tool, condition, parallel, join, aggregate, wait or loop)"
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"])


def validate_blueprint(
    bp: Blueprint,
    source: YamlSource,
    base_dir: Path,
    *,
    check_tools: bool = True,
    http_tools: Iterable[HttpToolSpec] = (),
    model_policy: ModelPolicy | None = None,
) -> None:
    """Semantic checks pydantic cannot do alone; raises the first problem with its line.

    ``model_policy`` is the deployment's allow-list of model secrets and hosts, applied to a
    blueprint that arrives as user input (the catalog); files of the project are its own."""
    node_index = {n.id: i for i, n in enumerate(bp.nodes)}
    seen: set[str] = set()
    for i, n in enumerate(bp.nodes):
        if n.id in seen:
            raise source.error(("nodes", i, "id"), f"duplicate node id {n.id!r}")
        seen.add(n.id)

    for i, e in enumerate(bp.edges):
        for end, name in (("from", e.source), ("to", e.target)):
            if name not in node_index:
                raise source.error(("edges", i, end), f"unknown node {name!r}")
        if e.source == e.target:
            raise source.error(("edges", i), "an edge cannot point to its own node")
    _check_acyclic(bp, source)
    upstream = ancestors(node_index, ((e.source, e.target) for e in bp.edges))
    inputs = frozenset(bp.inputs) if bp.inputs else None
    for i, e in enumerate(bp.edges):
        if e.when is not None:  # the source's own result is `output`, not yet in steps
            when = scope_for(e.source, upstream, inputs, extra=("output",))
            _check_expr(source, ("edges", i, "when"), e.when, when)

    for name, agent in bp.agents.items():
        if agent.model not in bp.models:
            raise source.error(
                ("agents", name, "model"),
                f"unknown model {agent.model!r} (declared: {_names(bp.models)})",
            )
        summariser = agent.history_summariser
        if summariser is not None and (summariser not in bp.agents or summariser == name):
            raise source.error(
                ("agents", name, "history_summariser"),
                f"history_summariser {summariser!r} must be another agent of the blueprint "
                f"(declared: {_names(bp.agents)})",
            )
    for name, spec in bp.models.items():
        if model_policy is not None:
            try:
                model_policy.check(spec)
            except UserError as exc:
                raise source.error(("models", name, exc.field or ""), exc.message) from None
        if spec.provider == "scripted" and spec.rules:
            rules_at: PathKey = ("models", name, "rules")
            if not _inside(source, rules_at, base_dir, spec.rules, "rule file").is_file():
                raise source.error(rules_at, f"rule file {spec.rules!r} not found")

    registry: ToolRegistry | None = None
    if check_tools:
        for i, rel in enumerate(bp.tools):
            if not _inside(source, ("tools", i), base_dir, rel, "tool module").is_file():
                raise source.error(("tools", i), f"tool module {rel!r} not found")
        try:
            registry = load_registry(bp.tool_paths(base_dir))
            for http_tool in http_tools:
                registry.register(HttpTool(http_tool))
        except UserError as exc:
            raise source.error(("tools",), exc.message) from None
        shadowed = sorted(MEMORY_TOOLS.intersection(registry.names()))
        if shadowed:
            raise source.error(
                ("tools",),
                f"tool {shadowed[0]!r} is built in (agent memory): give yours another name",
            )
        for name, agent in bp.agents.items():
            for j, tool_name in enumerate(agent.tools):
                if tool_name not in registry and tool_name not in MEMORY_TOOLS:
                    raise source.error(
                        ("agents", name, "tools", j),
                        f"unknown tool {tool_name!r} (known: {_names(registry.names())})",
                    )

    for i, n in enumerate(bp.nodes):
        at: PathKey = ("nodes", i)
        incoming = bp.incoming.get(n.id, [])
        here = scope_for(n.id, upstream, inputs)
        per_item = scope_for(n.id, upstream, inputs, extra=("item", "index"))
        if isinstance(n, AgentNode | ParallelNode):
            _check_agent(source, (*at, "agent"), n.agent, bp)
        if isinstance(n, ToolNode | ParallelNode):
            _check_tool(source, (*at, "tool"), n.tool, registry)
        if isinstance(n, LoopNode):
            _check_loop(
                source, at, n, bp, registry, scope_for(n.id, upstream, inputs, extra=LOOP_NAMES)
            )
        elif isinstance(n, AgentNode):
            _check_template(source, (*at, "prompt"), n.prompt, here)
        elif isinstance(n, ToolNode):
            _check_args(source, (*at, "args"), n.args, here)
        elif isinstance(n, ConditionNode):
            _check_expr(source, (*at, "expression"), n.expression, here)
        elif isinstance(n, ParallelNode):
            _check_expr(source, (*at, "for_each"), n.for_each, here)
            if (n.agent is None) == (n.tool is None):
                raise source.error(at, "a parallel node needs exactly one of 'agent' or 'tool'")
            if n.agent is not None:
                _check_template(source, (*at, "prompt"), n.prompt, per_item)
            _check_args(source, (*at, "args"), n.args, per_item)
        elif isinstance(n, AggregateNode):
            _check_aggregate(source, at, n, bp, registry, here)
        elif isinstance(n, JoinNode) and len(incoming) < 2:
            raise source.error(at, "a join node needs at least two incoming edges")
    if bp.output is not None:
        _check_template(
            source, ("output",), bp.output, scope_for(None, upstream, inputs, every_node=True)
        )
    for key, declared in bp.inputs.items():
        if declared.default is not None:
            try:
                declared.check(key, declared.default)
            except UserError as exc:
                raise source.error(("inputs", key, "default"), exc.message) from None


def _check_agent(source: YamlSource, at: PathKey, name: str | None, bp: Blueprint) -> None:
    if name is not None and name not in bp.agents:
        raise source.error(at, f"unknown agent {name!r} (declared: {_names(bp.agents)})")


def _check_tool(
    source: YamlSource, at: PathKey, name: str | None, registry: ToolRegistry | None
) -> None:
    if name is not None and registry is not None and name not in registry:
        raise source.error(at, f"unknown tool {name!r} (known: {_names(registry.names())})")


def _check_loop(
    source: YamlSource,
    at: PathKey,
    node: LoopNode,
    bp: Blueprint,
    registry: ToolRegistry | None,
    scope: Scope,
) -> None:
    """A loop's parts: unique ids, exactly one of agent or tool each, templates and ``until``
    reading only what exists in a round."""
    seen: set[str] = set()
    for j, part in enumerate(node.parts):
        here: PathKey = (*at, "parts", j)
        if part.id in seen:
            raise source.error((*here, "id"), f"duplicate part id {part.id!r}")
        seen.add(part.id)
        if (part.agent is None) == (part.tool is None):
            raise source.error(here, "a loop part needs exactly one of 'agent' or 'tool'")
        _check_agent(source, (*here, "agent"), part.agent, bp)
        _check_tool(source, (*here, "tool"), part.tool, registry)
        if part.agent is not None:
            _check_template(source, (*here, "prompt"), part.prompt, scope)
        _check_args(source, (*here, "args"), part.args, scope)
    if node.until is not None:
        _check_expr(source, (*at, "until"), node.until, scope)


def _check_aggregate(
    source: YamlSource,
    at: PathKey,
    node: AggregateNode,
    bp: Blueprint,
    registry: ToolRegistry | None,
    scope: Scope,
) -> None:
    """What the strategy needs is there (a judge agent, a score tool), nothing else is given,
    and the expressions read only what exists."""
    needs = {"judge": "judge", "best_score": "score"}
    for strategy, field in needs.items():
        given = getattr(node, field) is not None
        if node.strategy == strategy and not given:
            raise source.error((*at, "strategy"), f"strategy {strategy!r} needs {field!r}")
        if given and node.strategy != strategy:
            raise source.error((*at, field), f"{field!r} is only for strategy {strategy!r}")
    if node.candidates is None and not bp.incoming.get(node.id):
        raise source.error(
            at, "an aggregate node needs 'candidates' or incoming edges whose outputs it combines"
        )
    if node.candidates is not None:
        _check_expr(source, (*at, "candidates"), node.candidates, scope)
    _check_agent(source, (*at, "judge"), node.judge, bp)
    _check_tool(source, (*at, "score"), node.score, registry)
    if node.judge is not None:
        _check_template(source, (*at, "prompt"), node.prompt, _with(scope, "candidates"))
    if node.score is not None:
        _check_args(source, (*at, "args"), node.args, _with(scope, "candidate", "index"))


def _with(scope: Scope, *names: str) -> Scope:
    return Scope(scope.names | frozenset(names), scope.upstream, scope.inputs, scope.node)


def _inside(source: YamlSource, at: PathKey, base_dir: Path, name: str, what: str) -> Path:
    try:
        return project_file(base_dir, name, what)
    except UserError as exc:
        raise source.error(at, exc.message) from None


def _names(d: Iterable[str]) -> str:
    return ", ".join(sorted(d)) or "none"


def _check_expr(source: YamlSource, at: PathKey, text: str, scope: Scope) -> None:
    try:
        compiled = compile_expression(text)
        scope.check(compiled.names, compiled.keys)
    except ExpressionError as exc:
        raise source.error(at, exc.message) from None


def _check_template(source: YamlSource, at: PathKey, text: str, scope: Scope) -> None:
    try:
        compiled = compile_template(text)
        scope.check(compiled.names, compiled.keys)
    except ExpressionError as exc:
        raise source.error(at, exc.message) from None


def _check_args(source: YamlSource, at: PathKey, value: Any, scope: Scope) -> None:
    """Templates anywhere inside tool arguments, walked iteratively."""
    stack: list[tuple[PathKey, Any]] = [(at, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            _check_template(source, where, item, scope)
        elif isinstance(item, dict):
            stack.extend(((*where, str(k)), v) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend(((*where, i), v) for i, v in enumerate(item))


def _check_acyclic(bp: Blueprint, source: YamlSource) -> None:
    """Iterative (graphlib), so a long chain cannot exhaust the stack."""
    successors: dict[str, list[str]] = {n.id: [] for n in bp.nodes}
    for e in bp.edges:
        successors[e.source].append(e.target)
    try:
        graphlib.TopologicalSorter(successors).prepare()
    except graphlib.CycleError as exc:
        cycle: list[str] = list(reversed(exc.args[1]))  # graphlib lists it against the edges
        edge_at = {(e.source, e.target): i for i, e in enumerate(bp.edges)}
        raise source.error(
            ("edges", edge_at[(cycle[-2], cycle[-1])]),
            f"cycle {' -> '.join(cycle)}: workflows are acyclic (repeat with a loop node)",
        ) from None


def check_deployment_limits(bp: Blueprint, *, delivery_limit: int, step_timeout_s: float) -> None:
    """What a blueprint asks must fit the deployment: a node may not retry more often than
    the queue delivers (the queue would drop the job before the engine could fail the run),
    nor run longer than the step timeout (the platform would cut it short)."""
    for index, node in enumerate(bp.nodes):
        own = node.step_timeout_s
        if own is not None and own > step_timeout_s:
            raise BlueprintError(
                f"nodes[{index}].step_timeout_s: {own:g} s is longer than this "
                f"deployment's step timeout of {step_timeout_s:g} s "
                "(AGENTFN_STEP_TIMEOUT_S, below the function timeout)",
                field=f"nodes[{index}].step_timeout_s",
            )
        if node.retry.max_attempts >= delivery_limit:
            raise BlueprintError(
                f"nodes[{index}].retry.max_attempts: {node.retry.max_attempts} must be below "
                f"the queue's delivery limit of {delivery_limit} (AGENTFN_MAX_ATTEMPTS)",
                field=f"nodes[{index}].retry.max_attempts",
            )


def render_args(value: Any, names: Mapping[str, Any]) -> Any:
    """Render templates inside tool arguments, keeping native types for ``{{ expr }}``."""
    if isinstance(value, str):
        return compile_template(value).render(names)
    if isinstance(value, dict):
        return {k: render_args(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [render_args(v, names) for v in value]
    return value
