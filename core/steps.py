"""Step keys: deterministic names for every unit of work in a run.

A key names the node, and where needed the fan-out item, the agent turn and a phase::

    plan@0          turn 0 of agent node "plan"
    check           tool, condition, join node, or the start of a wait or parallel node
    research[2]@1   turn 1 of the agent working on item 2 of parallel node "research"
    research[2]     item 2 of a tool-bodied parallel node
    research~gather gathers the items of "research" once all are done
    approve~wake    resumes wait node "approve" (signal or timeout, whichever comes first)

Because keys are deterministic, a job delivered twice names the same step, and the step's
recorded result makes the second delivery a no-op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from agentfn.errors import UserError

_KEY = re.compile(
    r"^(?P<node>[A-Za-z_][A-Za-z0-9_-]{0,62})(?:\[(?P<item>\d{1,6})\])?"
    r"(?:@(?P<turn>\d{1,4}))?(?:~(?P<phase>gather|wake))?$"
)


@dataclass(frozen=True, slots=True)
class StepKey:
    node: str
    item: int | None = None
    turn: int | None = None
    phase: str | None = None

    @classmethod
    def parse(cls, text: str) -> StepKey:
        m = _KEY.match(text)
        if m is None:
            raise UserError(f"malformed step key {text!r}", field="step")
        return cls(
            node=m["node"],
            item=int(m["item"]) if m["item"] is not None else None,
            turn=int(m["turn"]) if m["turn"] is not None else None,
            phase=m["phase"],
        )

    def __str__(self) -> str:
        out = self.node
        if self.item is not None:
            out += f"[{self.item}]"
        if self.turn is not None:
            out += f"@{self.turn}"
        if self.phase is not None:
            out += f"~{self.phase}"
        return out

    @property
    def unit(self) -> str:
        """What this step completes when it finishes: the node, or one fan-out item."""
        return self.node if self.item is None else f"{self.node}[{self.item}]"

    def next_turn(self) -> StepKey:
        return replace(self, turn=(self.turn or 0) + 1)

    def previous_turn(self) -> StepKey:
        return replace(self, turn=(self.turn or 0) - 1)


def item_key(node: str, index: int, *, agent: bool) -> str:
    return str(StepKey(node, item=index, turn=0 if agent else None))


def entry_key(node: str, *, agent: bool) -> str:
    return str(StepKey(node, turn=0 if agent else None))
