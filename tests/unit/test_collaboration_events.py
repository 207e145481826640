"""Progress as server-sent events: streamed by the local server until the collaboration is
done, one batch per request where an entry point cannot stream, resumable by Last-Event-ID."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from agentfn.api import Request, _sse
from agentfn.functions.local.server import serve
from agentfn.functions.runtime import Runtime
from tests.unit.test_collaboration_api import KEY, PLAN, call, runtime, work

__all__ = ["runtime"]  # the fixture, shared with the API tests


def parse(raw: str) -> list[dict[str, Any]]:
    """The events of an SSE body: name, id and data (comments and retry skipped)."""
    events = []
    for block in raw.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and line[0] != ":")
        if "event" in fields:
            events.append(
                {
                    "event": fields["event"],
                    "id": fields.get("id"),
                    "data": json.loads(fields["data"]),
                }
            )
    return events


def events_of(
    rt: Runtime, cid: str, last_id: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    headers = {"authorization": f"Bearer {KEY}"}
    if last_id is not None:
        headers["last-event-id"] = last_id
    reply = rt.api.handle(Request("GET", f"/v1/collaborations/{cid}/events", headers=headers))
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "text/event-stream"
    assert reply.stream is None  # this entry point does not stream: one batch
    return reply.body.decode(), parse(reply.body.decode())


def test_an_entry_point_that_cannot_stream_answers_one_batch_and_resumes(runtime: Runtime) -> None:
    _, started = call(runtime, "POST", "/v1/collaborations", {"team": "team", "plan": PLAN})
    cid = started["id"]
    raw, first = events_of(runtime, cid)
    assert raw.startswith("retry: 1000\n\n")
    assert [e["event"] for e in first] == ["subtask"] * 3 + ["progress"]
    assert [e["data"]["id"] for e in first[:3]] == ["intro", "body", "review"]
    cursor = first[-1]["id"]
    assert cursor and first[-1]["data"]["progress"]["queued"] == 2
    _, idle = events_of(runtime, cid, cursor)  # nothing changed: just the progress
    assert [e["event"] for e in idle] == ["progress"] and idle[0]["id"] == cursor
    work(runtime, 10)
    _, rest = events_of(runtime, cid, cursor)
    assert [(e["event"], e["data"].get("status")) for e in rest] == [
        ("subtask", "completed"),
        ("subtask", "completed"),
        ("subtask", "completed"),
        ("progress", "completed"),
        ("done", "completed"),
    ]


@pytest.fixture
def server(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(_sse, "POLL_S", 0.02)
    httpd = serve(runtime.api, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def open_stream(port: int, cid: str, last_id: str | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    headers = {"authorization": f"Bearer {KEY}", "accept": "text/event-stream"}
    if last_id:
        headers["last-event-id"] = last_id
    conn.request("GET", f"/v1/collaborations/{cid}/events", headers=headers)
    reply = conn.getresponse()
    assert reply.status == 200 and reply.getheader("content-type") == "text/event-stream"
    return reply


def test_the_local_server_streams_every_change_until_done(runtime: Runtime, server: int) -> None:
    _, started = call(runtime, "POST", "/v1/collaborations", {"team": "team", "plan": PLAN})
    cid = started["id"]
    reply = open_stream(server, cid)
    assert reply.getheader("content-length") is None  # a stream, not a sized body
    stop = threading.Event()
    worker = threading.Thread(
        target=runtime.engine.work, kwargs={"stop": stop.is_set, "poll_s": 0.05}
    )
    worker.start()
    try:
        raw = reply.read().decode()  # the server ends the stream once the work is done
    finally:
        stop.set()
        worker.join()
    events = parse(raw)
    assert events[-1]["event"] == "done" and events[-1]["data"]["status"] == "completed"
    seen: dict[str, list[str]] = {}
    for e in events:
        if e["event"] == "subtask":
            seen.setdefault(e["data"]["id"], []).append(e["data"]["status"])
    assert {sub: states[-1] for sub, states in seen.items()} == dict.fromkeys(
        ["intro", "body", "review"], "completed"
    )
    assert seen["review"][0] == "waiting"  # every state as it changed, in order
    cursors = [e["id"] for e in events if e["event"] == "progress"]
    assert len(cursors) >= 2 and all(cursors)
    # Reconnecting with the last id: nothing missed, nothing repeated, and it ends at once.
    again = parse(open_stream(server, cid, cursors[-1]).read().decode())
    assert [e["event"] for e in again] == ["progress", "done"]


def test_the_events_route_is_in_the_openapi_document(runtime: Runtime) -> None:
    doc = runtime.api.handle(Request("GET", "/openapi.json")).json()
    op = doc["paths"]["/v1/collaborations/{collaboration_id}/events"]["get"]
    assert "text/event-stream" in op["responses"]["200"]["content"]


def test_an_idle_stream_sends_heartbeats_and_ends_for_a_reconnect() -> None:
    from agentfn.api._models import CollaborationProgress

    now = [0.0]
    quiet = CollaborationProgress(
        id="c", status="running", progress={}, changed=[], cursor="k", done=False
    )

    def sleep(s: float) -> None:
        now[0] += 5.0  # every poll, five seconds pass

    chunks = list(_sse.follow(lambda cursor: quiet, quiet, clock=lambda: now[0], sleep=sleep))
    assert chunks and set(chunks) == {b": waiting\n\n"}
    assert len(chunks) == int(_sse.STREAM_MAX_S // _sse.HEARTBEAT_S)  # then it ends
