"""Prompt-injection heuristics for tool outputs: text a tool returns goes straight into an
agent's conversation, so text that reads like instructions to the model is flagged on the run
record (``Run.flags``) for a person to look at. Flags never block a run: the patterns are
heuristics, and a tool that legitimately returns such text (a page about prompt injection)
must still work.
"""

from __future__ import annotations

import re

# name -> pattern; the names are what a flag lists
SIGNALS: dict[str, re.Pattern[str]] = {
    "ignore-instructions": re.compile(
        r"\b(?:ignore|disregard|forget|override)\b.{0,30}\b(?:previous|prior|above|earlier|all"
        r"|system|your)\b.{0,30}\b(?:instructions?|prompts?|rules|directions|guidelines)\b",
        re.I | re.S,
    ),
    "role-change": re.compile(
        r"\b(?:you are now|from now on,? you|act as (?:an? )?(?:admin|root|developer|system)"
        r"|pretend (?:to be|you are)|new (?:instructions|persona|role)\s*:)",
        re.I,
    ),
    "system-prompt-probe": re.compile(
        r"\b(?:reveal|print|show|repeat|output|leak)\b.{0,30}\b(?:system prompt|your instructions"
        r"|hidden instructions|initial prompt)\b",
        re.I | re.S,
    ),
    "chat-markup": re.compile(
        r"<\|(?:im_start|im_end|system|endoftext)\|>|\[/?INST\]|<<SYS>>|^#{2,}\s*(?:system|instruction)s?\b",
        re.I | re.M,
    ),
    "exfiltration": re.compile(
        r"\b(?:send|post|upload|forward|email)\b.{0,40}\b(?:api[ _-]?keys?|credentials|passwords?"
        r"|secrets?|tokens?|conversation|chat history)\b.{0,40}\b(?:to|at)\b",
        re.I | re.S,
    ),
    "hidden-text": re.compile(r"[\U000E0000-\U000E007F]|[\u200b-\u200f\u2060-\u2064]{3,}"),
}
EXCERPT = 160


def signals(text: str) -> list[str]:
    """The names of the signals ``text`` shows, in table order."""
    return [name for name, pattern in SIGNALS.items() if pattern.search(text)]


def excerpt(text: str) -> str:
    """The text around the first signal, short enough for the run record."""
    starts = [m.start() for p in SIGNALS.values() if (m := p.search(text)) is not None]
    start = max(0, min(starts, default=0) - 40)
    return text[start : start + EXCERPT]
