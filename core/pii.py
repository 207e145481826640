"""Masking personal data and secrets in what agentfn writes down about a tenant's runs: its log
lines and its prompt log, when the tenant asks (``mask_pii`` in its settings).

Masked: e-mail addresses, phone numbers (nine or more digits in separated groups),
payment card numbers (13-19 digits passing the Luhn check) and API-key-like strings (known
prefixes such as ``sk-``, ``afn_``, ``AKIA``, ``ghp_``, ``xox?-``, and long mixed tokens).
Each becomes a tag (``[email]``, ``[phone]``, ``[card]``, ``[secret]``), so a masked line
still reads. Pattern matching, not a guarantee: documented as such (docs/security.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

EMAIL = re.compile(
    r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}"
)
SECRET = re.compile(
    r"\b(?:sk-[A-Za-z0-9_-]{16,}|afn_[0-9a-f]{12}_[0-9a-f]{48}|AKIA[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}"
    r"|(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{40,})\b"
)
CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
# Groups of digits with separators between them (a bare run of digits is an id or a time),
# nine digits or more in all (a date has eight), never an IPv4 address.
PHONE = re.compile(
    r"(?<![\w+.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,5}\)|\d{2,5})(?:[ .-]\d{2,6}){1,4}(?!\w|\.\d)"
)
IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")

# Whether what is being logged belongs to a tenant that asked for masking: set by the API
# for a request and by the engine for a job, for as long as that request or job runs.
masking: ContextVar[bool] = ContextVar("agentfn_masking", default=False)


def _luhn(digits: str) -> bool:
    total, double = 0, False
    for ch in reversed(digits):
        d = int(ch) * (2 if double else 1)
        total += d - 9 if d > 9 else d
        double = not double
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[card]" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if len(re.sub(r"\D", "", text)) < 9 or IPV4.fullmatch(text):
        return text
    return "[phone]"


def mask(text: str) -> str:
    """``text`` with personal data and secrets replaced by tags. Secrets first (a key may
    hold digits that look like a phone), cards before phones."""
    text = SECRET.sub("[secret]", text)
    text = EMAIL.sub("[email]", text)
    text = CARD.sub(_card, text)
    return PHONE.sub(_phone, text)


def mask_value(value: Any) -> Any:
    """Every string inside ``value`` (dicts, lists, tuples), masked; keys too."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask_value(k): mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_value(v) for v in value)
    return value


_STANDARD = frozenset(vars(logging.makeLogRecord({})))


def install_log_masking() -> None:
    """Mask every log record made while ``masking`` is set: its message with its arguments,
    and the string extras (error, reason, ...) handlers may print. Idempotent."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "agentfn_masking", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if masking.get():
            record.msg, record.args = mask(record.getMessage()), None
            if record.exc_info:  # formatted now, masked, and kept: handlers print exc_text
                record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        return record

    factory.agentfn_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    _install_extras_filter()


def _install_extras_filter() -> None:
    """Extras are set on the record after the factory made it: a filter on the root logger's
    handlers would miss child loggers' own handlers, so mask them in ``Logger.makeRecord``."""
    original: Callable[..., logging.LogRecord] = logging.Logger.makeRecord
    if getattr(original, "agentfn_masking", False):
        return

    def make_record(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = original(self, *args, **kwargs)
        if masking.get():
            for name, value in vars(record).items():
                if name not in _STANDARD and isinstance(value, str | dict | list):
                    setattr(record, name, mask_value(value))
        return record

    make_record.agentfn_masking = True  # type: ignore[attr-defined]
    logging.Logger.makeRecord = make_record  # type: ignore[method-assign]
