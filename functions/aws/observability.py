"""Powertools Logger, Metrics (EMF) and Tracer shared by the AWS handlers.

The Tracer pulls in the X-Ray SDK (hundreds of milliseconds of imports), so it is created only
when the function has tracing on (``POWERTOOLS_TRACE_DISABLED`` is not true).
"""

from __future__ import annotations

import os
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "agentfn")

logger = Logger(service=SERVICE)
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "agentfn"), service=SERVICE
)


@cache
def tracer() -> Tracer | None:
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true"):
        return None
    return Tracer(service=SERVICE)


def annotate(correlation_id: str) -> None:
    """Carry the correlation id into logs and, when tracing, the X-Ray segment."""
    logger.append_keys(correlation_id=correlation_id)
    active = tracer()
    if active is not None:
        active.put_annotation("correlation_id", correlation_id)
