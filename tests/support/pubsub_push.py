"""Pub/Sub's push delivery played over the emulator: pull, POST the envelope, settle by status.

The stack's worker sits behind a push subscription. The emulator's push delivery cannot reach
a Flask test client or a clean interpreter, so tests take the subscription's part: pull a
message, hand its push envelope (the JSON body Pub/Sub POSTs) to the worker, and ack it on a
2xx or nack it (deliver again now) otherwise — what Pub/Sub does, minus the backoff, which a
test moves its clock past instead.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from google.pubsub_v1 import ReceivedMessage, SubscriberClient

__all__ = ["PushSubscription", "envelope"]

ACKED = frozenset({102, 200, 201, 202, 204})  # the statuses Pub/Sub takes as an ack


def envelope(
    received: ReceivedMessage, subscription: str, published_at: float | None = None
) -> dict[str, Any]:
    """The body of Pub/Sub's push request for one delivery (the wrapped format).

    ``published_at`` (epoch seconds) replaces the emulator's publish time, for tests on a
    fake clock."""
    message = received.message
    publish_time = (
        datetime.fromtimestamp(published_at, UTC).isoformat().replace("+00:00", "Z")
        if published_at is not None
        else message.publish_time.rfc3339()
    )
    return {
        "message": {
            "data": base64.b64encode(message.data).decode(),
            "attributes": dict(message.attributes),
            "messageId": message.message_id,
            "publishTime": publish_time,
        },
        "subscription": subscription,
        "deliveryAttempt": received.delivery_attempt,
    }


class PushSubscription:
    """One subscription of the emulator, delivered as pushes to ``handler(envelope) -> status``.

    With ``clock``, a message's publish time is the clock's time when it was first pulled,
    so a test that moves a fake clock sees messages age (and copies start young) on it.
    """

    def __init__(
        self,
        subscription_path: str,
        subscriber: SubscriberClient | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.path = subscription_path
        self.subscriber = subscriber or SubscriberClient()
        self.clock = clock
        self._first_seen: dict[str, float] = {}

    def push(self, handler: Callable[[dict[str, Any]], int], max_messages: int = 10) -> list[int]:
        """Deliver what one pull returns; the statuses the handler answered, in order."""
        response = self.subscriber.pull(
            request={"subscription": self.path, "max_messages": max_messages}, timeout=5
        )
        statuses = []
        for received in response.received_messages:
            published = None
            if self.clock is not None:
                published = self._first_seen.setdefault(received.message.message_id, self.clock())
            status = handler(envelope(received, self.path, published))
            statuses.append(status)
            if status in ACKED:
                self.subscriber.acknowledge(subscription=self.path, ack_ids=[received.ack_id])
            else:
                self.subscriber.modify_ack_deadline(
                    subscription=self.path, ack_ids=[received.ack_id], ack_deadline_seconds=0
                )
        return statuses
