"""`agentfn package`: each cloud's artifact loads the entry points its Terraform stack names.

The handler strings are read from the stacks (Lambda ``handler``, Cloud Functions
``entry_point``), never restated here, and resolved in a fresh interpreter that sees only the
artifact — the way each platform loads it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agentfn.functions.local.cli import EXAMPLE
from agentfn.functions.local.packaging import package
from tests.support.stacks import stack_values

ROOT = Path(__file__).resolve().parents[2]
FRESH_ENV = {"PATH": "/usr/bin:/bin", "POWERTOOLS_TRACE_DISABLED": "true", "HOME": "/tmp"}


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
    aws = package("aws", tmp_path / "aws", EXAMPLE)
    with zipfile.ZipFile(aws.path) as zf:
        tops = {n.split("/")[0] for n in zf.namelist()}
    assert "agentfn" in tops and "project" in tops and not tops & ours
    for cloud in ("gcp", "azure"):
        folder = package(cloud, tmp_path / cloud, EXAMPLE).path
        entries = {p.name for p in folder.iterdir()}
        assert "agentfn" in entries and not entries & ours, entries


def test_aws_zip_is_self_contained(tmp_path: Path) -> None:
    artifact = package("aws", tmp_path / "dist", EXAMPLE)
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
    event = (ROOT / "events/samples/aws/lambda_function_url.json").read_text()
    out = fresh_python(
        "import importlib, json\n"
        f"handlers = {handlers!r}\n"
        "fns = {}\n"
        "for name, path in handlers.items():\n"
        "    module, attr = path.rsplit('.', 1)\n"
        "    m = importlib.import_module(module)\n"
        "    assert m.__file__.startswith(sys.path[0]), m.__file__\n"
        "    fns[name] = getattr(m, attr); assert callable(fns[name])\n"
        "import boto3; assert boto3.__file__.startswith(sys.path[0])\n"
        f"reply = fns['http'](json.loads({event!r}), None)\n"
        "print(json.dumps(reply))\n",
        path=root,
        no_site=True,  # no site-packages at all: everything must come from the zip
        cwd=tmp_path,
    )
    reply = json.loads(out.strip().splitlines()[-1])
    assert reply["statusCode"] == 200 and json.loads(reply["body"])["status"] == "ok"


def test_zip_is_reproducible(tmp_path: Path) -> None:
    first = package("aws", tmp_path / "a")
    second = package("aws", tmp_path / "b")
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
    artifact = package(cloud, tmp_path / "dist", EXAMPLE)
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
