"""Queue on Azure Storage Queues, with priorities and a poison (dead-letter) queue.

Storage Queues have no priorities and, outside the Functions host, no dead-lettering, so both
are built here from plain queues:

- Priority 0 jobs live in the queue itself (what a Functions queue trigger listens to); a job
  with priority ``p != 0`` lives in the side queue ``<name>-p<p>`` (``<name>-pn<|p|>`` when
  negative), created on first use. ``receive`` polls the queues highest priority first.
  With ``priorities="message"`` (``azqueue://...?priorities=message``, what the Terraform
  stack sets: its queue trigger listens to one queue and the identities hold roles on that
  queue only) every job lives in the queue itself and its priority travels in the message,
  as on SQS and Pub/Sub: carried, not ordered.
- Storage Queues hide a message for at most 7 days. A longer ``delay`` is sent as the longest
  hide with the due time in the message; a job that surfaces early is re-sent (a hop) until
  it is due, by ``receive`` or, for the Functions trigger, by :meth:`accept_triggered`. A hop
  is not a delivery: its count starts again and the job keeps its id.
- A job received for the ``max_attempts + 1``-th time (the service counts deliveries in
  ``dequeue_count``) is moved to ``<name>-poison`` with the reason, like the Functions host
  does with ``maxDequeueCount``, so both paths land in the same place.

Bodies travel as base64 of their JSON text: the encoding the Functions host expects. A job
that carries a due time or a priority in the message travels wrapped, as
``{"type": "agentfn.queued", "id", "body", "due", "priority"}``; a plain job is its body.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, Self
from urllib.parse import parse_qs

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueMessage as AzureMessage, QueueServiceClient

from agentfn.adapters._errors import Outcome
from agentfn.adapters.azure import connection_string, default_credential, storage_url_parts
from agentfn.adapters.azure._errors import Key, error_code, map_errors
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

__all__ = ["AzureStorageQueue", "queue_service_client"]

log = logging.getLogger(__name__)

_MAX_RECEIVE = 100  # the port's limit per receive call
_PER_CALL = 32  # the service's limit per Get Messages call
_PEEK = 32  # the service's limit per Peek Messages call
_MAX_SECONDS = 7 * 24 * 3600  # longest visibility timeout / initial delay the service accepts
_MAX_MESSAGE = 64 * 1024  # the service's limit on a message, after base64
# Bodies are capped below what base64 allows so a dead-letter envelope (body + reason +
# bookkeeping) always fits in one poison message too.
_MAX_BODY_JSON = 45 * 1024
_MAX_REASON = 1000
_MAX_RAW = 8000  # characters of an undecodable message kept in its dead letter
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
_MAX_BASE_NAME = 63 - len("-poison")
_ENVELOPE = "agentfn.dead-letter"
_WRAPPED = "agentfn.queued"  # a job carrying its due time and/or priority
_EARLY_MARGIN_S = 0.5  # a wrapped job this close to its due time is handed out
Priorities = Literal["queues", "message"]
_HOST_REASON = (
    "moved to the poison queue by the Azure Functions host after maxDequeueCount deliveries"
)
_DEAD_LETTER_HOLD_S = 60  # keeps a job hidden while it is copied to the poison queue
# A receipt that no longer holds its message: redelivered, released, already deleted, or its
# queue is gone (then so is the message). Acting on one is a no-op.
_STALE: dict[Key, Outcome[Exception]] = {
    ResourceNotFoundError: None,
    (HttpResponseError, 400, "PopReceiptMismatch"): None,
}


def queue_service_client(
    *, conn_str: str | None = None, account: str | None = None, credential: Any = None
) -> QueueServiceClient:
    """A service client from a connection string or (with a token credential) an account."""
    if conn_str is not None:
        return QueueServiceClient.from_connection_string(conn_str)
    if account is None:
        raise ConfigError("a connection string or a storage account is required", field="url")
    return QueueServiceClient(
        f"https://{account}.queue.core.windows.net",
        credential=credential if credential is not None else default_credential(),
    )


def _check_name(name: object, field: str, *, max_len: int = 63) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > max_len:
        raise ConfigError(
            f"invalid queue name {name!r}: use 3-{max_len} lowercase letters, digits and single "
            "hyphens, starting and ending with a letter or digit",
            field=field,
        )
    return name


def _number(value: object, field: str, *, positive: bool) -> float:
    """A duration (agentfn.queue_args) within the 7 days Storage Queues allow."""
    v = seconds(value, field, positive=positive)
    if v > _MAX_SECONDS:
        raise UserError(
            f"{field} must be at most 7 days ({_MAX_SECONDS} s) on Storage Queues", field=field
        )
    return v


def _seconds(value: float) -> int:
    """The service counts whole seconds: round up so a job is never visible early."""
    return math.ceil(value)


def _encode(data: dict[str, Any]) -> str:
    text = json.dumps(data, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _decode(content: object) -> dict[str, Any] | None:
    """The JSON object a message carries, or None if it is not base64 of one."""
    if not isinstance(content, str):
        return None
    try:
        value = json.loads(base64.b64decode(content, validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class AzureStorageQueue:
    """At-least-once job queue on Storage Queues; see the module docstring for the layout.

    ``QueueMessage.receipt`` is ``"<priority>/<pop receipt>"`` so ack/retry reach the right
    queue. The service's time unit is one second: delays and visibility timeouts round up.
    ``clock`` only stamps ``failed_at`` on dead letters; visibility is the service's clock.
    """

    def __init__(
        self,
        queue_name: str,
        *,
        max_attempts: int = 5,
        poison_queue: str | None = None,
        service: QueueServiceClient | None = None,
        clock: Callable[[], float] = time.time,
        priority_refresh_s: float = 1.0,
        priorities: Priorities = "queues",
        max_delay_s: float = _MAX_SECONDS,
    ) -> None:
        self.name = _check_name(queue_name, "url", max_len=_MAX_BASE_NAME)
        self.max_attempts = check_max_attempts(max_attempts)
        self.poison_name = _check_name(
            poison_queue if poison_queue is not None else f"{queue_name}-poison", "poison_queue"
        )
        if self.poison_name == self.name:
            raise ConfigError("the poison queue must differ from the queue", field="poison_queue")
        if service is None:
            conn = connection_string()
            if conn is None:
                raise ConfigError(
                    "AzureStorageQueue needs AZURE_STORAGE_CONNECTION_STRING or a service client "
                    "(or use from_url('azqueue://<account>/<queue>') with DefaultAzureCredential)",
                    field="url",
                )
            service = queue_service_client(conn_str=conn)
        self.service = service
        self.clock = clock
        if (
            isinstance(priority_refresh_s, bool)
            or not isinstance(priority_refresh_s, int | float)
            or not 0 <= priority_refresh_s < math.inf
        ):
            raise ConfigError("priority_refresh_s must be a finite number >= 0", field="url")
        self.priority_refresh_s = float(priority_refresh_s)
        if priorities not in ("queues", "message"):
            raise ConfigError("priorities must be 'queues' or 'message'", field="priorities")
        self.priorities: Priorities = priorities
        if (
            isinstance(max_delay_s, bool)
            or not isinstance(max_delay_s, int | float)
            or not 1 <= max_delay_s <= _MAX_SECONDS
        ):
            raise ConfigError(
                f"max_delay_s must be a number in 1..{_MAX_SECONDS}", field="max_delay_s"
            )
        self.max_delay_s = float(max_delay_s)
        self._lock = threading.Lock()
        self._clients: dict[int, QueueClient] = {}
        self._known: set[int] = {0}  # priorities whose queue exists
        self._listed_at = -math.inf
        self._poison = service.get_queue_client(self.poison_name)
        self._warned_list = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``azqueue://queue-name`` (account from the connection string) or, without
        ``AZURE_STORAGE_CONNECTION_STRING``, ``azqueue://account/queue-name``; the query
        ``?priorities=message`` keeps every priority in the one queue (module docstring)."""
        base, _, query = url.partition("?") if isinstance(url, str) else (url, "", "")
        account, parts = storage_url_parts(base, "azqueue", what="queue")
        if len(parts) != 1:
            raise ConfigError(f"{url!r}: expected azqueue://[account/]queue-name", field="url")
        try:
            params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            raise ConfigError(f"{url!r}: malformed query string", field="url") from None
        if set(params) - {"priorities"} or any(len(v) != 1 for v in params.values()):
            raise ConfigError(f"{url!r}: the only query parameter is priorities=", field="url")
        if "priorities" in params:
            options["priorities"] = params["priorities"][0]
        allowed = {"max_attempts", "poison_queue", "service", "credential", "clock", "priorities"}
        unknown = set(options) - allowed
        if unknown:
            raise ConfigError(f"unknown AzureStorageQueue options: {sorted(unknown)}", field="url")
        credential = options.pop("credential", None)
        if options.get("service") is None and account is not None:
            options["service"] = queue_service_client(account=account, credential=credential)
        return cls(parts[0], **options)

    @classmethod
    def create(cls, name: str, max_attempts: int = 5, **options: Any) -> Self:
        """Create the queue and its poison queue if missing; return an adapter for them."""
        queue = cls(name, max_attempts=max_attempts, **options)
        for client in (queue._client(0), queue._poison):
            queue._create(client)
        return queue

    def __repr__(self) -> str:
        return (
            f"AzureStorageQueue(account={self.service.account_name!r}, name={self.name!r}, "
            f"poison_queue={self.poison_name!r}, max_attempts={self.max_attempts})"
        )

    # ------------------------------------------------------------------ protocol

    def send(self, body: dict[str, Any], *, delay: float = 0.0, priority: int = 0) -> str:
        text = encode_body(body, ensure_ascii=False)
        size = len(text.encode("utf-8"))
        if size > _MAX_BODY_JSON:
            raise UserError(
                f"body is {size} bytes as JSON; Storage Queue jobs are limited to "
                f"{_MAX_BODY_JSON} bytes (64 KiB per message after base64)",
                field="body",
            )
        delay_s = seconds(delay, "delay", positive=False)
        check_priority(priority)
        due = self.clock() + delay_s if delay_s > self.max_delay_s else None
        carried = self.priorities == "message" and priority != 0
        if due is not None or carried:
            return self._send_wrapped(None, body, due, priority)
        content = base64.b64encode(text.encode("utf-8")).decode("ascii")
        return self._send_content(content, priority, delay_s)

    def _send_content(self, content: str, priority: int, delay_s: float) -> str:
        client = self._client(priority)
        kwargs = {"visibility_timeout": _seconds(delay_s), "time_to_live": -1}
        try:
            sent = client.send_message(content, **kwargs)
        except ResourceNotFoundError as exc:
            if error_code(exc) != "QueueNotFound":
                raise
            if priority == 0:
                raise self._no_queue(self.name) from None
            self._create(client)  # first job at this priority
            sent = client.send_message(content, **kwargs)
        with self._lock:
            self._known.add(priority)
        return str(sent.id)

    def _send_wrapped(
        self, msg_id: str | None, body: dict[str, Any], due: float | None, priority: int
    ) -> str:
        """Send a job with its due time and priority in the message (a long delay, a hop, or
        a priority in ``priorities="message"`` mode); the job keeps ``msg_id`` if given."""
        wait = 0.0 if due is None else min(self.max_delay_s, max(0.0, due - self.clock()))
        queue_priority = 0 if self.priorities == "message" else priority
        envelope = {"type": _WRAPPED, "id": msg_id, "body": body, "due": due, "priority": priority}
        content = _encode(envelope)
        if len(content) > _MAX_MESSAGE:
            raise UserError(
                "body with its due time does not fit one Storage Queue message", field="body"
            )
        sent_id = self._send_content(content, queue_priority, wait)
        return msg_id or sent_id

    def accept_triggered(
        self, body: dict[str, Any], *, msg_id: str, attempts: int, pop_receipt: str
    ) -> QueueMessage | None:
        """For the Functions queue trigger: the job a delivered message holds, or None when it
        was not due yet and has been re-sent for later (the function then succeeds, so the
        host deletes the original)."""
        job_id, job_body, priority, due = self._unwrap(body, msg_id, 0)
        if due is not None and due > self.clock() + _EARLY_MARGIN_S:
            self._send_wrapped(job_id, job_body, due, priority)
            return None
        return QueueMessage(
            id=job_id,
            body=job_body,
            attempts=attempts,
            receipt=f"0/{msg_id}|{pop_receipt}" if pop_receipt else "",
            priority=priority,
        )

    @staticmethod
    def _unwrap(
        body: dict[str, Any], msg_id: str, queue_priority: int
    ) -> tuple[str, dict[str, Any], int, float | None]:
        """(id, body, priority, due) of a plain job (its queue's priority) or a wrapped one."""
        if body.get("type") != _WRAPPED or not isinstance(body.get("body"), dict):
            return msg_id, body, queue_priority, None
        due, priority = body.get("due"), body.get("priority")
        return (
            str(body.get("id") or msg_id),
            body["body"],
            priority if isinstance(priority, int) and not isinstance(priority, bool) else 0,
            float(due) if isinstance(due, int | float) and not isinstance(due, bool) else None,
        )

    def receive(
        self, max_messages: int = 1, *, visibility_timeout: float = 30.0
    ) -> list[QueueMessage]:
        check_max_messages(max_messages, _MAX_RECEIVE)
        timeout = _seconds(_number(visibility_timeout, "visibility_timeout", positive=True))
        out: list[QueueMessage] = []
        for priority in self._priorities():
            client = self._client(priority)
            while len(out) < max_messages:
                want = min(_PER_CALL, max_messages - len(out))
                try:
                    batch = list(
                        client.receive_messages(
                            messages_per_page=want, max_messages=want, visibility_timeout=timeout
                        )
                    )
                except ResourceNotFoundError as exc:
                    if error_code(exc) != "QueueNotFound":
                        raise
                    if priority == 0:
                        raise self._no_queue(self.name) from None
                    with self._lock:  # a side queue was deleted: forget it
                        self._known.discard(priority)
                    break
                for raw in batch:
                    message = self._accept(raw, priority)
                    if message is not None:
                        out.append(message)
                if len(batch) < want:
                    break  # nothing more visible at this priority
            if len(out) >= max_messages:
                break
        return out

    def ack(self, message: QueueMessage) -> None:
        target = self._target(message)
        if target is None:
            return
        client, msg_id, pop_receipt, _ = target
        with map_errors(_STALE):
            client.delete_message(msg_id, pop_receipt)

    def retry(self, message: QueueMessage, *, delay: float = 0.0) -> None:
        """Release the job early; the receipt becomes stale (the job is no longer ours)."""
        delay_s = _number(delay, "delay", positive=False)
        target = self._target(message)
        if target is None:
            return
        client, msg_id, pop_receipt, _ = target
        with map_errors(_STALE):
            client.update_message(msg_id, pop_receipt, visibility_timeout=_seconds(delay_s))

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        target = self._target(message)
        if target is None:
            return
        client, msg_id, pop_receipt, _ = target
        held = None
        with map_errors(_STALE):
            # Proves the receipt is current and keeps the job ours while it is copied.
            held = client.update_message(
                msg_id, pop_receipt, visibility_timeout=_DEAD_LETTER_HOLD_S
            )
        if held is None:
            return  # stale: the job is no longer ours to move
        self._bury(message.id, message.body, message.attempts, str(reason), message.priority)
        with map_errors(_STALE):
            client.delete_message(msg_id, held.pop_receipt)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Dead letters, newest first, from a peek at the poison queue.

        Peeking is free of side effects but the service returns at most the 32 oldest
        messages, so with more than 32 dead letters this lists the 32 oldest, newest first.
        """
        check_limit(limit)
        with map_errors(self._missing(self.poison_name)):
            peeked = list(self._poison.peek_messages(max_messages=_PEEK))
        return [self._dead(m) for m in reversed(peeked)][:limit]

    # ------------------------------------------------------------------ extras

    def purge(self, *, dead_letters: bool = False) -> None:
        """Drop every job of this queue and its priority queues (and the dead letters)."""
        for priority in self._priorities(force=True):
            with contextlib.suppress(ResourceNotFoundError):
                self._client(priority).clear_messages()
        if dead_letters:
            self._poison.clear_messages()

    def delete_queues(self) -> None:
        """Delete the queue, its priority queues and its poison queue (tests, teardown)."""
        for priority in self._priorities(force=True):
            with contextlib.suppress(ResourceNotFoundError):
                self._client(priority).delete_queue()
        with contextlib.suppress(ResourceNotFoundError):
            self._poison.delete_queue()

    # ------------------------------------------------------------------ internals

    def _queue_name(self, priority: int) -> str:
        if priority == 0:
            return self.name
        suffix = f"-p{priority}" if priority > 0 else f"-pn{-priority}"
        name = self.name + suffix
        if len(name) > 63:
            raise UserError(
                f"priority {priority} would need the queue name {name!r}, longer than the "
                "63 characters Storage Queues allow; use a smaller priority or a shorter name",
                field="priority",
            )
        return name

    def _client(self, priority: int) -> QueueClient:
        with self._lock:
            client = self._clients.get(priority)
        if client is None:
            client = self.service.get_queue_client(self._queue_name(priority))
            with self._lock:
                client = self._clients.setdefault(priority, client)
        return client

    def _priorities(self, *, force: bool = False) -> list[int]:
        """Known priorities, highest first; side queues made by other processes are found by
        listing ``<name>-p*`` at most every ``priority_refresh_s`` seconds. With
        ``priorities="message"`` there is one queue and nothing to list."""
        if self.priorities == "message":
            return [0]
        now = time.monotonic()
        if force or now - self._listed_at >= self.priority_refresh_s:
            found = self._list_priorities()
            with self._lock:
                self._listed_at = now
                if found is not None:
                    self._known = {0, *found}
        with self._lock:
            return sorted(self._known, reverse=True)

    def _list_priorities(self) -> set[int] | None:
        pattern = re.compile(re.escape(self.name) + r"-p(n?)([1-9][0-9]*)")
        try:
            names = [q.name for q in self.service.list_queues(name_starts_with=f"{self.name}-p")]
        except HttpResponseError as exc:
            if exc.status_code != 403:
                raise
            if not self._warned_list:
                # Queue-scoped roles cannot list: only priorities sent from here are polled.
                log.warning(
                    "cannot list queues of account %s (HTTP 403): jobs sent with a priority by "
                    "other processes are not received until this process sends one",
                    self.service.account_name,
                )
                self._warned_list = True
            return None
        found = set()
        for name in names:
            match = pattern.fullmatch(name)
            if match:
                value = int(match.group(2))
                found.add(-value if match.group(1) else value)
        return found

    def _accept(self, raw: AzureMessage, priority: int) -> QueueMessage | None:
        """The job to hand out, or None if it went to the poison queue instead."""
        body = _decode(raw.content)
        attempts = int(raw.dequeue_count or 1)
        if body is None:
            text = raw.content if isinstance(raw.content, str) else ""
            reason = "message is not base64 of a JSON object"
            self._move(raw, priority, {"raw": text[:_MAX_RAW]}, attempts, reason)
            return None
        job_id, job_body, job_priority, due = self._unwrap(body, str(raw.id), priority)
        if due is not None and due > self.clock() + _EARLY_MARGIN_S:
            # Surfaced before its due time (a hop past the 7-day cap): send it on, then drop
            # this copy; a crash in between leaves a duplicate, never a loss.
            self._send_wrapped(job_id, job_body, due, job_priority)
            with map_errors(_STALE):
                self._client(priority).delete_message(raw.id, raw.pop_receipt)
            return None
        if attempts > self.max_attempts:
            reason = f"max attempts ({self.max_attempts}) exceeded"
            self._move(raw, priority, job_body, attempts - 1, reason, job_id, job_priority)
            return None
        return QueueMessage(
            id=job_id,
            body=job_body,
            attempts=attempts,
            receipt=f"{priority}/{raw.id}|{raw.pop_receipt}",
            priority=job_priority,
        )

    def _move(
        self,
        raw: AzureMessage,
        priority: int,
        body: dict[str, Any],
        attempts: int,
        reason: str,
        job_id: str | None = None,
        job_priority: int | None = None,
    ) -> None:
        # Copy first, then delete: a crash in between leaves a duplicate, never a loss.
        buried = priority if job_priority is None else job_priority
        self._bury(job_id or str(raw.id), body, attempts, reason, buried)
        with map_errors(_STALE):
            self._client(priority).delete_message(raw.id, raw.pop_receipt)

    def _bury(
        self, msg_id: str, body: dict[str, Any], attempts: int, reason: str, priority: int
    ) -> None:
        reason = reason[:_MAX_REASON]
        while True:
            envelope: dict[str, Any] = {
                "type": _ENVELOPE,
                "id": msg_id,
                "body": body,
                "attempts": attempts,
                "reason": reason,
                "failed_at": float(self.clock()),
                "queue": self.name,
                "priority": priority,
            }
            content = _encode(envelope)
            if len(content) <= _MAX_MESSAGE:
                break
            if reason:
                reason = reason[: len(reason) // 2]
            else:  # a foreign message bigger than what send() allows: keep its start
                text = json.dumps(body, separators=(",", ":"))
                body = {"truncated": True, "raw": text[:_MAX_RAW]}
        with map_errors(self._missing(self.poison_name)):
            self._poison.send_message(content, time_to_live=-1)

    def _dead(self, raw: AzureMessage) -> DeadLetter:
        data = _decode(raw.content)
        inserted = raw.inserted_on.timestamp() if raw.inserted_on else 0.0
        ours = data is not None and data.get("type") == _ENVELOPE
        if data is not None and ours and isinstance(data.get("body"), dict):
            return DeadLetter(
                id=str(data.get("id", raw.id)),
                body=data["body"],
                attempts=int(data.get("attempts", 0)),
                reason=str(data.get("reason", "")),
                failed_at=float(data.get("failed_at", inserted)),
            )
        # Put there by the Functions host: the original message, moved as is.
        if data is None:
            text = raw.content if isinstance(raw.content, str) else ""
            data = {"raw": text}
        return DeadLetter(
            id=str(raw.id),
            body=data,
            attempts=self.max_attempts,
            reason=_HOST_REASON,
            failed_at=inserted,
        )

    def _target(self, message: QueueMessage) -> tuple[QueueClient, str, str, int] | None:
        """The queue, service message id, pop receipt and priority a receipt names
        (``<priority>/<message id>|<pop receipt>``; ``<priority>/<pop receipt>`` when the
        job's id is the service's); None for one this adapter never made."""
        receipt = getattr(message, "receipt", None)
        if not isinstance(receipt, str):
            return None
        prefix, sep, rest = receipt.partition("/")
        if not sep or not rest or not re.fullmatch(r"-?[0-9]+", prefix):
            return None
        msg_id, bar, pop_receipt = rest.partition("|")
        if not bar:
            msg_id, pop_receipt = message.id, rest
        if not msg_id or not pop_receipt:
            return None
        priority = int(prefix)
        try:
            return self._client(priority), msg_id, pop_receipt, priority
        except UserError:
            return None

    @staticmethod
    def _create(client: QueueClient) -> None:
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()

    def _no_queue(self, name: str) -> ConfigError:
        return ConfigError(
            f"queue {name!r} does not exist in storage account "
            f"{self.service.account_name!r} (create it with AzureStorageQueue.create)",
            field="url",
        )

    def _missing(self, name: str) -> dict[Key, Outcome[Exception]]:
        """A missing queue is a setting to fix; other errors propagate as raised."""
        return {(ResourceNotFoundError, "QueueNotFound"): self._no_queue(name)}
