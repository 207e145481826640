"""Types the contract suite's backends share (kept apart from conftest so backend modules
and child processes can import them without importing conftest)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentfn.ports import SecretStore
from agentfn.testing import FakeClock

__all__ = ["AdapterFactory", "FakeClock", "SecretHarness"]


@dataclass(frozen=True)
class AdapterFactory:
    """How to provision one adapter for a test and rebuild it anywhere from its spec.

    ``spec(tmp_path)`` returns picklable kwargs; ``build(**kwargs)`` returns the adapter;
    ``cleanup(kwargs)`` (optional) removes cloud resources after the test. ``fake_clock``
    says whether ``build`` accepts ``clock=`` so tests can skip real sleeping.
    """

    spec: Callable[[Path], dict[str, Any]]
    build: Callable[..., Any]
    cleanup: Callable[[dict[str, Any]], None] | None = None
    fake_clock: bool = False
    unit: float = 0.1  # shortest duration the backend honours (whole seconds on some clouds)
    # Whether ``receive`` returns higher priorities first. Services without message priorities
    # (SQS, Pub/Sub, Storage Queues) carry the priority on the message but cannot order by it.
    priority: bool = True
    # An adapter that lives in one process (agentfn.testing's in-memory ports): the same spec
    # builds the same instance, and the cross-process races run as racing threads instead.
    in_process: bool = False


class SecretHarness:
    """Drives one secret backend: write a secret at the source, build a store reading it."""

    name: str
    fake_clock: bool

    def set_secret(self, name: str, value: str) -> None:
        """Create or rotate ``name`` at the source (env file, cloud service, fake server)."""
        raise AssertionError(f"{type(self).__name__} must implement set_secret")

    def make(self, *, ttl_s: float = 60.0, clock: Callable[[], float] | None = None) -> SecretStore:
        """A store reading the source, caching for ``ttl_s`` by ``clock``."""
        raise AssertionError(f"{type(self).__name__} must implement make")
