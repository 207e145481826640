"""What a step's executor is handed: the run's cached context and the step's own view of it.

``RunContext`` is cached per blueprint snapshot in each process (tools, models, prices are
built once). ``StepContext`` is built for one step of one run and is the only thing an
executor receives, so executors never reach into the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from agentfn.agents import MEMORY_TOOLS, AgentSpec
from agentfn.conversations import Conversations
from agentfn.costs import PriceTable
from agentfn.errors import ExpressionError, StepFailed
from agentfn.expressions import compile_expression
from agentfn.http_tools import HttpTool
from agentfn.memory_tools import MemoryTool
from agentfn.model_spec import ModelSpec
from agentfn.ports import Model, ToolSpec, Usage
from agentfn.prompt_log import PromptLog
from agentfn.reply_cache import ReplyCache
from agentfn.runs import Run, RunStore, StepOutcome
from agentfn.steps import StepKey
from agentfn.telemetry import Observer
from agentfn.tools import Invocable, ToolRegistry, load_registry
from agentfn.workflows import Blueprint, LoadedBlueprint

ModelFactory = Callable[[ModelSpec, Path], Model]


@dataclass
class RunContext:
    """What executing a run's steps needs, cached per blueprint snapshot in each process."""

    loaded: LoadedBlueprint
    model_factory: ModelFactory
    _models: dict[str, Model] = field(default_factory=dict)

    @property
    def blueprint(self) -> Blueprint:
        return self.loaded.blueprint

    @cached_property
    def tools(self) -> ToolRegistry:
        registry = load_registry(self.blueprint.tool_paths(self.loaded.base_path))
        for spec in self.loaded.http_tools:
            registry.register(HttpTool(spec))
        return registry

    @cached_property
    def prices(self) -> PriceTable:
        return PriceTable(self.blueprint.prices)

    def model(self, name: str) -> Model:
        if name not in self._models:
            self._models[name] = self.model_factory(
                self.blueprint.models[name], self.loaded.base_path
            )
        return self._models[name]


class NodeOutputs(Mapping[str, Any]):
    """``steps.<node>.output`` in expressions: loads finished nodes' outputs on first use."""

    def __init__(self, store: RunStore, run: Run) -> None:
        self._store = store
        self._run = run
        self._cache: dict[str, Any] = {}

    def __getitem__(self, node: str) -> Any:
        if node not in self._cache:
            if node not in self._run.finished:
                raise KeyError(node)
            self._cache[node] = {"output": self._store.node_output(self._run.id, node)}
        return self._cache[node]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._run.finished))

    def __len__(self) -> int:
        return len(self._run.finished)


def expression_names(store: RunStore, run: Run) -> dict[str, Any]:
    """The names templates and expressions see: ``input``, ``steps``, ``run``."""
    return {
        "input": run.input,
        "steps": NodeOutputs(store, run),
        "run": {"id": run.id, "workflow": run.workflow},
    }


@dataclass
class StepContext:
    """One step of one run, as its executor sees it.

    ``complete`` records the output of the node (or fan-out item) the step finishes and
    decides its outgoing edges; everything else an executor needs is a field.
    """

    run: Run
    step: StepKey
    context: RunContext
    store: RunStore
    prompts: PromptLog
    replies: ReplyCache
    conversations: Conversations
    clock: Callable[[], float]
    observer: Observer

    @property
    def blueprint(self) -> Blueprint:
        return self.context.blueprint

    @property
    def tools(self) -> ToolRegistry:
        return self.context.tools

    def agent_tool(self, agent: str, name: str) -> Invocable:
        """The tool ``name`` as agent ``agent`` calls it: a memory tool is bound to the agent
        and the run's thread, any other comes from the blueprint's registry."""
        if name not in MEMORY_TOOLS:
            return self.tools.get(name)
        thread = self.run.thread
        return MemoryTool(
            name,
            self.conversations.memory,
            agent=agent,
            settings=self.blueprint.agents[agent].memory,
            thread=thread.id if thread is not None else None,
            run_id=self.run.id,
        )

    def agent_tool_specs(self, agent: str) -> list[ToolSpec]:
        spec: AgentSpec = self.blueprint.agents[agent]
        return [self.agent_tool(agent, name).spec() for name in spec.tools]

    def names(self) -> dict[str, Any]:
        return expression_names(self.store, self.run)

    def complete(
        self, unit: str, value: Any, *, usage: Usage | None = None, cost_usd: float = 0.0
    ) -> StepOutcome:
        """The outcome completing a node (or fan-out item) with ``value``, and its edges.

        The value is stored as the node's output with the step's record, by the engine
        (``put_node_output``): the step record's compare-and-swap already decides which
        execution of the step counts, so no write here has to."""
        outcome = StepOutcome(
            output=value, completes=unit, usage=usage or Usage(), cost_usd=cost_usd
        )
        if not StepKey.parse(unit).within_node:
            outcome.edges = self.edges(unit, value)
        return outcome

    def edges(self, node: str, value: Any) -> dict[str, bool]:
        """Which outgoing edges of ``node`` fire for its output ``value``."""
        edges: dict[str, bool] = {}
        names = {**self.names(), "output": value}
        for edge in self.blueprint.outgoing.get(node, []):
            active = True
            if edge.when is not None:
                try:
                    active = bool(compile_expression(edge.when).evaluate(names))
                except ExpressionError as exc:
                    raise StepFailed(f"edge {node} -> {edge.target}: {exc.message}") from None
            edges[edge.target] = edges.get(edge.target, False) or active
        return edges
