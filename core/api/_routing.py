"""The route registry: each route's method, path, handler, auth and OpenAPI facts, stated once.

A module declares its routes with the decorator of its own :class:`Routes` group, on the
handler functions themselves. A :class:`Registry` orders the groups, matches requests and lists
every route for the OpenAPI document. A group can be mounted under a path prefix and loaded on
the first request under it, so a cold start answering /healthz never imports the modules (and
pydantic) behind /v1. This module imports neither those modules nor pydantic.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar

from agentfn.api._http import BaseModelT, Request, Response, parse_json_body
from agentfn.errors import MethodNotAllowed, NotFound, ValidationFailed
from agentfn.roles import Permission

if TYPE_CHECKING:
    from pydantic import BaseModel

    from agentfn.api_keys import KeyStore
    from agentfn.audit import AuditLog
    from agentfn.auth import Authenticator, Principal
    from agentfn.cached_record import CachedRecord
    from agentfn.catalog import Catalog
    from agentfn.engine import Engine
    from agentfn.ledger import Ledger
    from agentfn.quotas import TenantQuotas
    from agentfn.tenant_settings import TenantSettings

# A route names its models for the OpenAPI document either as the class or as a function
# returning it: the latter lets a light module (the public routes) document a response without
# importing pydantic until the document is built.
ModelRef: TypeAlias = "type[BaseModel] | Callable[[], type[BaseModel]]"
PARAM = r"(?P<\1>[A-Za-z0-9_.~-]{1,128})"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class Services(Protocol):
    """What the API needs; built lazily so /healthz never pays for storage or SDK imports.

    The entry point hands the API the deployment's services; a /v1 handler gets
    ``for_tenant(<the key's tenant>)``, whose engine, catalog and audit log see only that
    tenant's records.
    """

    @property
    def engine(self) -> Engine: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def keys(self) -> KeyStore: ...

    @property
    def quotas(self) -> TenantQuotas: ...

    @property
    def tenant_settings(self) -> CachedRecord[TenantSettings]: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def authenticator(self) -> Authenticator: ...

    @property
    def tool_modules(self) -> list[str]: ...

    def health(self) -> dict[str, Any]:
        """Components beside the API itself (e.g. ``agentfn serve``'s workers); each is a
        mapping with ``ok``. Must stay cheap: /healthz calls it on a cold start."""

    def for_tenant(self, tenant: str) -> Services: ...


@dataclass
class Call:
    """One request being served: the request, its path parameters, who is calling, and the
    registry that routed it (the OpenAPI handler documents that registry)."""

    request: Request
    params: dict[str, str]
    principal: Principal | None
    correlation_id: str
    registry: Registry

    def body(self, model: type[BaseModelT]) -> BaseModelT:
        return parse_json_body(self.request, model)

    @property
    def actor(self) -> str:
        """Who the audit log names for what this call does: the calling key's id."""
        return self.principal.key_id if self.principal is not None else "anonymous"

    def limit(self, default: int = 50, maximum: int = 200) -> int:
        """The ``limit`` query parameter of a listing, checked."""
        raw = self.request.query.get("limit", str(default))
        try:
            limit = int(raw)
        except ValueError:
            raise ValidationFailed("limit must be an integer", field="limit") from None
        if not 1 <= limit <= maximum:
            raise ValidationFailed(f"limit must be between 1 and {maximum}", field="limit")
        return limit


Handler = Callable[[Services, Call], Response]
HandlerT = TypeVar("HandlerT", bound=Callable[[Services, Call], Response])


@dataclass(frozen=True)
class QueryParam:
    """A documented query parameter (the handler validates it)."""

    name: str
    schema: Mapping[str, Any]


# The query parameters every listing takes (``Call.limit`` checks the first).
LIMIT = QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 200})
CURSOR = QueryParam("cursor", {"type": "string"})


@dataclass(frozen=True)
class Route:
    """One route: how it is matched, what serves it, and what the OpenAPI document says."""

    method: str
    path: str  # a template: ``{name}`` matches one path segment, passed in ``Call.params``
    handler: Handler
    public: bool = False  # no authentication
    # What the caller's role must grant (see ``agentfn.roles``); every non-public route says.
    permission: Permission | None = None
    summary: str = ""
    status: int = 200  # the success status
    body: ModelRef | None = None  # a JSON body model
    text_body: str | None = None  # or: a required text body of this media type
    response: ModelRef | None = None  # None: documented as any JSON object
    query: tuple[QueryParam, ...] = ()
    media: str = "application/json"  # what a success answers with

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"{self.method!r} is not an HTTP method this API serves")
        if self.body is not None and self.text_body is not None:
            raise ValueError(f"{self.method} {self.path}: a JSON body or a text body, not both")
        if self.public == (self.permission is not None):
            raise ValueError(
                f"{self.method} {self.path}: a route is public or needs a permission, not both "
                "or neither"
            )

    @property
    def pattern(self) -> re.Pattern[str]:
        """The path template as a regex, compiled on first use: a cold start matches a few
        routes, not every one it declares."""
        return _compile_template(self.path)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)


class Routes:
    """One module's routes in declaration order; ``@routes.route(...)`` declares a handler's."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        permission: Permission | None = None,
        public: bool = False,
        status: int = 200,
        body: ModelRef | None = None,
        text_body: str | None = None,
        response: ModelRef | None = None,
        query: Sequence[QueryParam] = (),
        media: str = "application/json",
    ) -> Callable[[HandlerT], HandlerT]:
        def declare(handler: HandlerT) -> HandlerT:
            self.add(
                Route(
                    method=method,
                    path=path,
                    handler=handler,
                    public=public,
                    permission=permission,
                    summary=summary,
                    status=status,
                    body=body,
                    text_body=text_body,
                    response=response,
                    query=tuple(query),
                    media=media,
                )
            )
            return handler

        return declare

    def add(self, route: Route) -> None:
        _check_unique([*self._routes, route])
        self._routes.append(route)

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)


class Registry:
    """Every route of the API: one group always loaded, then groups mounted under a prefix
    (e.g. ``/v1/``) and loaded by the first request under it or by :meth:`routes`."""

    def __init__(
        self, routes: Routes, lazy: Mapping[str, Callable[[], Routes]] | None = None
    ) -> None:
        self._eager = routes
        self._lazy = dict(lazy or {})
        self._loaded: dict[str, Routes] = {}
        self._lock = threading.Lock()  # threaded servers: one load, one check per group

    def _group(self, prefix: str) -> Routes:
        group = self._loaded.get(prefix)
        if group is None:
            with self._lock:
                group = self._loaded.get(prefix)
                if group is None:
                    group = self._lazy[prefix]()
                    for route in group:
                        if not route.path.startswith(prefix):
                            raise RuntimeError(
                                f"{route.method} {route.path} is mounted under {prefix}: "
                                "unreachable"
                            )
                    loaded = [r for g in self._loaded.values() for r in g]
                    _check_unique([*self._eager, *loaded, *group])
                    self._loaded[prefix] = group
        return group

    def routes(self) -> list[Route]:
        """Every route, in order; loads every lazy group (the OpenAPI document lists them)."""
        return [*self._eager, *(r for prefix in self._lazy for r in self._group(prefix))]

    def _candidates(self, path: str) -> Iterator[Route]:
        yield from self._eager
        for prefix in self._lazy:
            if path.startswith(prefix):
                yield from self._group(prefix)

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route serving ``method path`` and its path parameters; 404 or 405 otherwise."""
        allowed = []
        for route in self._candidates(path):
            match = route.pattern.match(path)
            if match is None:
                continue
            if route.method != method:
                allowed.append(route.method)
                continue
            return route, match.groupdict()
        if allowed:
            exc = MethodNotAllowed(
                f"{method} is not allowed on {path}; use {', '.join(sorted(allowed))}"
            )
            exc.field = ", ".join(sorted(allowed))
            raise exc
        raise NotFound(f"no route for {method} {path}", field="path")


@functools.cache
def _compile_template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", PARAM, path) + "$")


def _check_unique(routes: list[Route]) -> None:
    seen: set[tuple[str, str]] = set()
    for route in routes:
        key = (route.method, route.path)
        if key in seen:
            raise ValueError(f"{route.method} {route.path} is declared twice")
        seen.add(key)
