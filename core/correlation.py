"""One correlation id from the HTTP request through every job and step, in every log line.

The id comes from the caller's ``x-correlation-id`` header (or is generated), is stored on the
run, and travels in every job body as ``cid``; workers bind it to their logger per message.
"""

from __future__ import annotations

import contextvars

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")


def bind(value: str) -> None:
    """Make ``value`` the correlation id of everything this context logs from now on."""
    correlation_id.set(value)
