"""Object keys every BlobStore accepts alike: plain relative paths.

The same rules on every adapter mean a deployment can move between clouds without a key that
works on one store and not on another: no empty, ``.`` or ``..`` segments, no leading ``/``,
no backslashes, NUL or other control characters, valid UTF-8. A ``prefix`` may end in a
partial or empty segment (``runs/`` or ``runs/ab``). Adapters add their own limits on top.
"""

from __future__ import annotations

import re

from agentfn.errors import UserError

# Every character a key may not hold: NUL and other controls, DEL, backslash.
_SUSPECT = re.compile(r"[\x00-\x1f\x7f\\]")


def check_path(
    value: object, field: str, *, allow_empty: bool, max_bytes: int | None = None
) -> list[str]:
    """Validate ``value``; return its complete segments (a prefix's last one excluded)."""
    if not isinstance(value, str):
        raise UserError(f"{field} must be a string, got {type(value).__name__}", field=field)
    if not value:
        if allow_empty:
            return []
        raise UserError(f"{field} must not be empty", field=field)
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise UserError(f"{field} {value!r} is not valid UTF-8 text", field=field) from None
    if _SUSPECT.search(value) is not None:  # one scan in C; the detail only when it hits
        _refuse_character(value, field)
    if value.startswith("/"):
        raise UserError(f"{field} {value!r} is absolute; keys are relative paths", field=field)
    segments = value.split("/")
    if field == "prefix":
        segments, last = segments[:-1], segments[-1]
        if last in (".", ".."):
            segments.append(last)
    for seg in segments:
        if seg == "..":
            raise UserError(f"{field} {value!r} contains a '..' segment", field=field)
        if seg in ("", "."):
            raise UserError(f"{field} {value!r} contains an empty or '.' segment", field=field)
    if max_bytes is not None and size > max_bytes:
        raise UserError(f"{field} {value!r} is longer than {max_bytes} bytes", field=field)
    return segments


def _refuse_character(value: str, field: str) -> None:
    if "\x00" in value:
        raise UserError(f"{field} {value!r} contains a NUL character", field=field)
    if "\\" in value and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise UserError(f"{field} {value!r} contains a backslash; use '/'", field=field)
    raise UserError(f"{field} {value!r} contains a control character", field=field)
