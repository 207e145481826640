"""``agentfn package --cloud aws|gcp|azure``: build the artifact a cloud function deploys.

- aws: a Lambda zip with the ``agentfn`` package and every dependency installed for the
  Lambda runtime (``TARGET``: CPython 3.11 on manylinux2014 x86_64), whatever machine builds
  it. Handlers: ``agentfn.functions.aws.http.handler`` and ``agentfn.functions.aws.worker.handler``.
- gcp: a Cloud Functions source folder: the ``agentfn`` package, a root ``main.py`` exposing
  ``http`` and ``worker``, and a pinned ``requirements.txt`` that Cloud Build installs.
- azure: a Function App folder: ``function_app.py`` exposing ``app``, ``host.json``, the
  ``agentfn`` package, its dependencies installed for ``TARGET`` into
  ``.python_packages/lib/site-packages`` (where the Azure Python worker looks; the zip deploy
  runs no build) and the pinned ``requirements.txt`` they were installed from.

Dependencies are pinned to the versions installed here (what the tests ran against) and
installed by pip for the target platform, binary wheels only: a build on macOS, arm64 or
another Python gets Linux x86_64 CPython 3.11 wheels, or fails with one line saying which
requirement has none. Not shipped: what only the CLI needs (``CLI_ONLY``) and pip's own
tooling. Installs are cached per requirement set under ``~/.cache/agentfn/targets``.

A project folder (workflows, tool modules, rule files) given with ``--project`` is copied to
``project/`` inside the artifact; deployments point ``AGENTFN_PROJECT`` at it.

Every module ships compiled for the target (``.pyc``, hash-based and never re-checked: an
artifact is immutable). Lambda's and Run-From-Package's code folders are read-only, so a
Python that finds no bytecode compiles every module it imports on every cold start — in our
own measurements that alone was most of the gap to a bare hello-world. Compiling needs an
interpreter of the target's version (this one, or ``python3.11`` on the PATH); without one
the artifact ships source only and says so.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
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
# Packaging tooling and agentfn itself (copied from source) are never installed as
# dependencies; CLI_ONLY are the requirements only `agentfn` the command imports (typer, rich,
# packaging: functions/local/), which no handler loads.
SKIP = {"pip", "setuptools", "wheel", "agentfn"}
CLI_ONLY = {"typer", "rich", "packaging"}

log = logging.getLogger("agentfn.package")


@dataclass(frozen=True)
class Target:
    """The platform every cloud stack runs: its runtime settings must match (tests check)."""

    python: str = "3.11"
    platform: str = "manylinux2014_x86_64"  # glibc 2.17: Lambda's Amazon Linux 2 and newer
    implementation: str = "cp"

    @property
    def abi(self) -> str:
        return f"cp{self.python.replace('.', '')}"

    def pip_args(self) -> list[str]:
        """pip's options that select this target's binary wheels, and nothing else."""
        return [
            "--no-deps", "--only-binary=:all:", "--platform", self.platform,
            "--implementation", self.implementation, "--python-version", self.python,
            "--abi", self.abi,
        ]  # fmt: skip


TARGET = Target()


def target_python(target: Target = TARGET) -> str | None:
    """An interpreter of the target's Python version: this one, else ``python3.X`` on PATH."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == target.python:
        return str(getattr(sys, "_base_executable", sys.executable))
    return shutil.which(f"python{target.python}")


def compile_for_target(folder: Path, target: Target = TARGET) -> bool:
    """Compile every module under ``folder`` to bytecode the target's runtime loads as is.

    ``unchecked-hash`` pycs are never compared with their source, so the timestamps a zip
    or a deploy gives the files do not matter; file names are recorded relative to
    ``folder`` (the import system sets the real one when it loads a pyc), so equal sources
    give equal pycs wherever they are built. Returns
    False (after saying why) when no interpreter of the target's version is here.
    """
    python = target_python(target)
    if python is None:
        log.warning(
            "no python%s here: the artifact ships without bytecode, so every cold start "
            "compiles what it imports",
            target.python,
        )
        return False
    command = [
        python, "-I", "-m", "compileall", "-q", "-q", "-j", "0",
        "--invalidation-mode", "unchecked-hash", "-s", str(folder), str(folder),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ConfigError(
            f"cannot compile {folder} for CPython {target.python}: "
            f"{(result.stdout + result.stderr).strip()[-500:]}"
        )
    return True


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
    queue = [
        r for r in wanted if _applies(r, set(extras)) and canonicalize_name(r.name) not in CLI_ONLY
    ]
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


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agentfn" / "targets"


def install_for_target(
    requirements: str, dest: Path, *, wheelhouse: Path | None = None, target: Target = TARGET
) -> None:
    """Install pinned ``requirements`` into ``dest`` as the target platform needs them.

    pip resolves nothing (``--no-deps``: the list is the whole closure) and takes binary wheels
    for ``target`` only, so no compiler or host library leaks in. ``wheelhouse`` builds offline
    from a folder of wheels. The result is cached by requirements and target.
    """
    compiled = target_python(target) is not None  # a cache without bytecode is another one
    key = hashlib.sha256(f"{target}\n{compiled}\n{requirements}".encode()).hexdigest()[:32]
    cached = _cache_root() / key
    if not cached.is_dir():
        _pip_install(requirements, cached, wheelhouse, target)
    shutil.copytree(cached, dest, dirs_exist_ok=True)


def _pip_install(requirements: str, cached: Path, wheelhouse: Path | None, target: Target) -> None:
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cached.parent) as scratch:
        req_file = Path(scratch) / "requirements.txt"
        req_file.write_text(requirements)
        into = Path(scratch) / "site-packages"
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", *target.pip_args(),
            "--target", str(into), "--requirement", str(req_file),
        ]  # fmt: skip
        if wheelhouse is not None:
            command += ["--no-index", "--find-links", str(wheelhouse)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
            why = next((ln for ln in lines if "ERROR" in ln), lines[-1] if lines else "")
            raise ConfigError(
                f"cannot install dependencies for CPython {target.python} on {target.platform}: "
                f"{why.removeprefix('ERROR: ').strip()}"
            )
        shutil.rmtree(into / "bin", ignore_errors=True)  # console scripts: no use in a function
        compile_for_target(into, target)  # once per cached install, not per build
        try:
            into.rename(cached)
        except OSError:  # another build filled the cache first: keep theirs
            if not cached.is_dir():
                raise


def requirements_for(cloud: str) -> str:
    """``cloud``'s dependencies pinned to the versions installed here, one per line."""
    dists = dependency_closure(EXTRAS[cloud])
    return "".join(f"{d.metadata['Name']}=={d.version}\n" for d in dists)


def package(
    cloud: str, out_dir: Path, project: Path | None = None, *, wheelhouse: Path | None = None
) -> Artifact:
    """Build ``cloud``'s artifact in ``out_dir``; ``wheelhouse`` installs offline from wheels."""
    if cloud not in EXTRAS:
        raise UserError(f"unknown cloud {cloud!r}: use aws, gcp or azure", field="cloud")
    if project is not None and not project.is_dir():
        raise UserError(f"project folder {str(project)!r} does not exist", field="project")
    requirements = requirements_for(cloud)
    out_dir.mkdir(parents=True, exist_ok=True)
    build = out_dir / f"agentfn-{cloud}"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir()
    _copy_sources(build)
    if project is not None:
        shutil.copytree(
            project, build / "project", ignore=shutil.ignore_patterns("__pycache__", ".agentfn*")
        )
    entry = {"gcp": ("main.py", GCP_MAIN), "azure": ("function_app.py", AZURE_APP)}.get(cloud)
    if entry is not None:  # the root module the platform imports
        (build / entry[0]).write_text(entry[1])
    compile_for_target(build)  # before the dependencies go in: those come compiled
    if cloud == "aws":
        install_for_target(requirements, build, wheelhouse=wheelhouse)
        zip_path = out_dir / "agentfn-aws.zip"
        _zip(build, zip_path)
        shutil.rmtree(build)
        return _artifact("aws", zip_path, zip_path)
    (build / "requirements.txt").write_text(requirements)
    if cloud == "azure":
        site = build / ".python_packages" / "lib" / "site-packages"
        install_for_target(requirements, site, wheelhouse=wheelhouse)
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
