"""The :class:`Api` every entry point calls, over the one registry of this API's routes.

The top of the package: it mounts the public routes (always loaded) and the /v1 routes
(imported by the first request under /v1/), then maps every outcome to a response: correlation
id, body size limit, authentication, and errors as JSON (never a leaked traceback).
"""

from __future__ import annotations

import logging
import os

from agentfn.api import _console, _public
from agentfn.api._http import MAX_BODY_BYTES, Request, Response, error_response
from agentfn.api._routing import Call, Registry, Routes, Services
from agentfn.correlation import correlation_id as correlation
from agentfn.errors import AgentfnError, Forbidden, InternalError, PayloadTooLarge
from agentfn.pii import masking
from agentfn.roles import allowed

log = logging.getLogger("agentfn.api")


def _v1_routes() -> Routes:
    # pydantic, the models and the tool registry: not on /healthz
    from agentfn.api import _admin, _v1

    mounted = Routes()
    for route in (*_v1.routes, *_admin.routes):
        mounted.add(route)
    return mounted


def _eager_routes() -> Routes:
    eager = Routes()
    for route in (*_public.routes, *_console.routes):
        eager.add(route)
    return eager


REGISTRY = Registry(_eager_routes(), lazy={"/v1/": _v1_routes})


def new_correlation_id() -> str:
    """128 random bits in hex, as uuid4().hex gives, without importing ``uuid``: it loads
    ``platform`` (several ms of a cold start) to find a MAC address uuid4 never uses."""
    return os.urandom(16).hex()


class Api:
    def __init__(self, services: Services, registry: Registry = REGISTRY) -> None:
        self.services = services
        self.registry = registry

    def handle(self, request: Request) -> Response:
        correlation_id = request.headers.get("x-correlation-id") or new_correlation_id()
        headers = {"x-correlation-id": correlation_id}
        token = masking.set(False)  # until the caller's tenant says
        bound = correlation.set(correlation_id)  # every line this request logs carries it
        try:
            response = self._dispatch(request, correlation_id)
        except AgentfnError as exc:
            return error_response(exc, {**headers, **exc.headers()})
        except Exception:  # a bug or an outage: log it, never leak its details to the caller
            log.exception("unhandled error", extra={"correlation_id": correlation_id})
            return error_response(InternalError("internal error"), headers)
        finally:
            masking.reset(token)
            correlation.reset(bound)
        response.headers.update(headers)
        return response

    def _dispatch(self, request: Request, correlation_id: str) -> Response:
        if len(request.body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"body exceeds the limit of {MAX_BODY_BYTES} bytes", field="body")
        path = request.path.rstrip("/") or "/"
        route, params = self.registry.resolve(request.method, path)
        if route.public:
            call = Call(request, params, None, correlation_id, self.registry)
            return route.handler(self.services, call)
        principal = self.services.authenticator.authenticate(request.headers)
        services = self.services.for_tenant(principal.tenant)
        masking.set(services.tenant_settings.get().mask_pii)  # reset by ``handle``
        services.quotas.admit_request(principal.key_id)
        if route.permission is not None and not allowed(principal.roles, route.permission):
            services.audit.record(
                principal.key_id,
                "role.denied",
                f"{route.method} {route.path}",
                roles=sorted(principal.roles),
                permission=route.permission.value,
            )
            raise Forbidden(
                f"this key's role ({', '.join(sorted(principal.roles))}) does not grant "
                f"{route.permission.value!r}, which {route.method} {route.path} needs",
                field="authorization",
            )
        call = Call(request, params, principal, correlation_id, self.registry)
        return route.handler(services, call)
