"""URL handling that every adapter's ``from_url`` repeated: the scheme check, the refusal of a
query or fragment, and naming the URL in errors raised while building from it.

The messages are the ones the adapters already gave, word for word. This module imports no
SDK.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import ParseResult, urlparse

from agentfn.errors import AgentfnError, ConfigError

__all__ = ["about_url", "parse_url"]


def parse_url(
    url: str, scheme: str, *, article: str = "a", names: str | None = None, query: bool = False
) -> ParseResult:
    """``urlparse(url)``, checked in this order (each failure a ``ConfigError(field="url")``):
    the scheme is ``scheme`` (``article`` reads before it: "an s3:// URL"); with ``names``,
    the URL has an authority, which names that ("bucket (s3://bucket/prefix)"); unless
    ``query``, it carries no query, fragment or parameters."""
    parsed = urlparse(url)
    if parsed.scheme != scheme:
        raise ConfigError(f"{url!r} is not {article} {scheme}:// URL", field="url")
    if names is not None and not parsed.netloc:
        raise ConfigError(f"{url!r} names no {names}", field="url")
    if not query and (parsed.query or parsed.fragment or parsed.params):
        raise ConfigError(f"{url!r}: {scheme}:// URLs take no query or fragment", field="url")
    return parsed


@contextlib.contextmanager
def about_url(url: str, caught: type[AgentfnError]) -> Iterator[None]:
    """Re-raise a ``caught`` error from the block as ``ConfigError(field="url")`` whose message
    starts with the URL, so a bad setting names where it came from."""
    try:
        yield
    except caught as exc:
        raise ConfigError(f"{url!r}: {exc.message}", field="url") from None
