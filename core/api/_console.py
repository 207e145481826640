"""The web console at ``/``: its page and its two assets, public (the page asks for the API key
and sends it only to this deployment's /v1 routes).

Light on purpose, like ``_public``: the files are read on the first request for them. The
page is never cached (a deploy changes it); each asset's URL carries its content hash, so an
asset is cached for a year and a new deploy's page asks for the new one. A strict content
security policy allows only this origin's script, style and API.
"""

from __future__ import annotations

import functools

from agentfn.api._http import Response
from agentfn.api._routing import Call, Routes, Services
from agentfn.errors import NotFound

routes = Routes()

ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
SECURITY = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@functools.cache
def _file(name: str) -> bytes:
    from importlib import resources  # on the first request for the console, not a cold start

    return resources.files("agentfn.console").joinpath(name).read_bytes()


def _version(name: str) -> str:
    import hashlib

    return hashlib.sha256(_file(name)).hexdigest()[:16]


@functools.cache
def _page() -> bytes:
    html = _file("index.html").decode()
    html = html.replace("{{js}}", _version("app.js")).replace("{{css}}", _version("app.css"))
    return html.encode()


@routes.route("GET", "/", public=True, summary="The web console", media="text/html")
def console(services: Services, call: Call) -> Response:
    headers = {"content-type": "text/html; charset=utf-8", "cache-control": "no-cache", **SECURITY}
    return Response(200, _page(), headers)


@routes.route(
    "GET", "/console/{asset}", public=True, summary="The console's script and style", media="*/*"
)
def console_asset(services: Services, call: Call) -> Response:
    name = call.params["asset"]
    if name not in ASSETS:
        raise NotFound(f"no console file {name!r}", field="asset")
    fresh = call.request.query.get("v") == _version(name)
    cache = "public, max-age=31536000, immutable" if fresh else "no-cache"
    headers = {"content-type": f"{ASSETS[name]}; charset=utf-8", "cache-control": cache, **SECURITY}
    return Response(200, _file(name), headers)
