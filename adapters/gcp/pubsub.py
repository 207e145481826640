"""Queue on Pub/Sub: a topic, a pull subscription, and a dead-letter topic with a subscription.

Pub/Sub has leases (ack deadlines) and delivery counts but no delayed delivery and no priority,
so this adapter maps core's Queue semantics onto it as follows:

- ``receive`` = synchronous ``Pull``; the visibility timeout is the ack deadline (whole seconds,
  at most 600). ``retry(delay)`` = ``ModifyAckDeadline(delay)`` (0 = nack now); longer delays
  republish the job with a ``not_before`` attribute.
- ``attempts`` = the subscription's ``delivery_attempt`` (it needs a dead-letter policy) plus an
  ``agentfn_attempts_before`` attribute carried when a job is republished. The adapter checks
  it itself, so a job delivered ``max_attempts`` times is dead-lettered with our reason on its
  next delivery; the subscription's native policy (``max_attempts + 1``, clamped to Pub/Sub's
  5..100) is only a backstop.
- ``send(delay)`` publishes with ``agentfn_not_before``. A receiver that pulls it early pushes it
  back with ``ModifyAckDeadline(remaining)`` and does not return it; once due it is republished
  without the marker, so the early deliveries never count as attempts. That costs one extra
  delivery and one extra publish per delayed job.
- Push delivery (the deployed worker: a push subscription posting to an HTTP function): each
  request is one delivery; ``accept_push`` turns its envelope into the job, or settles it on the
  spot. A job not yet due is nacked (a non-2xx answer), so the subscription's retry backoff
  paces it; before its copy runs out of deliveries (``max_deliveries``, the subscription's
  dead-letter policy) or of retention (``retention_s``) it is re-published with the same id,
  due time and priority and acked — a hop, which is not an attempt. A due copy that waited is
  re-published fresh, so only deliveries of a due job count. ``retry`` of a pushed job (empty
  receipt) publishes a copy due after the delay; the caller then acks. So waits of days
  (a wait node's timeout, a 30-day delay) survive Pub/Sub's 600 s backoff cap.
- Priority is carried in an attribute and honoured only within one pulled batch.
- Stale receipts: create subscriptions with exactly-once delivery (``create`` does); the
  service then rejects acks and deadline changes made with an expired ack id, which this
  adapter turns into the no-ops the Queue contract requires.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import math
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self
from urllib.parse import parse_qs

from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.pubsub_v1 import (
    DeadLetterPolicy,
    PublisherClient,
    PubsubMessage,
    ReceivedMessage,
    SubscriberClient,
    Subscription,
)

from agentfn.adapters._url import about_url, parse_url
from agentfn.adapters.gcp._errors import map_errors
from agentfn.errors import ConfigError
from agentfn.ports import DeadLetter, QueueMessage
from agentfn.queue_args import (
    check_limit,
    check_max_attempts,
    check_max_messages,
    check_priority,
    encode_body,
    seconds,
)

__all__ = ["PubSubQueue", "PushDelivery"]

log = logging.getLogger(__name__)

ATTR_ID = "agentfn_id"
ATTR_PRIORITY = "agentfn_priority"
ATTR_BEFORE = "agentfn_attempts_before"  # deliveries made before this copy was published
ATTR_NOT_BEFORE = "agentfn_not_before"  # epoch seconds; earlier deliveries are pushed back
ATTR_ATTEMPTS = "agentfn_attempts"  # on dead letters: deliveries made
ATTR_REASON = "agentfn_reason"
ATTR_FAILED_AT = "agentfn_failed_at"
NATIVE_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"  # set by Pub/Sub's own dead-lettering

MAX_DEADLINE_S = 600  # Pub/Sub's longest ack deadline
MAX_RECEIVE = 100
MAX_DELIVERIES = 100  # the most a dead-letter policy allows (max_delivery_attempts 5..100)
DEFAULT_RETENTION_S = 7 * 86_400  # a subscription's default message retention
_PUSHBACKS = 3  # early deliveries of one copy before it is refreshed (the policy's floor is 5)
_PULL_ROUNDS = 10
_DEAD_LETTER_SCAN = 1000
_ACK_BATCH = 500
_ATTR_VALUE_BYTES = 1024  # Pub/Sub's attribute value limit
_EXACTLY_ONCE = "EXACTLY_ONCE_ACKID_FAILURE"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}")
_PROJECT = re.compile(r"[a-z0-9][a-z0-9.:\-]{0,99}")
_URL_OPTIONS = {
    "subscription",
    "dead_letter",
    "dead_letter_subscription",
    "wait",
    "max_deliveries",
    "retention",
}
_FRACTION = re.compile(r"(\.\d{6})\d+")  # RFC 3339 nanoseconds; fromisoformat takes micro


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or value.startswith("goog"):
        raise ConfigError(
            f"{field} {value!r} is not a valid Pub/Sub name (3-255 of letters, digits and "
            "-_.~+%, starting with a letter, not with 'goog')",
            field=field,
        )
    return value


def _seconds(value: float) -> int:
    """Whole seconds for an ack deadline: rounded up, within Pub/Sub's 0..600."""
    return min(MAX_DEADLINE_S, max(0, math.ceil(value)))


def _float(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _int(raw: str | None) -> int:
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _clip(text: str) -> str:
    data = text.encode("utf-8")
    if len(data) <= _ATTR_VALUE_BYTES:
        return text
    return data[: _ATTR_VALUE_BYTES - 3].decode("utf-8", errors="ignore") + "..."


def _published_at(raw: object) -> float | None:
    """Epoch seconds of a push envelope's ``publishTime`` (RFC 3339), or None."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", raw)).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class PushDelivery:
    """One push request sorted out: run ``job``; or, when it is None, answer at once —
    2xx if ``ack`` (settled here: hopped, re-published, dead-lettered), else non-2xx so
    Pub/Sub delivers it again after the subscription's backoff. ``note`` says why."""

    job: QueueMessage | None
    ack: bool = True
    note: str = ""


def _client_options() -> dict[str, Any]:
    """Point the clients at ``PUBSUB_EMULATOR_HOST`` (no TLS, no credentials) when it is set."""
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if host:
        anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
        return {"client_options": {"api_endpoint": host}, "credentials": anonymous}
    return {}


class PubSubQueue:
    """Jobs published to ``topic``, received through ``subscription`` (``<topic>-agentfn``).

    Dead letters go to ``dead_letter_topic`` (``<topic>-dead-letter``) and are read back from
    ``dead_letter_subscription`` (named like that topic unless given). ``wait_s`` > 0 makes an
    empty ``receive`` wait that long for messages instead of answering at once.
    ``max_deliveries`` and ``retention_s`` are the push subscription's dead-letter policy and
    message retention, which a waiting job must hop before it exhausts. Clients are created on
    first use, so building a queue does no I/O.
    """

    def __init__(
        self,
        project: str,
        topic: str,
        subscription: str | None = None,
        *,
        max_attempts: int = 5,
        dead_letter_topic: str | None = None,
        dead_letter_subscription: str | None = None,
        wait_s: float = 0.0,
        max_deliveries: int = MAX_DELIVERIES,
        retention_s: float = DEFAULT_RETENTION_S,
        clock: Callable[[], float] = time.time,
        publisher: PublisherClient | None = None,
        subscriber: SubscriberClient | None = None,
    ) -> None:
        if not isinstance(project, str) or not _PROJECT.fullmatch(project):
            raise ConfigError(f"invalid Google Cloud project id {project!r}", field="project")
        check_max_attempts(max_attempts)
        self.project = project
        self.topic = _name(topic, "topic")
        self.subscription = _name(subscription or f"{topic}-agentfn", "subscription")
        self.dead_letter_topic = _name(
            dead_letter_topic or f"{topic}-dead-letter", "dead_letter_topic"
        )
        self.dead_letter_subscription = _name(
            dead_letter_subscription or self.dead_letter_topic, "dead_letter_subscription"
        )
        self.max_attempts = max_attempts
        self.wait_s = seconds(wait_s, "wait_s", positive=False)
        if (
            isinstance(max_deliveries, bool)
            or not isinstance(max_deliveries, int)
            or not 5 <= max_deliveries <= MAX_DELIVERIES
        ):
            raise ConfigError(
                f"max_deliveries must be an integer in 5..{MAX_DELIVERIES} (a dead-letter "
                "policy's max_delivery_attempts)",
                field="max_deliveries",
            )
        self.max_deliveries = max_deliveries
        self.retention_s = seconds(retention_s, "retention_s", positive=True)
        self.clock = clock
        self._publisher = publisher
        self._subscriber = subscriber

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``pubsub://project/topic`` with options ``subscription``, ``dead_letter``,
        ``dead_letter_subscription``, ``wait`` (s), ``max_deliveries``, ``retention`` (s)."""
        parsed = parse_url(url, "pubsub", query=True)
        topic = parsed.path.strip("/")
        if not parsed.netloc or not topic or "/" in topic:
            raise ConfigError(f"{url!r} must look like pubsub://project/topic", field="url")
        if parsed.fragment or parsed.params:
            raise ConfigError(f"{url!r}: pubsub:// URLs take no fragment", field="url")
        query = parse_qs(parsed.query, keep_blank_values=True, strict_parsing=False)
        unknown = sorted(set(query) - _URL_OPTIONS)
        if unknown:
            raise ConfigError(
                f"{url!r}: unknown option(s) {', '.join(unknown)} "
                f"(supported: {', '.join(sorted(_URL_OPTIONS))})",
                field="url",
            )
        values: dict[str, str] = {}
        for key, items in query.items():
            if len(items) != 1 or not items[0]:
                raise ConfigError(f"{url!r}: option {key!r} needs exactly one value", field="url")
            values[key] = items[0]
        kwargs: dict[str, Any] = {}
        if "wait" in values:
            wait = _float(values["wait"])
            if wait is None or wait < 0:
                raise ConfigError(f"{url!r}: wait must be a number of seconds >= 0", field="url")
            kwargs["wait_s"] = wait
        if "max_deliveries" in values:
            if not values["max_deliveries"].isdigit():
                raise ConfigError(f"{url!r}: max_deliveries must be an integer", field="url")
            kwargs["max_deliveries"] = int(values["max_deliveries"])
        if "retention" in values:
            retention = _float(values["retention"])
            if retention is None or retention <= 0:
                raise ConfigError(f"{url!r}: retention must be seconds > 0", field="url")
            kwargs["retention_s"] = retention
        if "dead_letter" in values:
            kwargs["dead_letter_topic"] = values["dead_letter"]
        if "dead_letter_subscription" in values:
            kwargs["dead_letter_subscription"] = values["dead_letter_subscription"]
        with about_url(url, ConfigError):
            return cls(parsed.netloc, topic, values.get("subscription"), **{**kwargs, **options})

    @classmethod
    def create(
        cls,
        project: str,
        topic: str,
        max_attempts: int = 5,
        *,
        ack_deadline_s: int = 30,
        **options: Any,
    ) -> Self:
        """Create (idempotently) the topics and subscriptions this queue uses; return it.

        The subscription gets exactly-once delivery (stale receipts are rejected), a
        dead-letter policy (which also makes Pub/Sub report ``delivery_attempt``) of
        ``max_attempts + 1`` deliveries clamped to 5..100, and ``ack_deadline_s`` as the lease
        a pulled message has until ``receive`` sets the caller's visibility timeout. Existing
        resources are left as they are. On Google Cloud the Pub/Sub service agent also needs
        the publisher role on the dead-letter topic and the subscriber role on the
        subscription for the native policy to forward messages.
        """
        queue = cls(project, topic, max_attempts=max_attempts, **options)
        pub, sub = queue._pub(), queue._sub()
        for name in (queue.topic, queue.dead_letter_topic):
            with contextlib.suppress(gexc.AlreadyExists):
                pub.create_topic(name=pub.topic_path(project, name))
        subscriptions = [
            Subscription(
                name=queue._dead_sub_path,
                topic=queue._dead_topic_path,
                ack_deadline_seconds=60,
                message_retention_duration=timedelta(days=7),
            ),
            Subscription(
                name=queue._sub_path,
                topic=queue._topic_path,
                ack_deadline_seconds=ack_deadline_s,
                enable_exactly_once_delivery=True,
                dead_letter_policy=DeadLetterPolicy(
                    dead_letter_topic=queue._dead_topic_path,
                    max_delivery_attempts=min(100, max(5, max_attempts + 1)),
                ),
            ),
        ]
        for subscription in subscriptions:
            with contextlib.suppress(gexc.AlreadyExists):
                sub.create_subscription(request=subscription)
        return queue

    def __repr__(self) -> str:
        return (
            f"PubSubQueue(project={self.project!r}, topic={self.topic!r}, "
            f"subscription={self.subscription!r}, max_attempts={self.max_attempts})"
        )

    # Pickling drops the gRPC clients (a child process builds its own).
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_publisher": None, "_subscriber": None}

    # ------------------------------------------------------------------ protocol

    def send(self, body: dict[str, Any], *, delay: float = 0.0, priority: int = 0) -> str:
        data = encode_body(body).encode("utf-8")
        delay_s = seconds(delay, "delay", positive=False)
        check_priority(priority)
        msg_id = uuid.uuid4().hex
        attributes = {ATTR_ID: msg_id}
        if priority:
            attributes[ATTR_PRIORITY] = str(priority)
        if delay_s > 0:
            attributes[ATTR_NOT_BEFORE] = repr(self.clock() + delay_s)
        self._publish(self._topic_path, data, attributes)
        return msg_id

    def receive(
        self, max_messages: int = 1, *, visibility_timeout: float = 30.0
    ) -> list[QueueMessage]:
        check_max_messages(max_messages, MAX_RECEIVE)
        deadline = max(
            1, _seconds(seconds(visibility_timeout, "visibility_timeout", positive=True))
        )
        out: list[QueueMessage] = []
        for _ in range(_PULL_ROUNDS):
            received = self._pull(self._sub_path, max_messages - len(out))
            if not received:
                break
            now = self.clock()
            batch = [m for m in (self._triage(rm, now) for rm in received) if m is not None]
            if batch:
                stale = self._settle(self._sub_path, [m.receipt for m in batch], deadline)
                out.extend(m for m in batch if m.receipt not in stale)
            # Stop when the batch was all jobs: only diverted messages leave slots to refill.
            if len(out) >= max_messages or len(batch) == len(received):
                break
        out.sort(key=lambda m: -m.priority)  # stable: pull order within one priority
        return out

    def ack(self, message: QueueMessage) -> None:
        if message.receipt:
            self._settle(self._sub_path, [message.receipt], None)

    def retry(self, message: QueueMessage, *, delay: float = 0.0) -> None:
        """Visible again after ``delay``; a stale receipt changes nothing.

        A pushed job (empty receipt) is re-published due after ``delay``, carrying the
        attempts made so far; the caller then acks the push (answers 2xx).
        """
        delay_s = seconds(delay, "delay", positive=False)
        if not message.receipt:
            attributes = self._job_attributes(message)
            attributes[ATTR_BEFORE] = str(message.attempts)
            if delay_s > 0:
                attributes[ATTR_NOT_BEFORE] = repr(self.clock() + delay_s)
            self._publish(self._topic_path, self._encode(message.body), attributes)
            return
        if delay_s <= MAX_DEADLINE_S:
            self._settle(self._sub_path, [message.receipt], _seconds(delay_s))
            return
        if not self._still_ours(message.receipt):
            return
        attributes = self._job_attributes(message)
        attributes[ATTR_BEFORE] = str(message.attempts)
        attributes[ATTR_NOT_BEFORE] = repr(self.clock() + delay_s)
        self._publish(self._topic_path, self._encode(message.body), attributes)
        self._settle(self._sub_path, [message.receipt], None)

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        """Publish to the dead-letter topic with ``reason``, then ack.

        A message pushed by a trigger (empty receipt) is only published: the trigger's success
        acks it. A stale receipt changes nothing.
        """
        if message.receipt and not self._still_ours(message.receipt):
            return
        attributes = self._job_attributes(message)
        self._to_dead_letters(self._encode(message.body), attributes, message.attempts, reason)
        if message.receipt:
            self._settle(self._sub_path, [message.receipt], None)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Peek at the dead-letter subscription, newest first.

        Reads up to 1000 messages and releases them again (ack deadline 0), so they stay
        there; concurrent readers each see only the messages the other is not holding.
        """
        check_limit(limit)
        held: list[ReceivedMessage] = []
        try:
            while len(held) < _DEAD_LETTER_SCAN:
                got = self._pull(
                    self._dead_sub_path, min(MAX_RECEIVE, _DEAD_LETTER_SCAN - len(held))
                )
                if not got:
                    break
                held.extend(got)
            letters = [self._dead_letter_of(rm) for rm in held]
        finally:
            self._settle(self._dead_sub_path, [rm.ack_id for rm in held], 0)
        letters.sort(key=lambda d: d.failed_at, reverse=True)
        return letters[:limit]

    def accept_push(self, envelope: object) -> PushDelivery:
        """Sort out one push request (``{"message": {...}, "subscription", "deliveryAttempt"}``).

        Returns the job to run, or how to answer when the delivery was settled here (see the
        module docstring: not due = nack, a hop or a fresh copy = ack, malformed = dead letter).
        """
        if not isinstance(envelope, Mapping) or not isinstance(
            message := envelope.get("message"), Mapping
        ):
            return PushDelivery(None, ack=False, note="not a Pub/Sub push envelope")
        raw_attributes = message.get("attributes") or {}
        attributes = (
            {str(k): str(v) for k, v in raw_attributes.items()}
            if isinstance(raw_attributes, Mapping)
            else {}
        )
        if not attributes.get(ATTR_ID):
            attributes[ATTR_ID] = str(message.get("messageId") or message.get("message_id") or "")
        delivery = max(1, _int(str(envelope.get("deliveryAttempt") or 1)))
        before = _int(attributes.get(ATTR_BEFORE))
        try:
            data = base64.b64decode(str(message.get("data") or ""), validate=True)
        except (binascii.Error, ValueError):
            raw = str(message.get("data")).encode("utf-8", errors="replace")
            self._to_dead_letters(raw, attributes, before, "malformed push: data is not base64")
            return PushDelivery(None, note="dead-lettered: data is not base64")
        now = self.clock()
        not_before = _float(attributes.get(ATTR_NOT_BEFORE))
        if not_before is not None:
            remaining = not_before - now
            if remaining > 0:
                published = _published_at(message.get("publishTime") or message.get("publish_time"))
                age = now - published if published is not None else 0.0
                margin = min(2 * MAX_DEADLINE_S, self.retention_s / 2)
                if delivery < self.max_deliveries - 1 and age < self.retention_s - margin:
                    return PushDelivery(None, ack=False, note=f"not due for {remaining:.0f}s")
                self._publish(self._topic_path, data, attributes)
                return PushDelivery(None, note=f"hopped: due in {remaining:.0f}s")
            if delivery > 1:
                # Due after waiting: a fresh copy, whose deliveries are the job's attempts.
                del attributes[ATTR_NOT_BEFORE]
                self._publish(self._topic_path, data, attributes)
                return PushDelivery(None, note="due: re-published for its first attempt")
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._to_dead_letters(data, attributes, before, "malformed job: not a JSON object")
            return PushDelivery(None, note="dead-lettered: not a JSON object")
        attempts = before + delivery
        if attempts > self.max_attempts:
            reason = f"max attempts ({self.max_attempts}) exceeded"
            self._to_dead_letters(data, attributes, attempts - 1, reason)
            return PushDelivery(None, note="dead-lettered: " + reason)
        job = QueueMessage(
            id=attributes[ATTR_ID],
            body=body,
            attempts=attempts,
            receipt="",  # a push has no ack id: the answer settles it
            priority=_int(attributes.get(ATTR_PRIORITY)),
        )
        return PushDelivery(job)

    # ------------------------------------------------------------------ internals

    @property
    def _topic_path(self) -> str:
        return f"projects/{self.project}/topics/{self.topic}"

    @property
    def _sub_path(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.subscription}"

    @property
    def _dead_topic_path(self) -> str:
        return f"projects/{self.project}/topics/{self.dead_letter_topic}"

    @property
    def _dead_sub_path(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.dead_letter_subscription}"

    def _pub(self) -> PublisherClient:
        if self._publisher is None:
            self._publisher = PublisherClient(**_client_options())
        return self._publisher

    def _sub(self) -> SubscriberClient:
        if self._subscriber is None:
            self._subscriber = SubscriberClient(**_client_options())
        return self._subscriber

    @staticmethod
    def _encode(body: dict[str, Any]) -> bytes:
        return json.dumps(body, separators=(",", ":")).encode("utf-8")

    @staticmethod
    def _job_attributes(message: QueueMessage) -> dict[str, str]:
        attributes = {ATTR_ID: message.id}
        if message.priority:
            attributes[ATTR_PRIORITY] = str(message.priority)
        return attributes

    def _publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> None:
        missing = ConfigError(
            f"Pub/Sub topic {topic!r} does not exist (PubSubQueue.create makes it)", field="queue"
        )
        with map_errors({gexc.NotFound: missing}):
            self._pub().publish(
                topic=topic, messages=[PubsubMessage(data=data, attributes=attributes)]
            )

    def _pull(self, subscription: str, max_messages: int) -> list[ReceivedMessage]:
        sub = self._sub()
        missing = ConfigError(
            f"Pub/Sub subscription {subscription!r} does not exist (PubSubQueue.create makes it)",
            field="queue",
        )
        # An empty long poll ends in DeadlineExceeded: no messages.
        response = None
        with map_errors({gexc.DeadlineExceeded: None, gexc.NotFound: missing}):
            if self.wait_s > 0:
                response = sub.pull(
                    subscription=subscription,
                    max_messages=max_messages,
                    timeout=self.wait_s,
                    retry=None,
                )
            else:
                # return_immediately: a polling receive must not block on an empty queue, and a
                # client-side deadline could abandon a response whose messages the service has
                # already leased (their next delivery would count as an attempt). The SDK warns
                # on every such call; the filter is scoped to this call and to that warning.
                with warnings.catch_warnings():
                    warnings.filterwarnings(
                        "ignore", message="The return_immediately flag", category=DeprecationWarning
                    )
                    response = sub.pull(
                        request={
                            "subscription": subscription,
                            "max_messages": max_messages,
                            "return_immediately": True,
                        }
                    )
        return list(response.received_messages) if response is not None else []

    def _settle(self, subscription: str, ack_ids: Sequence[str], deadline: int | None) -> set[str]:
        """Ack (``deadline`` None) or set the ack deadline; return the ack ids found stale.

        With exactly-once delivery Pub/Sub names each failed ack id: permanent failures mean
        the lease is gone (a stale receipt, a no-op for us); transient ones are retried.
        """
        stale: set[str] = set()
        for start in range(0, len(ack_ids), _ACK_BATCH):
            pending = list(ack_ids[start : start + _ACK_BATCH])
            pause = 0.05
            for attempt in range(6):
                try:
                    self._settle_once(subscription, pending, deadline)
                    break
                except gexc.GoogleAPICallError as exc:
                    if getattr(exc, "reason", None) != _EXACTLY_ONCE or attempt == 5:
                        raise
                    failures: dict[str, str] = dict(getattr(exc, "metadata", None) or {})
                    stale.update(a for a in pending if failures.get(a, "").startswith("PERMANENT"))
                    pending = [a for a in pending if failures.get(a, "").startswith("TRANSIENT")]
                    if not pending:
                        break
                    time.sleep(pause)
                    pause *= 2
        return stale

    def _settle_once(self, subscription: str, ack_ids: list[str], deadline: int | None) -> None:
        if deadline is None:
            self._sub().acknowledge(subscription=subscription, ack_ids=ack_ids)
        else:
            self._sub().modify_ack_deadline(
                subscription=subscription, ack_ids=ack_ids, ack_deadline_seconds=deadline
            )

    def _still_ours(self, ack_id: str) -> bool:
        """True while our lease holds (always, on subscriptions without exactly-once)."""
        return ack_id not in self._settle(self._sub_path, [ack_id], 60)

    def _triage(self, rm: ReceivedMessage, now: float) -> QueueMessage | None:
        """The job to hand out, or None after pushing back / republishing / dead-lettering."""
        msg = rm.message
        attributes = dict(msg.attributes)
        attributes.setdefault(ATTR_ID, msg.message_id)  # kept by copies and dead letters
        not_before = _float(attributes.get(ATTR_NOT_BEFORE))
        if not_before is not None:
            remaining = not_before - now
            if remaining > 0 and rm.delivery_attempt < _PUSHBACKS:
                self._settle(self._sub_path, [rm.ack_id], max(1, _seconds(remaining)))
                return None
            # Due (or pushed back often enough to near the dead-letter policy): a fresh copy.
            # Once due it loses the marker, so the copy's deliveries are the job's attempts.
            if remaining <= 0:
                del attributes[ATTR_NOT_BEFORE]
            self._publish(self._topic_path, msg.data, attributes)
            self._settle(self._sub_path, [rm.ack_id], None)
            return None
        before = _int(attributes.get(ATTR_BEFORE))
        try:
            body = json.loads(msg.data)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._to_dead_letters(msg.data, attributes, before, "malformed job: not a JSON object")
            self._settle(self._sub_path, [rm.ack_id], None)
            return None
        # delivery_attempt is 0 on subscriptions without a dead-letter policy: count 1 then.
        attempts = before + max(1, rm.delivery_attempt)
        if attempts > self.max_attempts:
            reason = f"max attempts ({self.max_attempts}) exceeded"
            self._to_dead_letters(msg.data, attributes, attempts - 1, reason)
            self._settle(self._sub_path, [rm.ack_id], None)
            return None
        return QueueMessage(
            id=attributes[ATTR_ID],
            body=body,
            attempts=attempts,
            receipt=rm.ack_id,
            priority=_int(attributes.get(ATTR_PRIORITY)),
        )

    def _to_dead_letters(
        self, data: bytes, attributes: dict[str, str], attempts: int, reason: str
    ) -> None:
        letter = {k: v for k, v in attributes.items() if k not in (ATTR_NOT_BEFORE, ATTR_BEFORE)}
        letter[ATTR_ATTEMPTS] = str(attempts)
        letter[ATTR_REASON] = _clip(str(reason))
        letter[ATTR_FAILED_AT] = repr(self.clock())
        self._publish(self._dead_topic_path, data, letter)
        log.info(
            "job %s dead-lettered after %d attempt(s)",
            letter.get(ATTR_ID, "?"),
            attempts,
            extra={"queue": self.topic},
        )

    @staticmethod
    def _dead_letter_of(rm: ReceivedMessage) -> DeadLetter:
        msg = rm.message
        attributes = dict(msg.attributes)
        text = msg.data.decode("utf-8", errors="replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = {"raw": text}
        if not isinstance(body, dict):
            body = {"raw": body}
        failed_at = _float(attributes.get(ATTR_FAILED_AT))
        if failed_at is None:
            failed_at = float(msg.publish_time.timestamp())
        if ATTR_REASON in attributes:
            attempts = _int(attributes.get(ATTR_ATTEMPTS))
            reason = attributes[ATTR_REASON]
        elif NATIVE_COUNT in attributes:
            # Forwarded by the subscription's own dead-letter policy.
            count = _int(attributes[NATIVE_COUNT])
            attempts = _int(attributes.get(ATTR_BEFORE)) + count
            reason = f"max attempts exceeded: delivered {count} times (Pub/Sub dead-letter policy)"
        else:
            attempts, reason = 0, "published to the dead-letter topic"
        return DeadLetter(
            id=attributes.get(ATTR_ID) or msg.message_id,
            body=body,
            attempts=attempts,
            reason=reason,
            failed_at=failed_at,
        )
