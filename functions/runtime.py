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

from agentfn.api import Api, Request, Response
from agentfn.settings import Settings
from agentfn.tenancy import DEFAULT_TENANT, check_tenant

if TYPE_CHECKING:
    from agentfn.api_keys import KeyStore
    from agentfn.audit import AuditLog
    from agentfn.auth import Authenticator
    from agentfn.cached_record import CachedRecord
    from agentfn.catalog import Catalog
    from agentfn.engine import Engine
    from agentfn.ledger import Ledger
    from agentfn.model_spec import ModelSpec
    from agentfn.ports import BlobStore, FactSearch, Model, Queue, QueueMessage, SecretStore
    from agentfn.quotas import TenantQuotas
    from agentfn.telemetry import Observer
    from agentfn.tenant_settings import TenantSettings

# Adapters, the engine and the catalog are imported on first use, not at cold start: a
# function instance answering /healthz never loads them.


@dataclass
class Runtime:
    settings: Settings
    # Extra health components (``agentfn serve`` reports its workers); none on the clouds,
    # where the platform supervises function instances.
    probes: dict[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)
    _tenants: dict[str, TenantServices] = field(default_factory=dict, init=False, repr=False)
    telemetry_on: bool = field(default=False, init=False)  # agentfn installed an OTLP SDK
    _tenants_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

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

    @property
    def engine(self) -> Engine:
        """Tenant ``default``'s engine; it hands each job of another tenant to that tenant's."""
        return self.for_tenant(DEFAULT_TENANT).engine

    @property
    def catalog(self) -> Catalog:
        return self.for_tenant(DEFAULT_TENANT).catalog

    @property
    def audit(self) -> AuditLog:
        return self.for_tenant(DEFAULT_TENANT).audit

    @property
    def quotas(self) -> TenantQuotas:
        return self.for_tenant(DEFAULT_TENANT).quotas

    @property
    def tenant_settings(self) -> CachedRecord[TenantSettings]:
        return self.for_tenant(DEFAULT_TENANT).tenant_settings

    @property
    def ledger(self) -> Ledger:
        return self.for_tenant(DEFAULT_TENANT).ledger

    def for_tenant(self, tenant: str) -> TenantServices:
        """One tenant's services over its prefix of the store, built once per process."""
        with self._tenants_lock:
            services = self._tenants.get(tenant)
            if services is None:
                services = self._tenants[tenant] = TenantServices(self, check_tenant(tenant))
            return services

    @cached_property
    def memory_search(self) -> FactSearch | None:
        """The deployment's index of remembered facts, if it plugs one in (one per process:
        its spaces keep tenants apart)."""
        if not self.settings.memory_search:
            return None
        from agentfn.memory_search import load_fact_search

        return load_fact_search(self.settings.memory_search, self.settings.project)

    @cached_property
    def keys(self) -> KeyStore:
        from agentfn.api_keys import KeyStore

        return KeyStore(self.blobs)

    @cached_property
    def authenticator(self) -> Authenticator:
        from agentfn.auth import KeyAuthenticator, SingleKeyAuthenticator

        return KeyAuthenticator(self.keys, SingleKeyAuthenticator(self.secrets))

    @property
    def tool_modules(self) -> list[str]:
        return list(self.settings.tool_modules)

    def health(self) -> dict[str, Any]:
        return {name: probe() for name, probe in self.probes.items()}

    def serve(self, request: Request) -> Response:
        """One HTTP request, for the entry points whose instance may freeze after answering."""
        response = self.api.handle(request)
        self.flush_telemetry()
        return response

    def flush_telemetry(self) -> None:
        """Export buffered spans and metrics before the platform freezes the instance."""
        if self.telemetry_on:
            from agentfn.telemetry import flush

            flush()

    @cached_property
    def api(self) -> Api:
        return Api(self)


@dataclass
class TenantServices:
    """What a /v1 handler sees once the key named its tenant: that tenant's engine, catalog
    and audit log, each over the tenant's own prefix of the store (``tenants/<tenant>/``)."""

    runtime: Runtime
    tenant: str

    @cached_property
    def blobs(self) -> BlobStore:
        from agentfn.tenant_blobs import tenant_blobs

        return tenant_blobs(self.runtime.blobs, self.tenant)

    @cached_property
    def engine(self) -> Engine:
        from agentfn.adapters.models.factory import build_model
        from agentfn.engine import Engine
        from agentfn.ledger import LedgerObserver
        from agentfn.telemetry import Observers, OtelObserver, configure

        rt = self.runtime
        rt.telemetry_on = configure() or rt.telemetry_on  # OTLP when OTEL_* asks, once
        secrets, settings = rt.secrets, rt.settings
        policy = settings.model_policy

        quotas = self.quotas

        def model_factory(spec: ModelSpec, base_dir: Path) -> Model:
            from agentfn.metered_model import MeteredModel

            policy.check(spec)  # also for workflows stored before the policy changed
            return MeteredModel(build_model(spec, secrets=secrets, base_dir=base_dir), quotas)

        return Engine(
            self.blobs,
            rt.queue,
            model_factory=model_factory,
            lease_s=settings.lease_s,
            delivery_limit=settings.max_attempts,
            step_timeout_s=settings.step_timeout_s,
            tenant=self.tenant,
            engines=lambda tenant: rt.for_tenant(tenant).engine,
            quotas=quotas,
            masks=lambda: self.tenant_settings.get().mask_pii,
            memory_search=rt.memory_search,
            observer=Observers(
                OtelObserver(), LedgerObserver(self.ledger), *(make() for make in OBSERVERS)
            ),
        )

    @cached_property
    def catalog(self) -> Catalog:
        from agentfn.catalog import Catalog

        settings = self.runtime.settings
        return Catalog(
            self.blobs,
            settings.project,
            settings.model_policy,
            delivery_limit=settings.max_attempts,
            step_timeout_s=settings.step_timeout_s,
        )

    @cached_property
    def audit(self) -> AuditLog:
        from agentfn.audit import AuditLog

        return AuditLog(self.blobs)

    @cached_property
    def ledger(self) -> Ledger:
        from agentfn.ledger import Ledger

        return Ledger(self.blobs)

    @cached_property
    def tenant_settings(self) -> CachedRecord[TenantSettings]:
        """What the tenant chose for itself (``PUT /v1/settings``)."""
        from agentfn.cached_record import CachedRecord
        from agentfn.tenant_settings import SETTINGS_KEY, TenantSettings

        return CachedRecord(self.blobs, SETTINGS_KEY, TenantSettings)

    @cached_property
    def quotas(self) -> TenantQuotas:
        from agentfn.quotas import TenantQuotas

        audit = self.audit

        def audited(actor: str, quota: str, details: dict[str, Any]) -> None:
            audit.record(actor, "quota.exceeded", quota, **details)

        return TenantQuotas(self.blobs, on_refusal=audited)

    @property
    def keys(self) -> KeyStore:
        return self.runtime.keys

    @property
    def authenticator(self) -> Authenticator:
        return self.runtime.authenticator

    @property
    def tool_modules(self) -> list[str]:
        return self.runtime.tool_modules

    def health(self) -> dict[str, Any]:
        return self.runtime.health()

    def for_tenant(self, tenant: str) -> TenantServices:
        return self.runtime.for_tenant(tenant)


log = logging.getLogger("agentfn.worker")
# Observers a platform adds beside OpenTelemetry's (Lambda: EMF metrics, X-Ray subsegments),
# registered by its entry-point module as it is imported.
OBSERVERS: list[Callable[[], Observer]] = []
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
    rt.flush_telemetry()
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
