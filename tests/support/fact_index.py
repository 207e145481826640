"""A small FactSearch for tests: an in-memory index that knows a few synonyms, so it finds
facts the built-in word match cannot ("hue" finds a fact about a colour), and records what it
was told, so a test sees the spaces (tenant, agent, scope) the store used."""

from __future__ import annotations

import re

SYNONYMS = {"hue": "colour", "tint": "colour", "moniker": "name"}


def _words(text: str) -> set[str]:
    found = set(re.findall(r"\w+", text.lower()))
    return found | {SYNONYMS[w] for w in found if w in SYNONYMS}


class SynonymIndex:
    def __init__(self) -> None:
        self.spaces: dict[str, dict[str, str]] = {}
        self.calls: list[tuple[str, str, str]] = []

    def index(self, space: str, key: str, text: str) -> None:
        self.calls.append(("index", space, key))
        self.spaces.setdefault(space, {})[key] = text

    def remove(self, space: str, key: str) -> None:
        self.calls.append(("remove", space, key))
        self.spaces.get(space, {}).pop(key, None)

    def search(self, space: str, query: str, limit: int) -> list[str]:
        self.calls.append(("search", space, query))
        wanted = _words(query)
        scored = [(len(wanted & _words(t)), k) for k, t in self.spaces.get(space, {}).items()]
        return [k for score, k in sorted(scored, reverse=True) if score][:limit]


SHARED = SynonymIndex()


def build() -> SynonymIndex:
    """The factory a deployment names (AGENTFN_MEMORY_SEARCH=<file>:build)."""
    return SHARED
