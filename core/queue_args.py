"""Argument checks every Queue adapter applies alike, so bad input fails the same way on
every cloud (a UserError naming the field) before anything is sent."""

from __future__ import annotations

import json
import math
from typing import Any

from agentfn.errors import UserError


def encode_body(body: Any, *, ensure_ascii: bool = True) -> str:
    """A job body as compact JSON; it must be a JSON object."""
    if not isinstance(body, dict):
        raise UserError(f"body must be a JSON object, got {type(body).__name__}", field="body")
    try:
        return json.dumps(body, allow_nan=False, separators=(",", ":"), ensure_ascii=ensure_ascii)
    except (TypeError, ValueError) as exc:
        raise UserError(f"body is not JSON-serialisable: {exc}", field="body") from exc


def seconds(value: object, field: str, *, positive: bool) -> float:
    """A finite duration: > 0 when ``positive``, else >= 0."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        v = float(value)
        if math.isfinite(v) and (v > 0 or (v == 0 and not positive)):
            return v
    rule = "> 0" if positive else ">= 0"
    raise UserError(f"{field} must be a finite number {rule}, got {value!r}", field=field)


def check_priority(priority: object) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise UserError("priority must be an integer", field="priority")
    if not -(2**63) <= priority < 2**63:
        raise UserError("priority is out of the 64-bit range", field="priority")
    return priority


def check_max_messages(value: object, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise UserError(f"max_messages must be an integer in 1..{limit}", field="max_messages")
    return value


def check_limit(limit: object) -> int:
    """A page size or dead-letter count: an integer >= 1."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise UserError("limit must be a positive integer", field="limit")
    return limit


def check_max_attempts(max_attempts: object) -> int:
    """A queue's ``max_attempts``: an integer >= 1."""
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise UserError("max_attempts must be an integer >= 1", field="max_attempts")
    return max_attempts
