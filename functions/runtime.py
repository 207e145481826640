"""Composition root: settings → adapters → engine and API. Every entry point builds here.

Entry points keep one :class:`Runtime` per process (built on first use, reused while the
function instance stays warm), so adapters and clients are created once, not per request.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentfn.api import Api
from agentfn.settings import Settings

if TYPE_CHECKING:
    from agentfn.auth import Authenticator
    from agentfn.catalog import Catalog
    from agentfn.engine import Engine
    from agentfn.model_spec import ModelSpec
    from agentfn.ports import BlobStore, Model, Queue, QueueMessage, SecretStore

# Adapters, the engine and the catalog are imported on first use, not at cold start: a
# function instance answering /healthz never loads them.


@dataclass
class Runtime:
    settings: Settings
    # Extra health components (``agentfn serve`` reports its workers); none on the clouds,
    # where the platform supervises function instances.
    probes: dict[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)

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

        secrets, policy = self.secrets, self.settings.model_policy

        def model_factory(spec: ModelSpec, base_dir: Path) -> Model:
            policy.check(spec)  # also for workflows stored before the policy changed
            return build_model(spec, secrets=secrets, base_dir=base_dir)

        return Engine(
            self.blobs,
            self.queue,
            model_factory=model_factory,
            lease_s=self.settings.lease_s,
            delivery_limit=self.settings.max_attempts,
            step_timeout_s=self.settings.step_timeout_s,
        )

    @cached_property
    def catalog(self) -> Catalog:
        from agentfn.catalog import Catalog

        return Catalog(
            self.blobs,
            self.settings.project,
            self.settings.model_policy,
            delivery_limit=self.settings.max_attempts,
            step_timeout_s=self.settings.step_timeout_s,
        )

    @cached_property
    def authenticator(self) -> Authenticator:
        from agentfn.auth import SingleKeyAuthenticator

        return SingleKeyAuthenticator(self.secrets)

    @property
    def tool_modules(self) -> list[str]:
        return list(self.settings.tool_modules)

    def health(self) -> dict[str, Any]:
        return {name: probe() for name, probe in self.probes.items()}

    @cached_property
    def api(self) -> Api:
        return Api(self)


log = logging.getLogger("agentfn.worker")
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


# ---------------------------------------------------------------- queue-triggered entry points


class StepNotSettled(Exception):
    """The job must run again later: the entry point fails so its platform redelivers it.

    Lambda reports the record in ``batchItemFailures`` after setting its visibility to
    ``retry_after``; Azure Functions fails the invocation and its host redelivers the message;
    the Cloud Functions worker re-publishes the job due after ``retry_after`` (the delay the
    engine asked for; None = at once).
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def job_body(raw: object) -> dict[str, Any]:
    """A delivered message's JSON body; anything else is wrapped, for the engine to dead-letter
    with the reason (a malformed job is never silently dropped)."""
    value: object = raw
    if isinstance(raw, str | bytes):
        try:
            value = json.loads(raw)
        except ValueError:
            text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
            return {"raw": text}
    return value if isinstance(value, dict) else {"raw": value}


def correlation_of(body: dict[str, Any]) -> str:
    """The job's correlation id, bound for everything the invocation logs."""
    from agentfn.correlation import bind
    from agentfn.events.cloudevents import job_of

    cid = str(job_of(body).get("cid", ""))
    bind(cid)
    return cid


def handle_triggered(
    message: QueueMessage, *, report: Callable[[str, dict[str, Any]], None] | None = None
) -> str:
    """Run one platform-delivered job; raise :class:`StepNotSettled` if it must come back.

    The platform owns the message: success deletes it, failure redelivers it, so the engine
    settles through a :class:`~agentfn.delivery.TriggerAcker` instead of the queue.
    ``report(outcome, job)`` is the platform's logging and metrics (Powertools on Lambda).
    """
    from agentfn.delivery import TriggerAcker
    from agentfn.events.cloudevents import job_of

    rt = current()
    acker = TriggerAcker(rt.queue)
    outcome = rt.engine.handle(message, acker)
    job = job_of(message.body)
    (report or _log_outcome)(outcome, job)
    if acker.failed:
        raise StepNotSettled(
            f"step {job.get('step')!r} of run {job.get('run')!r}: {outcome}",
            retry_after=acker.retry_after,
        )
    return outcome


def _log_outcome(outcome: str, job: dict[str, Any]) -> None:
    from agentfn.correlation import correlation_id

    extra = {"outcome": outcome, "step": job.get("step"), "correlation_id": correlation_id.get()}
    log.info("job handled", extra=extra)
