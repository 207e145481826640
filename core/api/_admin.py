"""The tenant's own /v1 routes: its API keys, audit log, usage beside its limits, settings,
metrics and costs.

Every route acts on the caller's own tenant (the one its key belongs to), so an admin can
neither see nor change another tenant's keys. Each key change is written to the audit log
with the acting key's id.
"""

from __future__ import annotations

from agentfn.api import _models as m
from agentfn.api._http import Response, json_response
from agentfn.api._routing import CURSOR, LIMIT, Call, QueryParam, Routes, Services
from agentfn.api_keys import ApiKeyCreated, ApiKeyView
from agentfn.audit import AuditPage
from agentfn.auth import Principal
from agentfn.errors import ValidationFailed
from agentfn.ledger import MAX_DAYS, check_days, costs_csv
from agentfn.quotas import Usage
from agentfn.roles import Permission
from agentfn.tenant_settings import TenantSettings

routes = Routes()


def _caller(call: Call) -> Principal:
    assert call.principal is not None  # these routes are not public
    return call.principal


@routes.route(
    "POST",
    "/v1/api-keys",
    summary="Create an API key for this tenant; the key is in this answer only",
    permission=Permission.admin,
    status=201,
    body=m.CreateApiKey,
    response=ApiKeyCreated,
)
def create_api_key(services: Services, call: Call) -> Response:
    body = call.body(m.CreateApiKey)
    caller = _caller(call)
    keys = services.keys
    if body.expires_at is not None and body.expires_at <= keys.clock():
        raise ValidationFailed("expires_at must be in the future", field="expires_at")
    created = keys.create(
        caller.tenant,
        body.role,
        name=body.name,
        created_by=caller.key_id,
        expires_at=body.expires_at,
    )
    services.audit.record(caller.key_id, "key.created", created.id, role=created.role.value)
    return json_response(201, created, {"location": f"/v1/api-keys/{created.id}"})


@routes.route(
    "GET",
    "/v1/api-keys",
    summary="This tenant's API keys (never their secrets)",
    permission=Permission.admin,
    response=m.ApiKeyList,
)
def list_api_keys(services: Services, call: Call) -> Response:
    return json_response(200, m.ApiKeyList(items=services.keys.list(_caller(call).tenant)))


@routes.route(
    "POST",
    "/v1/api-keys/{key_id}/rotate",
    summary="A new secret for a key; the old one stops working at once",
    permission=Permission.admin,
    response=ApiKeyCreated,
)
def rotate_api_key(services: Services, call: Call) -> Response:
    caller = _caller(call)
    rotated = services.keys.rotate(caller.tenant, call.params["key_id"])
    services.audit.record(caller.key_id, "key.rotated", rotated.id)
    return json_response(200, rotated)


@routes.route(
    "DELETE",
    "/v1/api-keys/{key_id}",
    summary="Revoke a key: it stops working at once and stays listed as revoked",
    permission=Permission.admin,
    response=ApiKeyView,
)
def revoke_api_key(services: Services, call: Call) -> Response:
    caller = _caller(call)
    revoked = services.keys.revoke(caller.tenant, call.params["key_id"])
    services.audit.record(caller.key_id, "key.revoked", revoked.id)
    return json_response(200, revoked)


@routes.route(
    "GET",
    "/v1/audit",
    summary="This tenant's audit log, newest first",
    permission=Permission.admin,
    response=AuditPage,
    query=(LIMIT, CURSOR),
)
def list_audit(services: Services, call: Call) -> Response:
    cursor = call.request.query.get("cursor") or None
    return json_response(200, services.audit.page(cursor=cursor, limit=call.limit()))


@routes.route(
    "GET",
    "/v1/usage",
    summary="This tenant's limits and what it has used of them in the current windows",
    permission=Permission.admin,
    response=Usage,
)
def get_usage(services: Services, call: Call) -> Response:
    return json_response(200, services.quotas.usage())


@routes.route(
    "GET",
    "/v1/settings",
    summary="This tenant's settings",
    permission=Permission.admin,
    response=TenantSettings,
)
def get_settings(services: Services, call: Call) -> Response:
    return json_response(200, services.tenant_settings.get())


@routes.route(
    "PUT",
    "/v1/settings",
    summary="Replace this tenant's settings (e.g. mask personal data in logs and the prompt log)",
    permission=Permission.admin,
    body=TenantSettings,
    response=TenantSettings,
)
def put_settings(services: Services, call: Call) -> Response:
    settings = services.tenant_settings.put(call.body(TenantSettings))
    services.audit.record(call.actor, "settings.changed", "settings", **settings.model_dump())
    return json_response(200, settings)


DAYS = QueryParam("days", {"type": "integer", "minimum": 1, "maximum": MAX_DAYS})


@routes.route(
    "GET",
    "/v1/metrics",
    summary="This tenant's runs, steps, retries, dead letters, tokens, cost and run time per "
    "day (the last `days`, today included)",
    permission=Permission.read,
    response=m.MetricsView,
    query=(DAYS,),
)
def get_metrics(services: Services, call: Call) -> Response:
    days = check_days(call.request.query.get("days"))
    return json_response(200, m.MetricsView(days=services.ledger.metrics(days)))


@routes.route(
    "GET",
    "/v1/costs",
    summary="This tenant's cost per day, workflow and agent (the last `days`)",
    permission=Permission.admin,
    response=m.CostList,
    query=(DAYS,),
)
def get_costs(services: Services, call: Call) -> Response:
    days = check_days(call.request.query.get("days"), default=30)
    return json_response(200, m.CostList(items=services.ledger.costs(days)))


@routes.route(
    "GET",
    "/v1/costs.csv",
    summary="The same costs as CSV: day, workflow, agent, calls, tokens, cost_usd",
    permission=Permission.admin,
    query=(DAYS,),
    media="text/csv",
)
def get_costs_csv(services: Services, call: Call) -> Response:
    days = check_days(call.request.query.get("days"), default=30)
    body = costs_csv(services.ledger.costs(days)).encode()
    disposition = 'attachment; filename="agentfn-costs.csv"'
    return Response(200, body, {"content-type": "text/csv", "content-disposition": disposition})
