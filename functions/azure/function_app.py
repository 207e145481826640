"""Azure Functions entry points (Python v2 programming model).

``http``: an HTTP trigger with a catch-all route (``host.json`` sets an empty route prefix, so
paths are ``/v1/...`` as everywhere else). ``worker``: a Storage Queue trigger; success deletes
the message, an exception makes the host retry it and, after ``maxDequeueCount``, move it to
the poison queue.
"""

from __future__ import annotations

import logging

import azure.functions as func

from agentfn.api import Request
from agentfn.correlation import correlation_id
from agentfn.events.cloudevents import job_of
from agentfn.functions import runtime

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
log = logging.getLogger("agentfn.azure")


class StepNotSettled(Exception):
    """The step must run again later: fail the invocation so the host redelivers."""


@app.route(route="{*path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def http(req: func.HttpRequest) -> func.HttpResponse:
    path = "/" + (req.route_params.get("path") or "").lstrip("/")
    api_request = Request(
        method=req.method,
        path=path,
        headers=dict(req.headers.items()),
        query=dict(req.params.items()),
        body=req.get_body(),
    )
    response = runtime.current().api.handle(api_request)
    return func.HttpResponse(
        body=response.body,
        status_code=response.status,
        headers=response.headers,
        mimetype=response.headers.get("content-type", "application/json"),
    )


@app.queue_trigger(
    arg_name="msg", queue_name="%AGENTFN_QUEUE_NAME%", connection="AzureWebJobsStorage"
)
def worker(msg: func.QueueMessage) -> None:
    from agentfn.delivery import TriggerAcker
    from agentfn.ports import QueueMessage

    try:
        body = msg.get_json()
    except ValueError:
        body = {"raw": msg.get_body().decode("utf-8", errors="replace")}
    if not isinstance(body, dict):
        body = {"raw": body}
    correlation_id.set(str(job_of(body).get("cid", "")))
    message = QueueMessage(
        id=msg.id or "",
        body=body,
        attempts=int(msg.dequeue_count or 1),
        # The trigger listens to the priority-0 queue; the adapter's receipt names it.
        receipt=f"0/{msg.pop_receipt}" if msg.pop_receipt else "",
    )
    rt = runtime.current()
    acker = TriggerAcker(rt.queue)
    outcome = rt.engine.handle(message, acker)
    log.info("step %s", outcome, extra={"correlation_id": correlation_id.get()})
    if acker.failed:
        raise StepNotSettled(f"job {body.get('step')!r} must run again ({outcome})")
