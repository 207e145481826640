"""Structured logs: one JSON object per line, with the correlation id of the request or job the
line belongs to, on every entry point (Cloud Functions and Cloud Logging read ``severity`` and
``message``; Lambda has Powertools' own JSON logger; Azure and the local runtime use this).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, Any

from agentfn.correlation import correlation_id

_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", None)
            or correlation_id.get()
            or None,
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in doc:
                doc[name] = value
        if record.exc_info:
            doc["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


# Handlers a platform puts on the root logger to ship lines to its log service; these get the
# JSON format. Any other handler (a test runner's, an application's) is left alone.
PLATFORM_HANDLERS = frozenset({"AsyncLoggingHandler"})  # the Azure Functions Python worker


def install_json_logging(level: int | str = logging.INFO, stream: IO[str] | None = None) -> None:
    """JSON lines for agentfn's logs: on the platform's own root handler where there is one
    (Azure Functions), else on a handler of our own on ``stream`` (stderr: Cloud Functions and
    Cloud Run read JSON lines from it; the local runtime). Lambda needs none: Powertools'
    ``agentfn`` logger, the parent of every agentfn logger, writes JSON already."""
    root = logging.getLogger()
    platform = [h for h in root.handlers if type(h).__name__ in PLATFORM_HANDLERS]
    for handler in platform:
        handler.setFormatter(JsonFormatter())
    if not root.handlers:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(level)
    elif platform:
        root.setLevel(level)
