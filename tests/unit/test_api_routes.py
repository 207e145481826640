"""The route registry is the API's only table of routes, and /healthz stays a light cold path.

- every route in the registry is in /openapi.json with its method, path and facts, and nothing
  else is; handlers are the functions themselves; no two routes share a method and path;
- the api modules import each other in one direction only (no cycle);
- a fresh interpreter answering GET /healthz loads neither pydantic, the engine, the catalog
  nor a cloud SDK.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agentfn.api import REGISTRY, Api, Call, Registry, Request, Response, Routes, json_response
from agentfn.errors import NotFound
from agentfn.roles import Permission

API_DIR = Path(__file__).resolve().parents[2] / "core" / "api"
# bottom first: a module may import only modules listed before it (this is also the docstring's
# order in core/api/__init__.py)
LAYERS = [
    "_http",
    "_routing",
    "_models",
    "_sse",
    "_openapi",
    "_v1",
    "_admin",
    "_console",
    "_public",
    "_app",
    "__init__",
]
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


class NoServices:
    """A services object for public routes and custom registries: any use is a test failure."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the route touched services.{name}")

    def health(self) -> dict[str, Any]:
        return {}  # /healthz asks every Services for its components


def openapi_document() -> dict[str, Any]:
    reply = Api(NoServices()).handle(Request("GET", "/openapi.json"))
    assert reply.status == 200, reply.body
    document: dict[str, Any] = reply.json()
    return document


# --------------------------------------------------------------------- the one table


def test_the_document_lists_exactly_the_registry() -> None:
    routes = REGISTRY.routes()
    paths = openapi_document()["paths"]
    documented = {(m.upper(), path) for path, ops in paths.items() for m in ops if m in METHODS}
    assert documented == {(r.method, r.path) for r in routes}
    for route in routes:
        op = paths[route.path][route.method.lower()]
        assert op["summary"] == route.summary and route.summary
        assert op["operationId"] == route.handler.__name__
        assert str(route.status) in op["responses"]
        assert ("security" in op) is not route.public
        names = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
        assert names == route.path_params


def test_the_document_keeps_the_registry_order() -> None:
    expected: dict[str, list[str]] = {}
    for route in REGISTRY.routes():
        expected.setdefault(route.path, []).append(route.method.lower())
    paths = openapi_document()["paths"]
    assert [(path, list(ops)) for path, ops in paths.items()] == list(expected.items())
    assert next(iter(expected)) == "/healthz"


def test_every_handler_is_a_function_and_no_two_routes_share_method_and_path() -> None:
    routes = REGISTRY.routes()
    assert len(routes) == 38
    for route in routes:
        assert inspect.isfunction(route.handler), route
        assert route.handler.__module__.startswith("agentfn.api."), route
        assert list(inspect.signature(route.handler).parameters) == ["services", "call"]
    twice = [key for key, n in Counter((r.method, r.path) for r in routes).items() if n > 1]
    assert twice == []


def test_only_health_and_the_document_are_public_and_v1_is_mounted_lazily() -> None:
    public = {(r.method, r.path) for r in REGISTRY.routes() if r.public}
    assert public == {
        ("GET", "/healthz"),
        ("GET", "/openapi.json"),
        ("GET", "/"),
        ("GET", "/console/{asset}"),
    }
    assert all(r.path.startswith("/v1/") for r in REGISTRY.routes() if not r.public)


def test_every_route_is_public_or_declares_the_permission_it_needs() -> None:
    paths = openapi_document()["paths"]
    for route in REGISTRY.routes():
        assert route.public == (route.permission is None), route
        documented = paths[route.path][route.method.lower()].get("x-agentfn-permission")
        assert documented == (route.permission.value if route.permission else None), route
    with pytest.raises(ValueError, match="public or needs a permission"):
        Routes().route("GET", "/v1/x", summary="x")(lambda services, call: json_response(200, 1))
    with pytest.raises(ValueError, match="public or needs a permission"):
        Routes().route("GET", "/x", public=True, permission=Permission.read, summary="x")(
            lambda services, call: json_response(200, 1)
        )


def test_the_document_builder_holds_no_route_of_its_own() -> None:
    tree = ast.parse((API_DIR / "_openapi.py").read_text())
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    assert [s for s in strings if isinstance(s, str) and s.startswith("/")] == []


# --------------------------------------------------------------------- the registry's rules


def test_a_route_declared_twice_is_refused() -> None:
    routes = Routes()

    @routes.route("GET", "/x", public=True, summary="x")
    def first(services: Any, call: Call) -> Response:
        return json_response(200, {})

    with pytest.raises(ValueError, match="declared twice"):
        routes.route("GET", "/x", public=True, summary="again")(first)


def test_a_lazy_group_outside_its_prefix_or_clashing_is_refused() -> None:
    stray = Routes()
    stray.route("GET", "/v2/elsewhere", public=True, summary="x")(
        lambda services, call: json_response(200, 1)
    )
    registry = Registry(Routes(), lazy={"/v1/": lambda: stray})
    with pytest.raises(RuntimeError, match="unreachable"):
        registry.routes()

    eager, clash = Routes(), Routes()
    eager.route("GET", "/v1/a", public=True, summary="x")(
        lambda services, call: json_response(200, 1)
    )
    clash.route("GET", "/v1/a", public=True, summary="x")(
        lambda services, call: json_response(200, 2)
    )
    with pytest.raises(ValueError, match="declared twice"):
        Registry(eager, lazy={"/v1/": lambda: clash}).routes()


def test_the_api_dispatches_only_through_its_registry() -> None:
    loads: list[str] = []
    eager, lazy = Routes(), Routes()

    @eager.route("GET", "/ping", public=True, summary="ping")
    def ping(services: Any, call: Call) -> Response:
        return json_response(200, {"pong": call.correlation_id})

    @lazy.route("POST", "/later/{id}", public=True, summary="later")
    def later(services: Any, call: Call) -> Response:
        return json_response(201, call.params)

    def load() -> Routes:
        loads.append("later")
        return lazy

    api = Api(NoServices(), Registry(eager, lazy={"/later/": load}))
    reply = api.handle(Request("GET", "/ping/", headers={"X-Correlation-Id": "c1"}))
    assert (reply.status, reply.json()) == (200, {"pong": "c1"}) and loads == []
    assert api.handle(Request("GET", "/healthz")).status == NotFound.status  # not this registry
    assert loads == []
    assert api.handle(Request("POST", "/later/a1")).json() == {"id": "a1"}
    wrong = api.handle(Request("GET", "/later/a1"))
    assert (wrong.status, wrong.headers["allow"]) == (405, "POST")
    assert loads == ["later"]  # loaded once, on the first request under its prefix


def test_concurrent_first_requests_load_a_lazy_group_once() -> None:
    loads: list[int] = []
    lazy = Routes()
    lazy.route("GET", "/v1/a", public=True, summary="a")(lambda s, c: json_response(200, 1))

    def load() -> Routes:
        loads.append(1)
        time.sleep(0.05)  # every thread arrives while the group is loading
        return lazy

    registry = Registry(Routes(), lazy={"/v1/": load})
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: registry.resolve("GET", "/v1/a")[0].path, range(8)))
    assert found == ["/v1/a"] * 8 and loads == [1]


# --------------------------------------------------------------------- module layering


def _api_imports(path: Path) -> set[str]:
    """The agentfn.api modules a file imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "agentfn.api":
                found.update(a.name for a in node.names)
            elif node.module.startswith("agentfn.api."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.count(".") >= 2)
    return {name for name in found if name in LAYERS}


def test_each_api_module_imports_only_modules_below_it() -> None:
    assert sorted(p.stem for p in API_DIR.glob("*.py")) == sorted(LAYERS)
    for index, name in enumerate(LAYERS):
        imported = _api_imports(API_DIR / f"{name}.py")
        above = imported - set(LAYERS[:index])
        assert not above, f"{name} imports {sorted(above)}, which are not below it"
    assert "_v1" in _api_imports(API_DIR / "_app.py")  # the check sees function-level imports


# --------------------------------------------------------------------- the cold path

COLD = """
import json, sys
before = set(sys.modules)  # what the interpreter loaded before any agentfn code (.pth files)
from agentfn.api import Request
from agentfn.functions import runtime
reply = runtime.current().api.handle(Request("GET", "/healthz"))
health = sorted(set(sys.modules) - before)
assert reply.status == 200, reply.body
runtime.current().api.handle(Request("GET", "/v1/runs"))
v1 = sorted(set(sys.modules) - before)
print(json.dumps({"health": health, "v1": v1, "body": reply.json()}))
"""
HEAVY = ("pydantic", "agentfn.engine", "agentfn.catalog", "boto3", "google.cloud", "azure")


def _loaded(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_a_cold_start_answering_healthz_imports_nothing_heavy(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTFN_")}
    env["AGENTFN_HOME"] = str(tmp_path / "home")  # the local defaults, under a scratch folder
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(COLD)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["body"]["status"] == "ok"
    heavy = [name for name in (*HEAVY, "agentfn.api._v1") if _loaded(seen["health"], name)]
    assert heavy == [], f"GET /healthz imported {heavy}"
    # the same check sees the load once a /v1 request (here a 401) brings the v1 routes in
    assert _loaded(seen["v1"], "pydantic") and _loaded(seen["v1"], "agentfn.api._v1")
