"""`agentfn package`: each cloud's artifact imports its handlers in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agentfn.functions.local.cli import EXAMPLE
from agentfn.functions.local.packaging import package

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


def test_aws_zip_is_self_contained(tmp_path: Path) -> None:
    artifact = package("aws", tmp_path / "dist", EXAMPLE)
    assert artifact.path.name == "agentfn-aws.zip" and artifact.size_bytes > 1_000_000
    root = tmp_path / "unzipped"
    with zipfile.ZipFile(artifact.path) as zf:
        names = set(zf.namelist())
        zf.extractall(root)
    assert {"functions/aws/http.py", "functions/aws/worker.py", "project/workflow.yaml"} <= names
    assert any(n.startswith("boto3/") for n in names)
    assert not any(n.startswith(("tests/", "events/samples/")) for n in names)
    event = (ROOT / "events/samples/aws/lambda_function_url.json").read_text()
    out = fresh_python(
        "import json, agentfn.functions.aws.http as h, agentfn.functions.aws.worker as w\n"
        "assert h.__file__.startswith(sys.path[0]) and w.__file__.startswith(sys.path[0])\n"
        "import boto3; assert boto3.__file__.startswith(sys.path[0])\n"
        f"reply = h.handler(json.loads({event!r}), None)\n"
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


@pytest.mark.parametrize(
    ("cloud", "code", "entry"),
    [
        ("gcp", "import main; assert callable(main.http) and callable(main.worker)", "main.py"),
        (
            "azure",
            "import function_app; assert function_app.app is not None",
            "function_app.py",
        ),
    ],
)
def test_source_folders_import_their_entry_points(
    tmp_path: Path, cloud: str, code: str, entry: str
) -> None:
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
        code + "\nimport functions; assert functions.__file__.startswith(sys.path[0])",
        path=folder,
        no_site=False,  # dependencies come from requirements.txt at deploy time
        cwd=tmp_path,
    )


def test_unknown_cloud_is_refused(tmp_path: Path) -> None:
    from agentfn.errors import UserError

    with pytest.raises(UserError, match="unknown cloud 'ibm'"):
        package("ibm", tmp_path)
