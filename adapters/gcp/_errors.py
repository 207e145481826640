"""``google.api_core.exceptions`` → agentfn errors, one mapping for every Google Cloud adapter.

The Google SDKs raise one exception class per canonical status (``NotFound``,
``PreconditionFailed``, ``FailedPrecondition``...), so a table keyed by class says what each
means to an adapter:

    with map_errors({gexc.NotFound: NotFound(f"blob {key!r} not found")}):
        blob.download_as_bytes()

The first class the error is an instance of wins; an error no entry matches propagates
unchanged. One wrinkle is smoothed over here: over REST a ``FAILED_PRECONDITION`` answer
arrives as HTTP 400, a ``BadRequest`` whose body names the status, and it matches
``gexc.FailedPrecondition`` as it does over gRPC. Imported only by the Google adapter modules,
which import the SDK anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager

from google.api_core import exceptions as gexc

from agentfn.adapters._errors import Outcome, translating

__all__ = ["map_errors"]

# REST answers whose status name is more precise than their HTTP code.
_REST_STATUSES: dict[str, type[gexc.GoogleAPICallError]] = {
    "FAILED_PRECONDITION": gexc.FailedPrecondition,
}


def _rest_status(exc: gexc.GoogleAPICallError) -> str | None:
    """The canonical status name of a REST error body (``error.status``), if there is one."""
    try:
        body = exc.response.json() if exc.response is not None else None
    except (AttributeError, ValueError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    status = error.get("status") if isinstance(error, dict) else None
    return status if isinstance(status, str) else None


def _matches(exc: gexc.GoogleAPICallError, cls: type[gexc.GoogleAPICallError]) -> bool:
    if isinstance(exc, cls):
        return True
    if isinstance(exc, gexc.BadRequest):
        precise = _REST_STATUSES.get(_rest_status(exc) or "")
        return precise is not None and issubclass(precise, cls)
    return False


def map_errors(
    table: Mapping[type[gexc.GoogleAPICallError], Outcome[gexc.GoogleAPICallError]],
) -> AbstractContextManager[None]:
    """Translate a Google API error raised in the block by ``table`` (see the module doc)."""
    return translating(gexc.GoogleAPICallError, _matches, table)
