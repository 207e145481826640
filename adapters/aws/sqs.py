"""Queue on Amazon SQS (standard queues) with SQS's own redrive to a dead-letter queue.

Mapping of the port onto SQS:

- ``attempts`` is SQS's ``ApproximateReceiveCount``; the queue's ``RedrivePolicy``
  (``maxReceiveCount = max_attempts``) moves a job that was delivered ``max_attempts`` times to
  the dead-letter queue. As a second line, ``receive`` dead-letters any job received more often
  than ``max_attempts`` itself (a queue without a matching policy still keeps the contract).
- ``delay`` is ``DelaySeconds`` (whole seconds, rounded up). SQS caps it at 900 s: a longer
  delay is sent as 900 s with the due time in a message attribute, and ``receive`` re-sends a
  job that surfaces before it is due (a hop) until it is; hops are not deliveries.
- ``visibility_timeout`` and ``retry(delay)`` are visibility timeouts (whole seconds, rounded
  up, at most 12 h as SQS allows).
- A receipt is honoured only while the visibility timeout it was issued with lasts. SQS's own
  answer to a stale receipt handle is unspecified ("may or may not" act), so ``ack``, ``retry``
  and ``dead_letter`` with an expired receipt are no-ops here, deterministically; the job is
  simply delivered again (at-least-once).
- ``priority`` has no SQS counterpart: it travels as a message attribute and comes back on the
  message, and one ``receive`` returns its batch highest priority first, but jobs are not
  received in priority order across batches.
- ``dead_letter`` sends the job to the dead-letter queue with the reason, attempts and time as
  message attributes, then deletes it. ``dead_letters`` peeks at the dead-letter queue (hides
  what it reads for a moment, then makes it visible again).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import parse_qs

from botocore.exceptions import ClientError

from agentfn.adapters._errors import Outcome
from agentfn.adapters._url import about_url, parse_url
from agentfn.adapters.aws._client import make_client
from agentfn.adapters.aws._errors import (
    BAD_MESSAGE,
    MISSING_QUEUE,
    QUEUE_EXISTS,
    STALE_RECEIPT,
    Key,
    error_code,
    map_errors,
)
from agentfn.errors import ConfigError, UserError
from agentfn.ports import DeadLetter, QueueMessage
from agentfn.queue_args import (
    check_limit,
    check_max_attempts,
    check_max_messages,
    check_priority,
    encode_body,
    seconds,
)

__all__ = ["SqsQueue"]

log = logging.getLogger(__name__)

MAX_DELAY_S = 900  # SQS DelaySeconds limit
MAX_VISIBILITY_S = 43_200  # SQS visibility timeout limit (12 h)
DLQ_RETENTION_S = 1_209_600  # 14 days, the longest SQS keeps a message
_MAX_RECEIVE = 100  # per call of receive(), as SqliteQueue
_SQS_BATCH = 10  # per ReceiveMessage / ...Batch request
_PEEK_HIDE_S = 60  # how long dead_letters() hides what it has read while it scans
_SCAN_MAX = 1000  # dead letters read per dead_letters() call, at most
_RECEIPT_MARGIN_S = 0.5  # a receipt is stale this long before its visibility timeout ends
_MAX_REASON = 8192  # characters of a dead-letter reason kept

# Message attributes (names: letters, digits, '-', '_', '.'; never "AWS." or "Amazon.").
A_PRIORITY = "agentfn-priority"
A_DUE = "agentfn-due"  # epoch seconds a long-delayed job is due
A_ID = "agentfn-id"  # the job id when the SQS message is a re-send (hop, dead letter)
A_REASON = "agentfn-reason"
A_ATTEMPTS = "agentfn-attempts"
A_FAILED_AT = "agentfn-failed-at"
A_QUEUE = "agentfn-queue"  # the source queue of a dead letter (a DLQ may be shared)

_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
# Characters SQS accepts in bodies and string attributes; anything else is replaced.
_INVALID_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _whole_seconds(seconds: float) -> int:
    """SQS counts whole seconds: round up, so a job is never visible earlier than asked."""
    return math.ceil(seconds - 1e-9)


def _attr(value: str | int | float, kind: str = "String") -> dict[str, str]:
    return {"DataType": kind, "StringValue": str(value)}


def _read_attrs(raw: Mapping[str, Any] | None) -> dict[str, str]:
    """String values of message attributes, from boto3 (StringValue) or Lambda (stringValue)."""
    out: dict[str, str] = {}
    for name, value in (raw or {}).items():
        if isinstance(value, Mapping):
            text = value.get("StringValue", value.get("stringValue"))
            if isinstance(text, str):
                out[name] = text
    return out


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _int(text: str | None, default: int) -> int:
    value = _float(text)
    return int(value) if value is not None and math.isfinite(value) else default


def _body(text: str) -> dict[str, Any]:
    """Bodies are JSON objects; anything else is wrapped so the engine can dead-letter it."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"raw": value}


def _split_receipt(receipt: str) -> tuple[float | None, str]:
    """Our receipts are ``<deadline>|<ReceiptHandle>``; a bare handle (from a Lambda event,
    whose platform tracks the deadline) has no deadline. SQS handles never contain ``|``."""
    head, sep, handle = receipt.partition("|")
    deadline = _float(head) if sep else None
    return (deadline, handle) if deadline is not None else (None, receipt)


@dataclass(frozen=True)
class _Resolved:
    url: str
    arn: str
    dlq_url: str | None
    max_receive_count: int | None


class SqsQueue:
    """At-least-once job queue on one SQS standard queue and its dead-letter queue.

    ``queue`` and ``dead_letter_queue`` are queue names or queue URLs. Without
    ``dead_letter_queue``, the queue's ``RedrivePolicy`` names it. Nothing is called on AWS
    until first use. ``wait_time_s`` > 0 turns on long polling (up to 20 s): on real SQS short
    polls sample a subset of servers and may come back empty while jobs wait.
    """

    def __init__(
        self,
        queue: str,
        *,
        max_attempts: int = 5,
        dead_letter_queue: str | None = None,
        client: Any = None,
        wait_time_s: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(queue, str) or not queue:
            raise ConfigError("queue must be an SQS queue name or URL", field="queue")
        _check_queue_ref(queue, "queue")
        if dead_letter_queue is not None:
            _check_queue_ref(dead_letter_queue, "dead_letter_queue")
        check_max_attempts(max_attempts)
        if isinstance(wait_time_s, bool) or not isinstance(wait_time_s, int):
            raise ConfigError("wait_time_s must be an integer in 0..20", field="wait_time_s")
        if not 0 <= wait_time_s <= 20:
            raise ConfigError("wait_time_s must be an integer in 0..20", field="wait_time_s")
        self.queue = queue
        self.dead_letter_queue = dead_letter_queue
        self.max_attempts = max_attempts
        self.wait_time_s = wait_time_s
        self.clock = clock
        self._own_client = client is None
        self._client = client if client is not None else make_client("sqs")
        self._resolved: _Resolved | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``sqs://queue-name`` with optional ``?dlq=name`` and ``?wait=seconds``."""
        parsed = parse_url(url, "sqs", article="an", query=True)
        name = parsed.netloc
        if not name or parsed.path not in ("", "/") or parsed.fragment or parsed.params:
            raise ConfigError(f"{url!r} must be sqs://queue-name[?dlq=name&wait=N]", field="url")
        try:
            query = parse_qs(
                parsed.query, keep_blank_values=True, strict_parsing=bool(parsed.query)
            )
        except ValueError:
            raise ConfigError(f"{url!r}: malformed query string", field="url") from None
        unknown = sorted(set(query) - {"dlq", "wait"})
        if unknown:
            raise ConfigError(f"{url!r}: unknown query parameter(s) {unknown}", field="url")
        if any(len(v) != 1 or not v[0] for v in query.values()):
            raise ConfigError(f"{url!r}: each query parameter needs one value", field="url")
        if "dlq" in query:
            options.setdefault("dead_letter_queue", query["dlq"][0])
        if "wait" in query:
            wait = query["wait"][0]
            if not wait.isdigit() or int(wait) > 20:
                raise ConfigError(f"{url!r}: wait must be whole seconds 0..20", field="url")
            options.setdefault("wait_time_s", int(wait))
        with about_url(url, ConfigError):
            return cls(name, **options)

    @classmethod
    def create(
        cls, name: str, max_attempts: int = 5, *, client: Any = None, **options: Any
    ) -> Self:
        """Create (or update) ``name`` and ``name-dlq`` with a redrive policy; return the queue.

        The dead-letter queue keeps messages 14 days; the work queue redrives a job to it once
        it was received ``max_attempts`` times. Safe to call again: existing queues are reused
        and their redrive policy set to ``max_attempts``.
        """
        _check_queue_ref(name, "queue")
        if name.startswith(("https://", "http://")) or len(name) > 76:
            raise ConfigError(
                f"create() takes a queue name of at most 76 characters (it adds '-dlq'), "
                f"got {name!r}",
                field="queue",
            )
        check_max_attempts(max_attempts)
        sqs = client if client is not None else make_client("sqs")
        retention = {"MessageRetentionPeriod": str(DLQ_RETENTION_S)}
        dlq_url = _create_or_update(sqs, f"{name}-dlq", retention)
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_attempts)}
        url = _create_or_update(sqs, name, {"RedrivePolicy": json.dumps(policy)})
        queue = cls(
            url, max_attempts=max_attempts, dead_letter_queue=dlq_url, client=sqs, **options
        )
        queue._own_client = client is None  # ours: a pickled copy may build its own
        return queue

    def delete_queues(self) -> None:
        """Delete the queue and its dead-letter queue (tests and teardown)."""
        resolved = self._resolve()
        for url in (resolved.url, resolved.dlq_url):
            if url is None:
                continue
            with map_errors({MISSING_QUEUE: None}):
                self._client.delete_queue(QueueUrl=url)

    def __repr__(self) -> str:
        return (
            f"SqsQueue(queue={self.queue!r}, dead_letter_queue={self.dead_letter_queue!r}, "
            f"max_attempts={self.max_attempts})"
        )

    # A client cannot be pickled: a copy builds its own from the environment.
    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_client", "_lock")}
        state["_client"] = None if self._own_client else self._client
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._client is None:
            self._client = make_client("sqs")
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ protocol

    def send(self, body: dict[str, Any], *, delay: float = 0.0, priority: int = 0) -> str:
        # ASCII-only JSON: every character is one SQS accepts in a message body.
        encoded = encode_body(body)
        delay_s = seconds(delay, "delay", positive=False)
        check_priority(priority)
        attrs: dict[str, dict[str, str]] = {}
        if priority:
            attrs[A_PRIORITY] = _attr(priority, "Number")
        if delay_s > MAX_DELAY_S:
            attrs[A_DUE] = _attr(f"{self.clock() + delay_s:.3f}", "Number")
        return self._send(self._resolve().url, encoded, _whole_seconds(delay_s), attrs)

    def receive(
        self, max_messages: int = 1, *, visibility_timeout: float = 30.0
    ) -> list[QueueMessage]:
        check_max_messages(max_messages, _MAX_RECEIVE)
        timeout = seconds(visibility_timeout, "visibility_timeout", positive=True)
        hide_s = min(_whole_seconds(timeout), MAX_VISIBILITY_S)
        url = self._resolve().url
        out: list[QueueMessage] = []
        while len(out) < max_messages:
            started = self.clock()
            with map_errors(self._errors()):
                response = self._client.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=min(_SQS_BATCH, max_messages - len(out)),
                    VisibilityTimeout=hide_s,
                    WaitTimeSeconds=self.wait_time_s,
                    MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                    MessageAttributeNames=["All"],
                )
            raw = response.get("Messages", [])
            if not raw:
                break
            deadline = started + hide_s
            for item in raw:
                message = self._accept(item, deadline)
                if message is not None:
                    out.append(message)
        # Best effort only (see module docstring): within what one call got, priority first.
        out.sort(key=lambda m: -m.priority)
        return out

    def ack(self, message: QueueMessage) -> None:
        handle = self._live_handle(message)
        if handle is None:
            return
        with map_errors(self._errors(stale=True)):
            self._client.delete_message(QueueUrl=self._resolve().url, ReceiptHandle=handle)

    def retry(self, message: QueueMessage, *, delay: float = 0.0) -> None:
        """Make the job visible again after ``delay`` (rounded up; at most 12 h)."""
        delay_s = seconds(delay, "delay", positive=False)
        handle = self._live_handle(message)
        if handle is None:
            return
        with map_errors(self._errors(stale=True)):
            self._client.change_message_visibility(
                QueueUrl=self._resolve().url,
                ReceiptHandle=handle,
                VisibilityTimeout=min(_whole_seconds(delay_s), MAX_VISIBILITY_S),
            )

    def extend(self, message: QueueMessage, *, visibility_timeout: float) -> None:
        """Keep the job hidden ``visibility_timeout`` more seconds (at most 12 h). The receipt
        carries its deadline, so ``message.receipt`` is replaced with the new one."""
        timeout = seconds(visibility_timeout, "visibility_timeout", positive=True)
        handle = self._live_handle(message)
        if handle is None:
            return
        hide_s = min(_whole_seconds(timeout), MAX_VISIBILITY_S)
        started = self.clock()
        extended = False
        with map_errors(self._errors(stale=True)):
            self._client.change_message_visibility(
                QueueUrl=self._resolve().url, ReceiptHandle=handle, VisibilityTimeout=hide_s
            )
            extended = True
        if extended and message.receipt.partition("|")[1]:  # ours: move its deadline
            message.receipt = f"{started + hide_s:.3f}|{handle}"

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        handle = self._live_handle(message)
        if handle is None:
            return
        resolved = self._resolve()
        self._send_dead(resolved, message.id, message.body, message.attempts, str(reason))
        with map_errors(self._errors(stale=True)):
            self._client.delete_message(QueueUrl=resolved.url, ReceiptHandle=handle)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Dead letters of this queue, newest first (reads at most 1000 of them).

        Jobs SQS redrove by itself carry no reason or time: the first call that sees one
        re-sends it to the dead-letter queue stamped with "max attempts (N) exceeded" and the
        time it was found, so later calls list it in a stable place.
        """
        check_limit(limit)
        resolved = self._resolve()
        dlq = self._dlq_url(resolved)
        stamped: list[DeadLetter] = []
        held: list[str] = []
        unstamped: list[tuple[str, DeadLetter, dict[str, str]]] = []
        with map_errors(self._errors()):
            try:
                while len(held) + len(unstamped) < _SCAN_MAX:
                    response = self._client.receive_message(
                        QueueUrl=dlq,
                        MaxNumberOfMessages=_SQS_BATCH,
                        VisibilityTimeout=_PEEK_HIDE_S,
                        WaitTimeSeconds=self.wait_time_s,
                        MessageSystemAttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    )
                    batch = response.get("Messages", [])
                    if not batch:
                        break
                    for item in batch:
                        handle = str(item["ReceiptHandle"])
                        attrs = _read_attrs(item.get("MessageAttributes"))
                        dead = self._as_dead_letter(resolved, item, attrs)
                        if dead is None or A_REASON in attrs:
                            held.append(handle)  # None: another queue's, in a shared DLQ
                            if dead is not None:
                                stamped.append(dead)
                        else:
                            unstamped.append((handle, dead, attrs))
            except ClientError:
                self._release(dlq, held + [h for h, _, _ in unstamped])
                raise
        found = stamped + self._stamp(resolved, dlq, unstamped, {d.id for d in stamped}, held)
        self._release(dlq, held)
        ranked = sorted(enumerate(found), key=lambda e: (e[1].failed_at, e[0]), reverse=True)
        return [dead for _, dead in ranked[:limit]]

    def _stamp(
        self,
        resolved: _Resolved,
        dlq: str,
        unstamped: list[tuple[str, DeadLetter, dict[str, str]]],
        stamped_ids: set[str],
        held: list[str],
    ) -> list[DeadLetter]:
        """Re-send SQS-redriven dead letters with reason and time (after the scan, so this
        scan does not read the copies again). Needs SendMessage and DeleteMessage on the DLQ;
        without them the letters are listed as found, stamped on no call."""
        out: list[DeadLetter] = []
        allowed = True
        for handle, dead, attrs in unstamped:
            fresh = dead.id not in stamped_ids  # else: stamped before, original left over
            if fresh:
                out.append(dead)
            if not allowed:
                held.append(handle)
                continue
            try:
                if fresh:
                    self._send_dead(
                        resolved,
                        dead.id,
                        dead.body,
                        dead.attempts,
                        dead.reason,
                        attrs,
                        dead.failed_at,
                    )
                self._delete_quietly(dlq, handle)
            except ClientError as exc:
                log.warning("cannot stamp redriven dead letters: %s", error_code(exc))
                allowed = False
                held.append(handle)
        return out

    # ------------------------------------------------------------------ extras

    def postpone_if_early(self, message: QueueMessage, attributes: Mapping[str, Any]) -> bool:
        """For queue-triggered consumers (Lambda): re-send a job that is not due yet.

        ``attributes`` are the record's message attributes. Returns True when the job was
        re-sent for later (the caller then reports success so the trigger deletes it).
        """
        attrs = _read_attrs(attributes)
        due = _float(attrs.get(A_DUE))
        if due is None or due <= self.clock() + _RECEIPT_MARGIN_S:
            return False
        self._hop(self._resolve().url, message.id, json.dumps(message.body), attrs, due)
        return True

    # ------------------------------------------------------------------ internals

    def _accept(self, item: dict[str, Any], deadline: float) -> QueueMessage | None:
        """Turn one received SQS message into a job, or hop/dead-letter it and return None."""
        url = self._resolve().url
        attrs = _read_attrs(item.get("MessageAttributes"))
        handle = str(item["ReceiptHandle"])
        msg_id = attrs.get(A_ID) or str(item["MessageId"])
        due = _float(attrs.get(A_DUE))
        if due is not None and due > self.clock() + _RECEIPT_MARGIN_S:
            self._hop(url, msg_id, str(item["Body"]), attrs, due)
            self._delete_quietly(url, handle)
            return None
        count = _int(item.get("Attributes", {}).get("ApproximateReceiveCount"), 1)
        body = _body(str(item["Body"]))
        if count > self.max_attempts:
            # Delivered max_attempts times already and not redriven by SQS (no or a laxer
            # RedrivePolicy): dead-letter it ourselves, as SQS would have.
            reason = f"max attempts ({self.max_attempts}) exceeded"
            self._send_dead(self._resolve(), msg_id, body, count - 1, reason, attrs)
            self._delete_quietly(url, handle)
            return None
        return QueueMessage(
            id=msg_id,
            body=body,
            attempts=count,
            receipt=f"{deadline:.3f}|{handle}",
            priority=_int(attrs.get(A_PRIORITY), 0),
        )

    def _hop(self, url: str, msg_id: str, body: str, attrs: dict[str, str], due: float) -> None:
        """Re-send a job that surfaced before its due time, delayed as long as SQS allows."""
        carried = {A_ID: _attr(msg_id), A_DUE: _attr(f"{due:.3f}", "Number")}
        if A_PRIORITY in attrs:
            carried[A_PRIORITY] = _attr(attrs[A_PRIORITY], "Number")
        wait = min(MAX_DELAY_S, _whole_seconds(due - self.clock()))
        self._send(url, body, max(0, wait), carried)

    def _send(self, url: str, body: str, delay_s: int, attrs: dict[str, dict[str, str]]) -> str:
        args: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
        if delay_s:
            args["DelaySeconds"] = min(delay_s, MAX_DELAY_S)
        if attrs:
            args["MessageAttributes"] = attrs
        with map_errors({BAD_MESSAGE: _refused, **self._errors()}):
            response = self._client.send_message(**args)
        return str(response["MessageId"])

    def _send_dead(
        self,
        resolved: _Resolved,
        msg_id: str,
        body: dict[str, Any],
        attempts: int,
        reason: str,
        attrs: Mapping[str, str] | None = None,
        failed_at: float | None = None,
    ) -> None:
        reason = _INVALID_CHARS.sub("\ufffd", reason)[:_MAX_REASON] or "(no reason given)"
        carried = {
            A_ID: _attr(msg_id),
            A_REASON: _attr(reason),
            A_ATTEMPTS: _attr(attempts, "Number"),
            A_FAILED_AT: _attr(repr(failed_at or time.time()), "Number"),
            A_QUEUE: _attr(resolved.arn),
        }
        priority = (attrs or {}).get(A_PRIORITY)
        if priority is not None:
            carried[A_PRIORITY] = _attr(priority, "Number")
        self._send(self._dlq_url(resolved), json.dumps(body, separators=(",", ":")), 0, carried)
        log.info("job %s dead-lettered after %d attempt(s)", msg_id, attempts)

    def _as_dead_letter(
        self, resolved: _Resolved, item: dict[str, Any], attrs: dict[str, str]
    ) -> DeadLetter | None:
        system = item.get("Attributes", {})
        source = attrs.get(A_QUEUE) or system.get("DeadLetterQueueSourceArn")
        if source and source != resolved.arn:
            return None
        body = _body(str(item["Body"]))
        msg_id = attrs.get(A_ID) or str(item["MessageId"])
        if A_REASON in attrs:
            return DeadLetter(
                id=msg_id,
                body=body,
                attempts=_int(attrs.get(A_ATTEMPTS), 0),
                reason=attrs[A_REASON],
                failed_at=_float(attrs.get(A_FAILED_AT)) or 0.0,
            )
        limit = resolved.max_receive_count or self.max_attempts
        return DeadLetter(
            id=msg_id,
            body=body,
            attempts=limit,
            reason=f"max attempts ({limit}) exceeded",
            failed_at=time.time(),
        )

    def _release(self, url: str, handles: list[str]) -> None:
        """Make peeked dead letters visible again (best effort: they reappear anyway)."""
        for start in range(0, len(handles), _SQS_BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(handles[start : start + _SQS_BATCH])
            ]
            try:
                self._client.change_message_visibility_batch(QueueUrl=url, Entries=entries)
            except ClientError as exc:
                log.warning("could not release peeked dead letters: %s", error_code(exc))

    def _delete_quietly(self, url: str, handle: str) -> None:
        with map_errors(self._errors(stale=True)):
            self._client.delete_message(QueueUrl=url, ReceiptHandle=handle)

    def _live_handle(self, message: QueueMessage) -> str | None:
        """The SQS receipt handle, or None if the receipt's visibility timeout has run out."""
        if not isinstance(message.receipt, str) or not message.receipt:
            return None
        deadline, handle = _split_receipt(message.receipt)
        if deadline is not None and self.clock() >= deadline - _RECEIPT_MARGIN_S:
            return None
        return handle

    def _dlq_url(self, resolved: _Resolved) -> str:
        if resolved.dlq_url is None:
            raise ConfigError(
                f"SQS queue {self.queue!r} has no dead-letter queue: give one "
                "(dead_letter_queue=, ?dlq=) or set a RedrivePolicy on the queue",
                field="dead_letter_queue",
            )
        return resolved.dlq_url

    def _resolve(self) -> _Resolved:
        """Queue URL, ARN and dead-letter queue, looked up once (on first use)."""
        resolved = self._resolved
        if resolved is not None:
            return resolved
        with self._lock:
            if self._resolved is not None:
                return self._resolved
            with map_errors(self._errors()):
                url = self._url_of(self.queue)
                attrs = self._client.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy"]
                )["Attributes"]
            arn = str(attrs.get("QueueArn", ""))
            policy: dict[str, Any] = {}
            if attrs.get("RedrivePolicy"):
                policy = json.loads(attrs["RedrivePolicy"])
            if arn.endswith(".fifo"):
                raise ConfigError(
                    f"SQS queue {self.queue!r} is a FIFO queue; FIFO queues cannot delay single "
                    "jobs, use a standard queue",
                    field="queue",
                )
            dlq_url = None
            if self.dead_letter_queue is not None:
                dlq_url = self._sibling_url(url, self.dead_letter_queue, None)
            elif policy.get("deadLetterTargetArn"):
                target = str(policy["deadLetterTargetArn"]).split(":")
                owner = target[4] if len(target) > 5 else None
                dlq_url = self._sibling_url(url, target[-1], owner)
            count = policy.get("maxReceiveCount")
            self._resolved = _Resolved(
                url=url,
                arn=arn,
                dlq_url=dlq_url,
                max_receive_count=int(count) if count is not None else None,
            )
            return self._resolved

    def _sibling_url(self, url: str, ref: str, owner: str | None) -> str:
        """The URL of a queue in the same account as ``url``, without an API call.

        Queue URLs are ``<endpoint>/<account>/<name>``. Not calling GetQueueUrl for the DLQ
        keeps functions that only send (the HTTP function) free of any DLQ permission.
        """
        if ref.startswith(("https://", "http://")):
            return ref
        base = url.rsplit("/", 1)[0]
        if owner is None or base.endswith("/" + owner):
            return f"{base}/{ref}"
        return self._url_of(ref, owner=owner)

    def _url_of(self, ref: str, *, owner: str | None = None) -> str:
        if ref.startswith(("https://", "http://")):
            return ref
        args = {"QueueName": ref}
        if owner:
            args["QueueOwnerAWSAccountId"] = owner
        with map_errors({MISSING_QUEUE: _missing(ref)}):
            return str(self._client.get_queue_url(**args)["QueueUrl"])

    def _errors(self, *, stale: bool = False) -> dict[Key, Outcome[ClientError]]:
        """What SQS's answers mean here: a missing queue is a setting to fix; with ``stale``,
        a receipt SQS no longer honours is a no-op. Other errors propagate as raised."""
        errors: dict[Key, Outcome[ClientError]] = {STALE_RECEIPT: None} if stale else {}
        errors[MISSING_QUEUE] = _missing(self.queue)
        return errors


def _missing(queue: str) -> ConfigError:
    return ConfigError(f"SQS queue {queue!r} does not exist", field="queue")


def _refused(exc: ClientError) -> UserError:
    return UserError(f"SQS refused the message: {error_code(exc)}", field="body")


def _create_or_update(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    """CreateQueue, or SetQueueAttributes on an existing queue (CreateQueue refuses to change
    the attributes of a queue that exists)."""
    try:
        url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    except ClientError as exc:
        if error_code(exc) not in QUEUE_EXISTS:
            raise
        url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def _check_queue_ref(ref: str, field: str) -> None:
    if not isinstance(ref, str) or not ref:
        raise ConfigError(f"{field} must be an SQS queue name or URL", field=field)
    if ref.startswith(("https://", "http://")):
        return
    if not _NAME.fullmatch(ref):
        raise ConfigError(
            f"{field} {ref!r} is not an SQS queue name (1-80 letters, digits, '-' or '_'; "
            "FIFO queues are not supported)",
            field=field,
        )
