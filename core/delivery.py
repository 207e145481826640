"""How a delivered job is settled: by the worker itself, or by the platform that triggered it.

A polling worker acks, retries and dead-letters through the queue. A queue-triggered function
(Lambda + SQS, Cloud Functions + Pub/Sub, Azure Functions + Storage Queue) must not: its
platform deletes the message when the function succeeds and redelivers it when the function
reports failure. :class:`TriggerAcker` adapts the engine to that contract.
"""

from __future__ import annotations

from typing import Protocol

from agentfn.ports import Queue, QueueMessage


class Acker(Protocol):
    def ack(self, message: QueueMessage) -> None: ...

    def retry(self, message: QueueMessage, *, delay: float = 0.0) -> None: ...

    def dead_letter(self, message: QueueMessage, reason: str) -> None: ...

    def extend(self, message: QueueMessage, *, visibility_timeout: float) -> None: ...


class TriggerAcker:
    """Settles one triggered message: success = the platform deletes it; failure = redelivery."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.failed = False
        self.retry_after: float | None = None

    def ack(self, message: QueueMessage) -> None:
        """Nothing to do: returning success makes the platform delete the message."""

    def retry(self, message: QueueMessage, *, delay: float = 0.0) -> None:
        # Report this message as failed and keep the delay the engine asked for: the handler
        # hands both to its platform (Lambda sets the record's visibility to the delay before
        # reporting the item failure; Pub/Sub push re-publishes it due after the delay).
        self.failed = True
        self.retry_after = delay

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        """Move it to the dead-letter queue ourselves, with the reason; then succeed."""
        self.queue.dead_letter(message, reason)

    def extend(self, message: QueueMessage, *, visibility_timeout: float) -> None:
        """Nothing to do: the platform keeps the message hidden while the function runs (the
        stacks set the queue's visibility timeout above the function's timeout)."""
