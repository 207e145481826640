"""Step keys: deterministic names for every unit of work in a run.

A key names the node, and where needed the fan-out item, the agent turn and a phase::

    plan@0          turn 0 of agent node "plan"
    check           tool, condition, join node, or the start of a wait or parallel node
    research[2]@1   turn 1 of the agent working on item 2 of parallel node "research"
    research[2]     item 2 of a tool-bodied parallel node
    research~gather gathers the items of "research" once all are done
    approve~wake    resumes wait node "approve" (signal or timeout, whichever comes first)
    review#2.draft@0  turn 0 of part "draft" in round 2 of loop node "review"
    review#2~check  decides after round 2 of "review": another round, or done

Because keys are deterministic, a job delivered twice names the same step, and the step's
recorded result makes the second delivery a no-op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from agentfn.errors import UserError

_ID = r"[A-Za-z_][A-Za-z0-9_-]{0,62}"
_KEY = re.compile(
    rf"^(?P<node>{_ID})(?:#(?P<round>\d{{1,3}})(?:\.(?P<part>{_ID}))?)?(?:\[(?P<item>\d{{1,6}})\])?"
    r"(?:@(?P<turn>\d{1,4}))?(?:~(?P<phase>gather|wake|check))?$"
)


@dataclass(frozen=True, slots=True)
class StepKey:
    node: str
    item: int | None = None
    turn: int | None = None
    phase: str | None = None
    round: int | None = None
    part: str | None = None

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
            round=int(m["round"]) if m["round"] is not None else None,
            part=m["part"],
        )

    def __str__(self) -> str:
        out = self.node
        if self.round is not None:
            out += f"#{self.round}"
        if self.part is not None:
            out += f".{self.part}"
        if self.item is not None:
            out += f"[{self.item}]"
        if self.turn is not None:
            out += f"@{self.turn}"
        if self.phase is not None:
            out += f"~{self.phase}"
        return out

    @property
    def unit(self) -> str:
        """What this step completes when it finishes: the node, one fan-out item, or a loop's
        part (``node#r.part``) or round (``node#r``, the history through round r)."""
        if self.round is not None:
            return f"{self.node}#{self.round}" + (f".{self.part}" if self.part else "")
        return self.node if self.item is None else f"{self.node}[{self.item}]"

    @property
    def within_node(self) -> bool:
        """Whether the unit it completes is a piece of its node (an item, a loop round or part)."""
        return self.item is not None or self.round is not None

    def next_turn(self) -> StepKey:
        return replace(self, turn=(self.turn or 0) + 1)

    def previous_turn(self) -> StepKey:
        return replace(self, turn=(self.turn or 0) - 1)


def item_key(node: str, index: int, *, agent: bool) -> str:
    return str(StepKey(node, item=index, turn=0 if agent else None))


def entry_key(node: str, *, agent: bool) -> str:
    return str(StepKey(node, turn=0 if agent else None))


def part_key(node: str, round_: int, part: str, *, agent: bool) -> str:
    """The first step of part ``part`` of round ``round_`` (from 1) of loop node ``node``."""
    return str(StepKey(node, round=round_, part=part, turn=0 if agent else None))


def check_key(node: str, round_: int) -> str:
    return str(StepKey(node, round=round_, phase="check"))
