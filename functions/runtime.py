"""Composition root: settings → adapters → engine. Every entry point builds its engine here."""

from __future__ import annotations

from pathlib import Path

from adapters.models.factory import build_model
from adapters.registry import open_blobstore, open_queue, open_secrets
from core.engine import Engine
from core.model_spec import ModelSpec
from core.ports import Model
from core.settings import Settings


def build_engine(settings: Settings, *, worker: str | None = None) -> Engine:
    blobs = open_blobstore(settings.storage)
    queue = open_queue(settings.queue, max_attempts=settings.max_attempts)
    secrets = open_secrets(settings.secrets)

    def model_factory(spec: ModelSpec, base_dir: Path) -> Model:
        return build_model(spec, secrets=secrets, base_dir=base_dir)

    return Engine(
        blobs, queue, model_factory=model_factory, lease_s=settings.lease_s, worker=worker
    )
