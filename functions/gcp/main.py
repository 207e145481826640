"""Google Cloud Functions entry points (functions-framework).

``http``: an HTTP function serving the whole API. ``worker``: a CloudEvent function for Pub/Sub
messages (``google.cloud.pubsub.topic.v1.messagePublished``): success acks the message, an
exception makes Pub/Sub redeliver it with its retry policy and, after the subscription's
max delivery attempts, move it to the dead-letter topic.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any

import flask
import functions_framework
from cloudevents.http.event import CloudEvent

from agentfn.api import Request
from agentfn.functions import runtime

if TYPE_CHECKING:
    from agentfn.ports import QueueMessage

# Fails an invocation so Pub/Sub redelivers the message (one class for every entry point).
StepNotSettled = runtime.StepNotSettled


@functions_framework.http
def http(request: flask.Request) -> flask.Response:
    api_request = Request(
        method=request.method,
        path=request.path,
        headers=dict(request.headers.items()),
        query=request.args.to_dict(),
        body=request.get_data(cache=False),
    )
    response = runtime.current().api.handle(api_request)
    return flask.Response(response.body, status=response.status, headers=response.headers)


def decode(event_data: dict[str, Any]) -> QueueMessage:
    from agentfn.ports import QueueMessage

    message = event_data.get("message", {})
    attributes = message.get("attributes") or {}
    return QueueMessage(
        id=str(
            attributes.get("agentfn_id")
            or message.get("messageId")
            or message.get("message_id")
            or ""
        ),
        body=runtime.job_body(base64.b64decode(message.get("data", ""))),
        attempts=int(event_data.get("deliveryAttempt") or 1),
        receipt="",  # push delivery has no ack id: the response acks
    )


@functions_framework.cloud_event
def worker(event: CloudEvent) -> None:
    data = event.data or {}
    not_before = (data.get("message", {}).get("attributes") or {}).get("agentfn_not_before")
    if not_before is not None and float(not_before) > time.time():
        # A delayed job (a wait node's timeout): push delivery has no delay, so let Pub/Sub
        # redeliver it with its retry backoff until it is due.
        raise StepNotSettled(f"job not due for {float(not_before) - time.time():.0f}s")
    message = decode(data)
    runtime.correlation_of(message.body)
    runtime.handle_triggered(message)
