"""SecretStore backed by the process environment, then an optional ``.env`` file.

Values are cached for ``ttl_s`` (agentfn.adapters._secret_cache) so a hot path does not re-read
the file, while a secret rotated in the file is still picked up within one TTL. Values never
appear in messages, reprs or logs.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from agentfn.adapters._secret_cache import CachedSecretStore
from agentfn.errors import ConfigError, NotFound, UserError

__all__ = ["EnvSecretStore", "parse_dotenv"]

log = logging.getLogger(__name__)

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


def _unescape_double(raw: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw) and raw[i + 1] in _ESCAPES:
            out.append(_ESCAPES[raw[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _find_closing(text: str, quote: str, start: int) -> int:
    """Index of the unescaped closing quote at or after ``start``, or -1."""
    i = start
    while i < len(text):
        ch = text[i]
        if quote == '"' and ch == "\\":
            i += 2
            continue
        if ch == quote:
            return i
        i += 1
    return -1


def parse_dotenv(text: str, *, source: str = ".env") -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines the way common dotenv tools do, minus variable expansion.

    Supports ``export KEY=...``, ``#`` comments (whole-line, or after whitespace in unquoted
    values), single quotes (literal), double quotes (``\\n \\t \\" \\\\`` escapes) and quoted
    values spanning lines. Malformed lines are skipped with a warning naming only the line.
    """
    values: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            log.warning("%s:%d: skipping a line that is not KEY=VALUE", source, lineno)
            continue
        rest = rest.lstrip()
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            body = rest[1:]
            end = _find_closing(body, quote, 0)
            # A quoted value may continue on the following lines until its closing quote.
            while end < 0 and i < len(lines):
                body += "\n" + lines[i]
                i += 1
                end = _find_closing(body, quote, 0)
            if end < 0:
                log.warning("%s:%d: skipping a value with no closing quote", source, lineno)
                continue
            raw = body[:end]
            values[key] = _unescape_double(raw) if quote == '"' else raw
        else:
            comment = re.search(r"\s#", rest)
            if comment:
                rest = rest[: comment.start()]
            values[key] = rest.strip()
    return values


class EnvSecretStore(CachedSecretStore):
    """Secrets from ``environ`` first, then ``dotenv_path``; cached for ``ttl_s`` seconds."""

    def __init__(
        self,
        dotenv_path: str | Path | None = None,
        *,
        ttl_s: float = 60.0,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl_s=ttl_s, clock=clock)
        self.dotenv_path = Path(dotenv_path) if dotenv_path is not None else None
        self._environ: Mapping[str, str] = os.environ if environ is None else environ

    def __repr__(self) -> str:
        source = "env" if self.dotenv_path is None else f"env+{self.dotenv_path}"
        return f"EnvSecretStore(source={source!r}, cached={len(self._cache)})"

    def _cache_key(self, name: str) -> str:
        if not isinstance(name, str) or not name or "=" in name or "\x00" in name:
            raise UserError(
                "secret name must be a non-empty string without '=' or NUL", field="name"
            )
        return name

    def _fetch(self, name: str) -> str:
        value, source = self._lookup(name)
        if value is None:
            raise NotFound(f"secret {name!r} not found")
        log.debug("secret %r loaded from %s", name, source)
        return value

    def _lookup(self, name: str) -> tuple[str | None, str]:
        value = self._environ.get(name)
        if value is not None:
            return value, "environment"
        if self.dotenv_path is None:
            return None, ""
        return self._read_dotenv().get(name), str(self.dotenv_path)

    def _read_dotenv(self) -> dict[str, str]:
        assert self.dotenv_path is not None
        try:
            text = self.dotenv_path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            return {}  # the file is optional, like for every dotenv loader
        except (OSError, UnicodeDecodeError) as exc:
            # Only the error class: an OSError message never holds file content, but be strict.
            raise ConfigError(
                f"cannot read secrets file {str(self.dotenv_path)!r}: {type(exc).__name__}",
                field="dotenv_path",
            ) from None
        return parse_dotenv(text, source=str(self.dotenv_path))
