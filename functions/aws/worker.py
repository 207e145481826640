"""AWS Lambda queue entry point: SQS batches via Powertools' BatchProcessor.

Each record is one job. A record whose step must be retried is reported in
``batchItemFailures``, so only it is redelivered, never the whole batch; a job that exhausted
its attempts is moved to the dead-letter queue by the engine and reported as a success.

A failed record stays invisible for the queue's whole visibility timeout unless told
otherwise, so the delay the engine asks for (a retry's backoff, another worker's lease) is set
on the record's receipt handle (ChangeMessageVisibility) before it is reported failed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentfn.functions import runtime
from agentfn.functions.aws.observability import EmfObserver, annotate, logger, metrics
from agentfn.ports import QueueMessage

# With one record per invocation (the stack's batch_size), "every record failed" is the normal
# shape of a retry: report it in batchItemFailures instead of failing the invocation (an
# invocation error would log a traceback and count as a function error for each retry).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
runtime.OBSERVERS.append(EmfObserver)


def report(outcome: str, job: dict[str, Any]) -> None:
    metrics.add_metric(name=f"step_{outcome}", unit="Count", value=1)
    logger.info("job handled", extra={"outcome": outcome, "step": job.get("step")})


def record_handler(record: SQSRecord) -> str:
    body = runtime.job_body(record.body)
    annotate(runtime.correlation_of(body))
    message = QueueMessage(
        id=record.message_id,
        body=body,
        attempts=int(record.attributes.approximate_receive_count or 1),
        receipt=record.receipt_handle,
    )
    postpone = getattr(runtime.current().queue, "postpone_if_early", None)
    if postpone is not None and postpone(message, record.message_attributes or {}):
        return "postponed"  # a delay longer than SQS's 15 minutes: re-sent for later
    try:
        return runtime.handle_triggered(message, report=report)
    except runtime.StepNotSettled as exc:
        if exc.retry_after is not None:
            runtime.current().queue.retry(message, delay=exc.retry_after)
        raise


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
