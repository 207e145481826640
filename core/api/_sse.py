"""A collaboration's progress as server-sent events (text/event-stream).

Each batch is the subtasks that changed since a cursor (``event: subtask``, one each), then
``event: progress`` carrying the new cursor as its ``id``, and ``event: done`` once nothing
will change again. The cursor is the SSE ``id``, so a client that reconnects sends it back as
``Last-Event-ID`` and misses nothing; an entry point that cannot stream answers one batch and
the client's reconnect (``retry:``) fetches the next, so the same URL works everywhere.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from agentfn.api._models import CollaborationProgress

RETRY_MS = 1000  # how soon a client reconnects after a batch that ended the response
POLL_S = 0.25  # how often a stream looks at the run
HEARTBEAT_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
STREAM_MAX_S = 300.0  # a stream ends after this; the client reconnects with its cursor


def event(name: str, data: Any, *, event_id: str | None = None) -> bytes:
    lines = [f"event: {name}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), default=_dump))
    return ("\n".join(lines) + "\n\n").encode()


def batch(progress: CollaborationProgress) -> bytes:
    """The events of one poll: every change, the progress with the new cursor, maybe done."""
    out = [event("subtask", sub) for sub in progress.changed]
    summary = {"id": progress.id, "status": progress.status, "progress": progress.progress}
    out.append(event("progress", summary, event_id=progress.cursor))
    if progress.done:
        out.append(event("done", {"id": progress.id, "status": progress.status}))
    return b"".join(out)


def opening(progress: CollaborationProgress) -> bytes:
    return f"retry: {RETRY_MS}\n\n".encode() + batch(progress)


def follow(
    poll: Callable[[str], CollaborationProgress],
    first: CollaborationProgress,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    """What comes after the opening batch: a batch whenever something changed, a heartbeat
    comment when nothing did for a while, until done or ``STREAM_MAX_S``."""
    cursor, done = first.cursor, first.done
    began = last_sent = clock()
    while not done and clock() - began < STREAM_MAX_S:
        sleep(POLL_S)
        progress = poll(cursor)
        if progress.changed or progress.done or progress.cursor != cursor:
            cursor, done = progress.cursor, progress.done
            last_sent = clock()
            yield batch(progress)
        elif clock() - last_sent >= HEARTBEAT_S:
            last_sent = clock()
            yield b": waiting\n\n"


def _dump(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
