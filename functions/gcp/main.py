"""Google Cloud Functions (gen2) entry points (functions-framework), both HTTP functions.

``http`` serves the whole API. ``worker`` takes the push requests of the stack's push
subscription on the work topic (the envelope ``{"message": {...}, "subscription",
"deliveryAttempt"}``, with an OIDC token Cloud Run checks before the request gets here): a 2xx
answer acks the message, anything else makes Pub/Sub deliver it again after the
subscription's retry backoff, and after its dead-letter policy's ``max_delivery_attempts`` the
subscription forwards it to the dead-letter topic. The engine dead-letters a failing job itself
well before that (with its reason); the policy is the backstop for a worker that keeps
crashing. A job not yet due is nacked, or hopped before its copy runs out (see
:meth:`PubSubQueue.accept_push`); a step the engine retries is re-published due after the
engine's delay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import flask
import functions_framework

from agentfn.api import Request
from agentfn.errors import ConfigError
from agentfn.functions import runtime
from agentfn.json_logs import install_json_logging

install_json_logging()  # Cloud Logging reads JSON lines (severity, message) from stderr

if TYPE_CHECKING:  # the Pub/Sub SDK loads on the worker's first push, not on /healthz
    from agentfn.adapters.gcp.pubsub import PubSubQueue

# Raised by runtime.handle_triggered when a job must come back (one class for every platform).
StepNotSettled = runtime.StepNotSettled

NOT_DUE = 429  # any non-2xx nacks a push; this one says "later", and is not logged as an error


@functions_framework.http
def http(request: flask.Request) -> flask.Response:
    api_request = Request(
        method=request.method,
        path=request.path,
        headers=dict(request.headers.items()),
        query=request.args.to_dict(),
        body=request.get_data(cache=False),
    )
    response = runtime.current().serve(api_request)
    return flask.Response(response.body, status=response.status, headers=response.headers)


def push_queue() -> PubSubQueue:
    from agentfn.adapters.gcp.pubsub import PubSubQueue

    queue = runtime.current().queue
    if not isinstance(queue, PubSubQueue):
        raise ConfigError(
            "the Cloud Functions worker needs a pubsub:// AGENTFN_QUEUE", field="queue"
        )
    return queue


@functions_framework.http
def worker(request: flask.Request) -> flask.Response:
    queue = push_queue()
    delivery = queue.accept_push(request.get_json(silent=True))
    if delivery.job is None:
        return flask.Response(delivery.note, status=200 if delivery.ack else NOT_DUE)
    runtime.correlation_of(delivery.job.body)
    try:
        runtime.handle_triggered(delivery.job)
    except StepNotSettled as later:
        # Re-published due after the engine's delay, then acked: a retry is a hop, never a
        # redelivery that Pub/Sub's backoff (at most 600 s) would time instead.
        queue.retry(delivery.job, delay=later.retry_after or 0.0)
    return flask.Response(status=204)
