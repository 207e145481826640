"""AWS Lambda HTTP entry point: API Gateway HTTP API (v2) and Lambda function URL events.

Powertools' APIGatewayHttpResolver parses the event; one catch-all route hands every request
to core's API, so routing, auth, validation and errors are the same as on every other cloud.
"""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentfn.api import Request
from agentfn.functions import runtime
from agentfn.functions.aws.observability import annotate, logger, metrics

app = APIGatewayHttpResolver()
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@app.route(".+", method=METHODS)
def any_route() -> Response[str]:
    event = app.current_event
    raw = event.body or ""
    body = base64.b64decode(raw) if event.is_base64_encoded else raw.encode()
    request = Request(
        method=event.request_context.http.method,
        path=event.raw_path,
        headers=dict(event.headers or {}),
        query=dict(event.query_string_parameters or {}),
        body=body,
    )
    response = runtime.current().serve(request)
    annotate(response.headers.get("x-correlation-id", ""))
    metrics.add_metric(name=f"http_{response.status // 100}xx", unit="Count", value=1)
    return Response(
        status_code=response.status,
        body=response.body.decode(),
        headers=response.headers,
    )


@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with logger.append_context_keys(request_path=event.get("rawPath", "")):
        return app.resolve(event, context)
