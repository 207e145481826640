"""Tools of the example project: plain typed functions, schemas come from the type hints."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agentfn.tools import tool

KNOWLEDGE = {
    "cold starts": [
        "Importing heavy SDKs lazily keeps cold starts short.",
        "Provisioned concurrency removes cold starts at a fixed cost.",
    ],
    "retries": [
        "Queues deliver at least once, so every step must be idempotent.",
        "Dead-letter queues keep failed work for inspection instead of losing it.",
    ],
    "costs": [
        "Serverless bills per request and per millisecond of memory.",
        "Token usage dominates the cost of agent workloads.",
    ],
}


@tool
def lookup_facts(
    topic: Annotated[str, Field(description="Subject to look up, e.g. 'retries'")],
) -> list[str]:
    """Look up known facts about a topic in the bundled knowledge base."""
    return KNOWLEDGE.get(topic.strip().lower(), [f"No facts recorded about {topic}."])


@tool
def risk_score(subject: str, topics: list[str]) -> dict[str, object]:
    """Score how risky a subject is from the topics it touches (0 = safe, 1 = risky)."""
    weights = {"cold starts": 0.2, "retries": 0.4, "costs": 0.3}
    score = round(min(1.0, sum(weights.get(t, 0.1) for t in topics)), 2)
    return {"subject": subject, "score": score, "topics": topics}


@tool
def word_count(text: str) -> dict[str, int]:
    """Count the words and characters of a text."""
    return {"words": len(text.split()), "characters": len(text)}
