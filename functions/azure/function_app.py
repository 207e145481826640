"""Azure Functions entry points (Python v2 programming model).

``http``: an HTTP trigger with a catch-all route (``host.json`` sets an empty route prefix, so
paths are ``/v1/...`` as everywhere else). ``worker``: a Storage Queue trigger; success deletes
the message, an exception makes the host retry it and, after ``maxDequeueCount``, move it to
the poison queue. The trigger reaches the queue through the identity-based connection
``QUEUE_CONNECTION`` (the stack sets ``<QUEUE_CONNECTION>__queueServiceUri``).

If the app cannot load (its pinned requirements are not on the path, or an import fails),
``app`` is :func:`agentfn.functions.azure.guard.unavailable_app` instead: every route answers
503 with the error, rather than the host loading 0 functions.
"""

from __future__ import annotations

import azure.functions as func

from agentfn.functions.azure.guard import check_requirements, unavailable_app

QUEUE_CONNECTION = "AgentfnQueue"

try:
    check_requirements()
    from agentfn.api import Request
    from agentfn.functions import runtime
    from agentfn.json_logs import install_json_logging

    install_json_logging()  # the host's handler ships the lines; they are JSON
except Exception as exc:  # whatever stops the app loading is what the 503 reports
    app = unavailable_app(exc)
else:
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
        response = runtime.current().serve(api_request)
        return func.HttpResponse(
            body=response.body,
            status_code=response.status,
            headers=response.headers,
            mimetype=response.headers.get("content-type", "application/json"),
        )

    @app.queue_trigger(
        arg_name="msg", queue_name="%AGENTFN_QUEUE_NAME%", connection=QUEUE_CONNECTION
    )
    def worker(msg: func.QueueMessage) -> None:
        from agentfn.ports import QueueMessage  # pydantic: not on an HTTP cold start

        body = runtime.job_body(msg.get_body())
        attempts = int(msg.dequeue_count or 1)
        accept = getattr(runtime.current().queue, "accept_triggered", None)
        if accept is None:  # another queue adapter: the message is the job
            message: QueueMessage | None = QueueMessage(
                id=msg.id or "", body=body, attempts=attempts, receipt=""
            )
        else:  # unwraps a carried priority; re-sends a job not due yet (7-day hops)
            message = accept(
                body, msg_id=msg.id or "", attempts=attempts, pop_receipt=msg.pop_receipt or ""
            )
        if message is not None:
            runtime.correlation_of(message.body)
            runtime.handle_triggered(message)
