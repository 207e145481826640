"""botocore ``ClientError`` → agentfn errors, one mapping for every AWS adapter.

botocore raises a single ``ClientError`` class for every service answer; what it means is in
its error code (spelled differently by S3, SQS, Secrets Manager and moto) and its HTTP status.
The code groups below name those meanings once, and ``map_errors`` matches a table of them:

    with map_errors({MISSING_KEY: NotFound(f"blob {key!r} not found")}):
        client.get_object(...)

A key is an error code, an HTTP status (an ``int``), a frozenset of either, or ``ANY``; the
first entry that matches wins, and an error no entry matches propagates unchanged. Imported
only by the AWS adapter modules, which import botocore anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager

from botocore.exceptions import ClientError

from agentfn.adapters._errors import Outcome, translating

__all__ = [
    "ANY",
    "BAD_MESSAGE",
    "MISSING_KEY",
    "MISSING_QUEUE",
    "MISSING_SECRET",
    "PRECONDITION",
    "QUEUE_EXISTS",
    "STALE_RECEIPT",
    "Key",
    "error_code",
    "http_status",
    "map_errors",
]

Key = str | int | frozenset[str | int]
ANY: Key = "*"  # matches every error (no AWS error code is "*")

# S3: a key that is not there, and a conditional write that lost (codes and statuses).
MISSING_KEY: frozenset[str | int] = frozenset({"NoSuchKey", "404", "NotFound"})
PRECONDITION: frozenset[str | int] = frozenset(
    {"PreconditionFailed", "ConditionalRequestConflict", "412"}
)
# SQS.
MISSING_QUEUE: frozenset[str | int] = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
)
QUEUE_EXISTS: frozenset[str | int] = frozenset({"QueueAlreadyExists", "QueueNameExists"})
STALE_RECEIPT: frozenset[str | int] = frozenset(
    {
        "ReceiptHandleIsInvalid",
        "InvalidParameterValue",
        "AWS.SimpleQueueService.ReceiptHandleIsInvalid",
        "MessageNotInflight",
        "AWS.SimpleQueueService.MessageNotInflight",
    }
)
BAD_MESSAGE: frozenset[str | int] = frozenset({"InvalidParameterValue", "InvalidMessageContents"})
# Secrets Manager.
MISSING_SECRET: frozenset[str | int] = frozenset({"ResourceNotFoundException"})


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _matches(exc: ClientError, key: Key) -> bool:
    if key == ANY:
        return True
    if isinstance(key, frozenset):
        return error_code(exc) in key or http_status(exc) in key
    return key in (error_code(exc), http_status(exc))


def map_errors(table: Mapping[Key, Outcome[ClientError]]) -> AbstractContextManager[None]:
    """Translate a ``ClientError`` raised in the block by ``table`` (see the module doc)."""
    return translating(ClientError, _matches, table)
