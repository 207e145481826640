"""agentfn's own events as CloudEvents 1.0 envelopes (structured JSON mode).

Jobs on every queue are ``agentfn.step.ready`` events, so a message read off SQS, Pub/Sub or a
Storage Queue is self-describing and can be routed by type. ``python -m agentfn.events.cloudevents``
writes the JSON Schema of every event to events/schemas/.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from agentfn.tenancy import DEFAULT_TENANT

SOURCE = "urn:agentfn:engine"
SPEC_VERSION: Literal["1.0"] = "1.0"

D = TypeVar("D", bound=BaseModel)


class RunRequested(BaseModel):
    run: str
    workflow: str
    cid: str = ""


class StepReady(BaseModel):
    run: str
    step: str
    cid: str = ""
    tenant: str = DEFAULT_TENANT  # whose prefix of the store the run lives under


class RunFinished(BaseModel):
    run: str
    workflow: str
    status: Literal["completed", "failed", "cancelled"]
    cid: str = ""
    error: str | None = None


class CloudEvent(BaseModel, Generic[D]):
    model_config = ConfigDict(populate_by_name=True)

    specversion: Literal["1.0"] = SPEC_VERSION
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    source: str = SOURCE
    type: str
    subject: str | None = None
    time: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    datacontenttype: Literal["application/json"] = "application/json"
    data: D


class RunRequestedEvent(CloudEvent[RunRequested]):
    type: Literal["agentfn.run.requested"] = "agentfn.run.requested"


class StepReadyEvent(CloudEvent[StepReady]):
    type: Literal["agentfn.step.ready"] = "agentfn.step.ready"


class RunCompletedEvent(CloudEvent[RunFinished]):
    type: Literal["agentfn.run.completed"] = "agentfn.run.completed"


class RunFailedEvent(CloudEvent[RunFinished]):
    type: Literal["agentfn.run.failed"] = "agentfn.run.failed"


EVENTS: dict[str, type[CloudEvent[Any]]] = {
    "agentfn.run.requested": RunRequestedEvent,
    "agentfn.step.ready": StepReadyEvent,
    "agentfn.run.completed": RunCompletedEvent,
    "agentfn.run.failed": RunFailedEvent,
}


def step_ready(run: str, step: str, cid: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any]:
    """The queue message body of one job."""
    data = StepReady(run=run, step=step, cid=cid, tenant=tenant)
    event = StepReadyEvent(subject=run, data=data)
    return event.model_dump(mode="json")


def run_requested(run: str, workflow: str, cid: str) -> dict[str, Any]:
    """Emitted when a run is recorded and its first steps are queued."""
    data = RunRequested(run=run, workflow=workflow, cid=cid)
    return RunRequestedEvent(subject=run, data=data).model_dump(mode="json")


def run_finished(
    run: str, workflow: str, status: Literal["completed", "failed"], cid: str, error: str | None
) -> dict[str, Any]:
    """Emitted once, by the step (or failure) that ended the run."""
    data = RunFinished(run=run, workflow=workflow, status=status, cid=cid, error=error)
    event = RunCompletedEvent if status == "completed" else RunFailedEvent
    return event(subject=run, data=data).model_dump(mode="json")


def job_of(body: dict[str, Any]) -> dict[str, Any]:
    """The job in a message body: a step.ready event's data, or a bare job as-is."""
    if body.get("specversion") == SPEC_VERSION and body.get("type") == "agentfn.step.ready":
        data = body.get("data")
        return data if isinstance(data, dict) else {}
    return body


def export_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in EVENTS.items():
        path = folder / f"{name}.schema.json"
        schema = model.model_json_schema()
        schema["$id"] = f"urn:agentfn:schema:{name}"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in export_schemas(Path(__file__).with_name("schemas")):
        print(p)
