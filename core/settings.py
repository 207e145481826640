"""Deployment settings: three adapter URLs switch a deployment between clouds.

Read from the environment (``AGENTFN_STORAGE``, ``AGENTFN_QUEUE``, ``AGENTFN_SECRETS``) so the
same artifact runs everywhere; the local default keeps everything under ``AGENTFN_HOME``
(``.agentfn`` in the current folder): the store and the queue in one SQLite database, and
environment/.env secrets. SQLite over one file per object: about half the time per step, and
crash-safe commits; one database for both, so what follows a step is one commit
(docs/benchmarks.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentfn.model_policy import ModelPolicy

# Kept beside Settings, not imported from model_policy: reading settings loads no pydantic.
DEFAULT_MODEL_SECRETS = ("OPENAI_API_KEY",)
DEFAULT_MODEL_HOSTS = ("api.openai.com",)


@dataclass(frozen=True)
class Settings:
    """A plain dataclass: read on every cold start, so it costs no model building."""

    home: Path
    storage: str
    queue: str
    secrets: str
    max_attempts: int = 5
    lease_s: float = 60.0
    step_timeout_s: float = 900.0  # the stacks set it below their function timeout
    project: Path = Path(".")
    tool_modules: tuple[str, ...] = ()
    model_secrets: tuple[str, ...] = DEFAULT_MODEL_SECRETS
    model_hosts: tuple[str, ...] = DEFAULT_MODEL_HOSTS
    memory_search: str = ""  # file.py:factory of the project: the facts' search index

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, home: str | Path | None = None
    ) -> Settings:
        env = os.environ if env is None else env
        root = Path(home or env.get("AGENTFN_HOME") or ".agentfn").absolute()
        return cls(
            home=root,
            storage=env.get("AGENTFN_STORAGE") or _local_database(root, "store.db"),
            queue=env.get("AGENTFN_QUEUE") or _local_database(root, "queue.db"),
            secrets=env.get("AGENTFN_SECRETS") or "env://" + str(Path.cwd() / ".env"),
            max_attempts=int(env.get("AGENTFN_MAX_ATTEMPTS", "5")),
            lease_s=float(env.get("AGENTFN_LEASE_S", "60")),
            step_timeout_s=float(env.get("AGENTFN_STEP_TIMEOUT_S", "900")),
            project=Path(env.get("AGENTFN_PROJECT") or ".").absolute(),
            tool_modules=_names(env.get("AGENTFN_TOOL_MODULES", "")),
            model_secrets=_names(env.get("AGENTFN_MODEL_SECRETS", ",".join(DEFAULT_MODEL_SECRETS))),
            model_hosts=_names(env.get("AGENTFN_MODEL_HOSTS", ",".join(DEFAULT_MODEL_HOSTS))),
            memory_search=env.get("AGENTFN_MEMORY_SEARCH", "").strip(),
        )

    def as_env(self) -> dict[str, str]:
        """The same settings as environment variables, for worker processes."""
        return {
            "AGENTFN_HOME": str(self.home),
            "AGENTFN_STORAGE": self.storage,
            "AGENTFN_QUEUE": self.queue,
            "AGENTFN_SECRETS": self.secrets,
            "AGENTFN_MAX_ATTEMPTS": str(self.max_attempts),
            "AGENTFN_LEASE_S": str(self.lease_s),
            "AGENTFN_STEP_TIMEOUT_S": str(self.step_timeout_s),
            "AGENTFN_PROJECT": str(self.project),
            "AGENTFN_TOOL_MODULES": ",".join(self.tool_modules),
            "AGENTFN_MODEL_SECRETS": ",".join(self.model_secrets),
            "AGENTFN_MODEL_HOSTS": ",".join(self.model_hosts),
            "AGENTFN_MEMORY_SEARCH": self.memory_search,
        }

    @property
    def model_policy(self) -> ModelPolicy:
        from agentfn.model_policy import ModelPolicy

        return ModelPolicy.of(self.model_secrets, self.model_hosts)


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list: blanks dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _local_database(home: Path, earlier: str) -> str:
    """``<home>/agentfn.db``, holding store and queue; a home where an earlier version kept
    them apart (``store.db``, ``queue.db``) keeps its files, so no run or job goes missing."""
    kept = home / earlier
    return "sqlite://" + str(kept if kept.exists() else home / "agentfn.db")
