"""What the Function App registers when the real app cannot load.

The Azure Python worker indexes ``function_app.py`` once; if that import fails, or the app
imports but its dependencies are not on the path (a zip deployed without ``.python_packages``),
the host reports "0 functions loaded" or every request fails deep inside a lazy import. So the
app checks its pinned requirements first and, on any failure, registers one anonymous
catch-all HTTP route (``/healthz`` included) that answers 503 with the error as JSON.

This module needs nothing but ``azure.functions`` (which the worker provides) and the stdlib.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import azure.functions as func

import agentfn

__all__ = ["check_requirements", "unavailable_app"]

# `agentfn package` writes requirements.txt at the artifact root, beside agentfn/.
ARTIFACT_ROOT = Path(str(agentfn.__file__)).resolve().parents[1]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed() -> dict[str, str]:
    """``{normalized name: version}`` of every distribution on ``sys.path``, from the names
    of the ``*.dist-info`` folders (one directory listing per path entry: no imports)."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                dist, _, version = name[: -len(".dist-info")].partition("-")
                found.setdefault(_normal(dist), version)
    return found


def _version(name: str) -> str:
    """The installed version by the packaging metadata: only when a folder name disagrees
    (importlib.metadata costs a cold start milliseconds it rarely needs)."""
    from importlib import metadata

    return metadata.version(name)


def check_requirements(requirements: Path | None = None) -> None:
    """Raise ModuleNotFoundError naming every pinned distribution that is missing or at another
    version than ``requirements.txt`` pins; cheap enough for every cold start."""
    path = requirements or ARTIFACT_ROOT / "requirements.txt"
    if not path.is_file():
        return  # not an artifact (a source checkout): the installer resolved the dependencies
    installed = _installed()
    wrong = []
    for line in path.read_text().splitlines():
        pin = _PIN.match(line.strip())
        if pin is None:
            continue
        name, version = pin.groups()
        found = installed.get(_normal(name))
        if found is None:
            wrong.append(f"{name}=={version} (not installed)")
        elif found != version and _version(name) != version:  # names may normalize
            wrong.append(f"{name}=={version} (found {_version(name)})")
    if wrong:
        first = _PIN.match(wrong[0])
        raise ModuleNotFoundError(
            "the app's pinned requirements are not on the path (is .python_packages deployed?): "
            + ", ".join(wrong),
            name=_normal(first.group(1)) if first else None,
        )


def unavailable_app(error: BaseException) -> func.FunctionApp:
    """An app whose only function answers every path with 503 and ``error`` as JSON."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    detail = {
        "code": "app_unavailable",
        "message": f"the agentfn app failed to load: {type(error).__name__}: {error}",
        "module": getattr(error, "name", None),
    }
    body = json.dumps({"error": detail})

    @app.route(route="{*path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
    def health(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(body=body, status_code=503, mimetype="application/json")

    return app
