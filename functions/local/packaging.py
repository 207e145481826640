"""``agentfn package --cloud aws|gcp|azure``: build the artifact a cloud function deploys.

- aws: a Lambda zip with the ``agentfn`` package and every dependency vendored from this
  environment (so the build needs no network; build on Linux x86_64 with the Python the Lambda
  runtime uses). Handlers: ``agentfn.functions.aws.http.handler`` and
  ``agentfn.functions.aws.worker.handler``.
- gcp: a Cloud Functions source folder: the ``agentfn`` package, a root ``main.py`` exposing
  ``http`` and ``worker``, and a pinned ``requirements.txt`` that Cloud Build installs.
- azure: a Function App folder: ``function_app.py`` exposing ``app``, ``host.json``, the
  ``agentfn`` package and a pinned ``requirements.txt``.

A project folder (workflows, tool modules, rule files) given with ``--project`` is copied to
``project/`` inside the artifact; deployments point ``AGENTFN_PROJECT`` at it.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path
from typing import Literal

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from agentfn.errors import ConfigError, UserError

Cloud = Literal["aws", "gcp", "azure"]
# Sub-packages that an editable install keeps in folders of their own (pyproject.toml's
# package-dir); in a wheel they already sit inside agentfn/.
SUBPACKAGES = ("adapters", "functions", "events")
EXTRAS: dict[str, tuple[str, ...]] = {
    "aws": ("aws", "openai"),
    "gcp": ("gcp", "openai"),
    "azure": ("azure", "openai"),
}
# Provided by the platform's runtime, never shipped.
SKIP = {"pip", "setuptools", "wheel", "agentfn"}
GCP_MAIN = """\"\"\"Cloud Functions entry points: see agentfn/functions/gcp/main.py.\"\"\"

from agentfn.functions.gcp.main import http, worker

__all__ = ["http", "worker"]
"""
AZURE_APP = """\"\"\"Azure Functions app: see agentfn/functions/azure/function_app.py.\"\"\"

from agentfn.functions.azure.function_app import app

__all__ = ["app"]
"""


@dataclass(frozen=True)
class Artifact:
    """``path`` is what the cloud deploys (zip or folder); ``archive`` is always a zip."""

    cloud: Cloud
    path: Path
    archive: Path
    size_bytes: int
    sha256: str


def dependency_closure(extras: Iterable[str]) -> list[Distribution]:
    """The installed distributions agentfn[extras] needs, found through their metadata."""
    wanted = [Requirement(r) for r in distribution("agentfn").requires or []]
    queue = [r for r in wanted if _applies(r, set(extras))]
    seen: dict[str, Distribution] = {}
    while queue:
        req = queue.pop()
        name = canonicalize_name(req.name)
        if name in seen or name in SKIP:
            continue
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            raise ConfigError(
                f"{req.name} is not installed; install agentfn[{','.join(extras)}] first"
            ) from None
        seen[name] = dist
        queue.extend(
            Requirement(r) for r in dist.requires or [] if _applies(Requirement(r), req.extras)
        )
    return sorted(seen.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def _applies(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    if any(req.marker.evaluate({"extra": e}) for e in extras):
        return True
    return req.marker.evaluate({"extra": ""})


def _package_dir(name: str) -> Path:
    module = importlib.import_module(name)
    return Path(str(module.__file__)).parent


def _copy_sources(dest: Path) -> None:
    """The ``agentfn`` package as it installs, from an editable or a regular install."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "samples", "example")
    target = dest / "agentfn"
    shutil.copytree(_package_dir("agentfn"), target, ignore=ignore)
    for sub in SUBPACKAGES:
        if not (target / sub).is_dir():
            shutil.copytree(_package_dir(f"agentfn.{sub}"), target / sub, ignore=ignore)
    example = _package_dir("agentfn.functions.local") / "example"
    shutil.copytree(example, target / "functions" / "local" / "example", ignore=ignore)


def _vendor(dists: list[Distribution], dest: Path) -> None:
    for dist in dists:
        for file in dist.files or []:
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue  # scripts outside site-packages, caches
            source = Path(str(dist.locate_file(file)))
            if source.is_file():
                target = dest / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)


def _requirements(dists: list[Distribution]) -> str:
    return "".join(f"{d.metadata['Name']}=={d.version}\n" for d in dists)


def package(cloud: str, out_dir: Path, project: Path | None = None) -> Artifact:
    if cloud not in EXTRAS:
        raise UserError(f"unknown cloud {cloud!r}: use aws, gcp or azure", field="cloud")
    if project is not None and not project.is_dir():
        raise UserError(f"project folder {str(project)!r} does not exist", field="project")
    dists = dependency_closure(EXTRAS[cloud])
    out_dir.mkdir(parents=True, exist_ok=True)
    build = out_dir / f"agentfn-{cloud}"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir()
    _copy_sources(build)
    if project is not None:
        shutil.copytree(
            project, build / "project", ignore=shutil.ignore_patterns("__pycache__", ".agentfn*")
        )
    if cloud == "aws":
        _vendor(dists, build)
        zip_path = out_dir / "agentfn-aws.zip"
        _zip(build, zip_path)
        shutil.rmtree(build)
        return _artifact("aws", zip_path, zip_path)
    (build / "requirements.txt").write_text(_requirements(dists))
    if cloud == "gcp":
        (build / "main.py").write_text(GCP_MAIN)
    else:
        (build / "function_app.py").write_text(AZURE_APP)
        shutil.copy2(_package_dir("agentfn.functions.azure") / "host.json", build / "host.json")
    archive = out_dir / f"agentfn-{cloud}.zip"
    _zip(build, archive)  # what Terraform uploads (Cloud Storage object, zip deploy)
    return _artifact("gcp" if cloud == "gcp" else "azure", build, archive)


def _zip(folder: Path, target: Path) -> None:
    """A reproducible zip: sorted entries, fixed timestamps, so equal inputs hash equal."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(
                    str(path.relative_to(folder)), date_time=(1980, 1, 1, 0, 0, 0)
                )
                info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())


def _artifact(cloud: Cloud, path: Path, archive: Path) -> Artifact:
    """Size of what deploys; hash of the reproducible zip, which identifies a version."""
    if path.is_file():
        size = path.stat().st_size
    else:
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    digest = hashlib.sha256()
    with archive.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return Artifact(
        cloud=cloud, path=path, archive=archive, size_bytes=size, sha256=digest.hexdigest()
    )
