"""``azure.core.exceptions`` → agentfn errors, one mapping for every Azure adapter.

azure-core raises a class per kind of answer (``ResourceNotFoundError``,
``ResourceExistsError``, ``ResourceModifiedError``, ``ClientAuthenticationError``...), and the
services add an error code (``ContainerNotFound``, ``QueueNotFound``, ``PopReceiptMismatch``)
that tells apart answers of one class. A table keyed by class, optionally narrowed by error
code and HTTP status, says what each means to an adapter:

    with map_errors({
        (ResourceNotFoundError, "ContainerNotFound"): ConfigError(...),
        ResourceNotFoundError: NotFound(f"blob {key!r} not found"),
    }):
        container.download_blob(name)

A key is a class, or a tuple of a class and conditions that must all hold: an ``int`` is the
HTTP status, a ``str`` the service's error code. The first key that matches wins; an error no
key matches propagates unchanged. Keys may name any exception class (the Key Vault SDK raises
a plain ``ValueError`` for a challenge it refuses). This module imports no SDK itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager

from agentfn.adapters._errors import Outcome, translating

__all__ = ["Key", "error_code", "map_errors"]

Key = type[Exception] | tuple[type[Exception], str | int] | tuple[type[Exception], int, str]


def error_code(exc: BaseException) -> str:
    """The service's error code as plain text: the Storage SDKs set ``error_code`` (sometimes
    an enum member), Key Vault's gives it in the parsed OData body (``error.code``)."""
    code = getattr(exc, "error_code", None)
    if code is None:
        code = getattr(getattr(exc, "error", None), "code", None)
    return str(getattr(code, "value", code) or "")


def _matches(exc: Exception, key: Key) -> bool:
    cls, *conditions = key if isinstance(key, tuple) else (key,)
    if not isinstance(exc, cls):
        return False
    status = getattr(exc, "status_code", None)
    return all(c == (status if isinstance(c, int) else error_code(exc)) for c in conditions)


def map_errors(table: Mapping[Key, Outcome[Exception]]) -> AbstractContextManager[None]:
    """Translate an error raised in the block by ``table`` (see the module doc)."""
    return translating(Exception, _matches, table)
