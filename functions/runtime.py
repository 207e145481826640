"""Composition root: settings → adapters → engine and API. Every entry point builds here.

Entry points keep one :class:`Runtime` per process (built on first use, reused while the
function instance stays warm), so adapters and clients are created once, not per request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from agentfn.api import Api
from agentfn.settings import Settings

if TYPE_CHECKING:
    from agentfn.auth import Authenticator
    from agentfn.catalog import Catalog
    from agentfn.engine import Engine
    from agentfn.model_spec import ModelSpec
    from agentfn.ports import BlobStore, Model, Queue, SecretStore

# Adapters, the engine and the catalog are imported on first use, not at cold start: a
# function instance answering /healthz never loads them.


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def blobs(self) -> BlobStore:
        from agentfn.adapters.registry import open_blobstore

        return open_blobstore(self.settings.storage)

    @cached_property
    def queue(self) -> Queue:
        from agentfn.adapters.registry import open_queue

        return open_queue(self.settings.queue, max_attempts=self.settings.max_attempts)

    @cached_property
    def secrets(self) -> SecretStore:
        from agentfn.adapters.registry import open_secrets

        return open_secrets(self.settings.secrets)

    @cached_property
    def engine(self) -> Engine:
        from agentfn.adapters.models.factory import build_model
        from agentfn.engine import Engine

        secrets = self.secrets

        def model_factory(spec: ModelSpec, base_dir: Path) -> Model:
            return build_model(spec, secrets=secrets, base_dir=base_dir)

        return Engine(
            self.blobs, self.queue, model_factory=model_factory, lease_s=self.settings.lease_s
        )

    @cached_property
    def catalog(self) -> Catalog:
        from agentfn.catalog import Catalog

        return Catalog(self.blobs, self.settings.project)

    @cached_property
    def authenticator(self) -> Authenticator:
        from agentfn.auth import SingleKeyAuthenticator

        return SingleKeyAuthenticator(self.secrets)

    @property
    def tool_modules(self) -> list[str]:
        return list(self.settings.tool_modules)

    @cached_property
    def api(self) -> Api:
        return Api(self)


_lock = threading.Lock()
_current: Runtime | None = None


def current() -> Runtime:
    """The process-wide runtime from the environment (warm invocations reuse it)."""
    global _current
    with _lock:
        if _current is None:
            _current = Runtime(Settings.from_env())
        return _current


def reset() -> None:
    """Forget the process-wide runtime (tests switch settings between cases)."""
    global _current
    with _lock:
        _current = None


def build_engine(settings: Settings) -> Engine:
    return Runtime(settings).engine
