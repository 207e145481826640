"""Which names an expression or template in a blueprint may read, checked before any run.

Without this, ``input.tiket`` or ``steps.lokup`` passed validation and the run failed later —
or succeeded silently behind a short-circuit (``'lokup' in steps and ...``). Every static
read is checked here against what exists at that place: the declared inputs, the nodes
upstream, and the names that location has (``output`` in ``when:``, ``item``/``index`` in a
parallel node's prompt and args).
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agentfn.errors import ExpressionError

EVERYWHERE = frozenset({"input", "steps", "run"})
RUN_KEYS = frozenset({"id", "workflow"})


@dataclass(frozen=True)
class Scope:
    """What one expression may read. ``inputs`` None: the blueprint declares no inputs, so
    any input key may be given."""

    names: frozenset[str]
    upstream: frozenset[str]
    inputs: frozenset[str] | None
    node: str | None  # whose expression this is, for messages

    def check(self, names: Iterable[str], keys: Iterable[tuple[str, str]]) -> None:
        """Raise ``ExpressionError`` for the first name or key that cannot exist here."""
        for name in sorted(names):
            if name not in self.names:
                raise ExpressionError(
                    f"unknown name {name!r} (in scope here: {', '.join(sorted(self.names))})"
                )
        for root, key in sorted(keys):
            if root == "input" and self.inputs is not None and key not in self.inputs:
                declared = ", ".join(sorted(self.inputs)) or "none"
                raise ExpressionError(f"input.{key}: no input {key!r} (declared: {declared})")
            if root == "steps" and key not in self.upstream:
                where = f"upstream of {self.node!r}" if self.node else "in this workflow"
                known = ", ".join(sorted(self.upstream)) or "none"
                raise ExpressionError(
                    f"steps.{key}: no node {key!r} {where}, so it has not run there "
                    f"(upstream: {known})"
                )
            if root == "run" and key not in RUN_KEYS:
                raise ExpressionError(f"run.{key}: unknown (run has {', '.join(sorted(RUN_KEYS))})")


def ancestors(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """Every node's ancestors (the graph is acyclic: checked before), computed iteratively."""
    predecessors: dict[str, set[str]] = {n: set() for n in nodes}
    for source, target in edges:
        predecessors[target].add(source)
    found: dict[str, frozenset[str]] = {}
    for node in graphlib.TopologicalSorter(predecessors).static_order():
        above: set[str] = set()
        for parent in predecessors[node]:
            above.add(parent)
            above |= found[parent]
        found[node] = frozenset(above)
    return found


def scope_for(
    node: str | None,
    upstream: Mapping[str, frozenset[str]],
    inputs: frozenset[str] | None,
    *,
    extra: Iterable[str] = (),
    every_node: bool = False,
) -> Scope:
    """The scope of an expression of ``node`` (``None``: the workflow's ``output:``, which
    runs after every node, so ``every_node``)."""
    seen = frozenset(upstream) if every_node else upstream.get(node or "", frozenset())
    return Scope(EVERYWHERE | frozenset(extra), seen, inputs, node)
