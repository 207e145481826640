"""`agentfn package`: each cloud's artifact loads the entry points its Terraform stack names.

The handler strings are read from the stacks (Lambda ``handler``, Cloud Functions
``entry_point``), never restated here, and resolved in a fresh interpreter that sees only the
artifact — the way each platform loads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agentfn.functions.local.cli import EXAMPLE
from agentfn.functions.local.packaging import (
    TARGET,
    install_for_target,
    package,
    requirements_for,
)
from tests.support.deployed import WHEELHOUSE, build_artifact
from tests.support.stacks import resources, stack_values

ROOT = Path(__file__).resolve().parents[2]
FRESH_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}


def fresh_python(code: str, *, path: Path, no_site: bool, cwd: Path) -> str:
    flags = ["-I", "-S"] if no_site else ["-I"]
    script = f"import sys; sys.path.insert(0, {str(path)!r})\n" + code
    result = subprocess.run(
        [sys.executable, *flags, "-c", script],
        cwd=cwd,
        env=FRESH_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_artifacts_hold_one_package_at_the_top(tmp_path: Path) -> None:
    """Our code ships as agentfn/ only: no core/, adapters/, functions/ or events/ beside it."""
    ours = {"core", "adapters", "functions", "events"}
    aws = build_artifact("aws", tmp_path / "aws", EXAMPLE)
    with zipfile.ZipFile(aws.path) as zf:
        tops = {n.split("/")[0] for n in zf.namelist()}
    assert "agentfn" in tops and "project" in tops and not tops & ours
    for cloud in ("gcp", "azure"):
        folder = build_artifact(cloud, tmp_path / cloud, EXAMPLE).path
        entries = {p.name for p in folder.iterdir()}
        assert "agentfn" in entries and not entries & ours, entries


def test_aws_zip_is_self_contained(tmp_path: Path) -> None:
    """The handlers and their dependencies import from the zip alone. Calling them, with the
    environment the stack sets, is tests/e2e/test_deployed_aws.py."""
    artifact = build_artifact("aws", tmp_path / "dist", EXAMPLE)
    assert artifact.path.name == "agentfn-aws.zip" and artifact.size_bytes > 1_000_000
    root = tmp_path / "unzipped"
    with zipfile.ZipFile(artifact.path) as zf:
        names = set(zf.namelist())
        zf.extractall(root)
    assert "project/workflow.yaml" in names and any(n.startswith("boto3/") for n in names)
    assert not any(n.startswith(("tests/", "agentfn/events/samples/")) for n in names)
    handlers = stack_values("aws", "aws_lambda_function", "handler")
    assert set(handlers) == {"http", "worker"}
    for handler in handlers.values():  # "module.path.function", as Lambda resolves it
        assert handler.startswith("agentfn.functions.aws."), handler
        assert handler.rsplit(".", 1)[0].replace(".", "/") + ".py" in names
    fresh_python(
        "import importlib\n"
        f"handlers = {handlers!r}\n"
        "fns = {}\n"
        "for name, path in handlers.items():\n"
        "    module, attr = path.rsplit('.', 1)\n"
        "    m = importlib.import_module(module)\n"
        "    assert m.__file__.startswith(sys.path[0]), m.__file__\n"
        "    fns[name] = getattr(m, attr); assert callable(fns[name])\n"
        "import boto3; assert boto3.__file__.startswith(sys.path[0])\n",
        path=root,
        no_site=True,  # no site-packages at all: everything must come from the zip
        cwd=tmp_path,
    )


def _bytecode_gaps(files: dict[str, bytes]) -> list[str]:
    """Modules without a pyc the target loads as is (hash-based, never checked: flags 0b01)."""
    tag = f"cpython-{TARGET.python.replace('.', '')}"
    gaps = []
    for name in files:
        if not name.endswith(".py"):
            continue
        folder, _, stem = name.rpartition("/")
        pyc = f"{folder}/__pycache__/{stem[:-3]}.{tag}.pyc".lstrip("/")
        data = files.get(pyc)
        if data is None or int.from_bytes(data[4:8], "little") != 0b01:
            gaps.append(name)
    return gaps


def test_artifacts_ship_bytecode_the_runtime_uses_as_is(tmp_path: Path) -> None:
    """Lambda's /var/task and a run-from-package Function App are read-only: a module without
    a usable pyc is compiled from source on every cold start."""
    aws = build_artifact("aws", tmp_path / "aws", EXAMPLE)
    with zipfile.ZipFile(aws.path) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if n.endswith((".py", ".pyc"))}
    assert sum(n.endswith(".py") for n in files) > 1000
    assert _bytecode_gaps(files) == []
    for cloud in ("gcp", "azure"):
        folder = build_artifact(cloud, tmp_path / cloud, EXAMPLE).path
        files = {
            str(p.relative_to(folder)): p.read_bytes()
            for p in folder.rglob("*")
            if p.suffix in (".py", ".pyc")
        }
        assert _bytecode_gaps(files) == [], cloud


def test_zip_is_reproducible(tmp_path: Path) -> None:
    first = build_artifact("aws", tmp_path / "a", fresh=True)
    second = build_artifact("aws", tmp_path / "b", fresh=True)
    assert first.sha256 == second.sha256


def gcp_code() -> str:
    entry_points = stack_values(
        "gcp", "google_cloudfunctions2_function", "build_config", "entry_point"
    )
    assert set(entry_points) == {"http", "worker"}
    checks = "".join(f"assert callable(main.{e})\n" for e in entry_points.values())
    return "import main\n" + checks


AZURE_CODE = (
    "import function_app\n"
    "names = sorted(f.get_function_name() for f in function_app.app.get_functions())\n"
    "assert names == ['http', 'worker'], names\n"
)


@pytest.mark.parametrize(("cloud", "entry"), [("gcp", "main.py"), ("azure", "function_app.py")])
def test_source_folders_import_their_entry_points(tmp_path: Path, cloud: str, entry: str) -> None:
    code = gcp_code() if cloud == "gcp" else AZURE_CODE
    artifact = build_artifact(cloud, tmp_path / "dist", EXAMPLE)
    folder = artifact.path
    assert (folder / entry).is_file() and (folder / "requirements.txt").is_file()
    pins = (folder / "requirements.txt").read_text().splitlines()
    assert all("==" in line for line in pins) and pins
    if cloud == "azure":
        assert json.loads((folder / "host.json").read_text())["extensions"]["http"] == {
            "routePrefix": ""
        }
    fresh_python(
        code + "\nimport agentfn; assert agentfn.__file__.startswith(sys.path[0])",
        path=folder,
        no_site=False,  # dependencies come from requirements.txt at deploy time
        cwd=tmp_path,
    )


def test_unknown_cloud_is_refused(tmp_path: Path) -> None:
    from agentfn.errors import UserError

    with pytest.raises(UserError, match="unknown cloud 'ibm'"):
        package("ibm", tmp_path)


def test_every_stack_runs_the_python_the_artifacts_are_built_for() -> None:
    """One target: the Lambda runtime and architecture, Cloud Functions' and Azure's runtime."""
    runtimes = stack_values("aws", "aws_lambda_function", "runtime")
    assert set(runtimes.values()) == {f"python{TARGET.python}"}
    lambdas = resources("aws", "aws_lambda_function")
    architectures = {
        n: [a.strip('"') for a in b.get("architectures", [])] for n, b in lambdas.items()
    }
    assert all(a == ["x86_64"] for a in architectures.values()), architectures
    gcp = stack_values("gcp", "google_cloudfunctions2_function", "build_config", "runtime")
    assert set(gcp.values()) == {"python" + TARGET.python.replace(".", "")}
    azure = stack_values(
        "azure", "azurerm_linux_function_app", "site_config", "application_stack", "python_version"
    )
    assert set(azure.values()) == {TARGET.python}
    assert TARGET.platform.endswith("_x86_64")


def _wheel_tags(root: Path) -> dict[str, set[str]]:
    tags: dict[str, set[str]] = {}
    for wheel in root.glob("*.dist-info/WHEEL"):
        lines = wheel.read_text().splitlines()
        tags[wheel.parent.name] = {
            ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Tag:")
        }
    return tags


@pytest.mark.parametrize("cloud", ["aws", "azure"])
def test_vendored_dependencies_are_built_for_the_target(tmp_path: Path, cloud: str) -> None:
    """Wheels for Linux x86_64 CPython 3.11 only, whatever machine builds: no host binaries."""
    artifact = build_artifact(cloud, tmp_path / "dist")
    if cloud == "aws":
        root = tmp_path / "unzipped"
        with zipfile.ZipFile(artifact.path) as zf:
            zf.extractall(root)
    else:
        root = artifact.path / ".python_packages" / "lib" / "site-packages"
    tags = _wheel_tags(root)
    assert "pydantic_core" in {name.split("-")[0] for name in tags}, sorted(tags)
    abi, gnu = TARGET.abi, f"cpython-{TARGET.abi[2:]}-x86_64-linux-gnu"
    for dist, wheel_tags in tags.items():
        assert wheel_tags, dist
        for tag in wheel_tags:
            python, tag_abi, platform = tag.split("-")
            pythons = set(python.split("."))
            assert pythons & {"py3", "py2", abi} or tag_abi == "abi3", (dist, tag)
            assert tag_abi in ("none", "abi3", abi), (dist, tag)
            linux = all(p.endswith("_x86_64") and "linux" in p for p in platform.split("."))
            assert platform == "any" or linux, (dist, tag)
    extensions = [p.name for p in root.rglob("*.so*")]
    assert any(gnu in name for name in extensions), extensions[:5]
    foreign = [n for n in extensions if ("cpython-" in n and gnu not in n) or "darwin" in n]
    assert not foreign, foreign
    names = {name.split("-")[0].lower() for name in tags}
    assert not names & {"typer", "rich", "packaging", "pip", "setuptools", "wheel"}, names
    assert not (root / "bin").exists()


def test_a_dependency_without_a_target_wheel_is_one_line(tmp_path: Path) -> None:
    """A build that cannot get a wheel for the target says which, and exits 2 — no traceback."""
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "agentfn.functions.local.cli", "package", "--cloud", "aws",
         "--out", str(tmp_path / "dist")],
        cwd=tmp_path,
        env={**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty),
             "XDG_CACHE_HOME": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: cannot install dependencies for CPython {TARGET.python}")
    assert "annotated" in lines[0].lower() or "no matching distribution" in lines[0].lower()
    assert not (tmp_path / "cache" / "agentfn" / "targets").exists() or not any(
        p.is_dir() and not p.name.startswith("tmp")
        for p in (tmp_path / "cache" / "agentfn" / "targets").iterdir()
    ), "a failed install must not be cached"


def test_target_installs_are_cached_by_requirements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pins = next(ln for ln in requirements_for("aws").splitlines() if ln.startswith("six=="))
    install_for_target(pins + "\n", tmp_path / "one", wheelhouse=WHEELHOUSE)
    assert (tmp_path / "one" / "six.py").is_file()
    (cached,) = (tmp_path / "cache" / "agentfn" / "targets").iterdir()
    (cached / "marker").write_text("from the cache")
    install_for_target(pins + "\n", tmp_path / "two", wheelhouse=tmp_path / "nowhere")
    assert (tmp_path / "two" / "marker").read_text() == "from the cache"
