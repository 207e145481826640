"""Azure Functions entry points (Python v2 programming model).

``http``: an HTTP trigger with a catch-all route (``host.json`` sets an empty route prefix, so
paths are ``/v1/...`` as everywhere else). ``worker``: a Storage Queue trigger; success deletes
the message, an exception makes the host retry it and, after ``maxDequeueCount``, move it to
the poison queue.
"""

from __future__ import annotations

import azure.functions as func

from agentfn.api import Request
from agentfn.functions import runtime

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
# Fails an invocation so the host redelivers the message (one class for every entry point).
StepNotSettled = runtime.StepNotSettled


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
    from agentfn.ports import QueueMessage

    try:
        body = runtime.job_body(msg.get_json())
    except ValueError:
        body = runtime.job_body(msg.get_body())
    runtime.correlation_of(body)
    message = QueueMessage(
        id=msg.id or "",
        body=body,
        attempts=int(msg.dequeue_count or 1),
        # The trigger listens to the priority-0 queue; the adapter's receipt names it.
        receipt=f"0/{msg.pop_receipt}" if msg.pop_receipt else "",
    )
    runtime.handle_triggered(message)
