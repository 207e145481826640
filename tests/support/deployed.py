"""Load an artifact the way its platform does: built for the target, clean interpreter, only
the environment the stack sets.

A green suite once hid stacks that failed on every cloud because tests set up what the cloud
never would (an environment variable that switched tracing off, packages from the test's own
site-packages). Here nothing comes from the test process: ``run_clean`` starts ``python -I -S``
of the target's version whose path holds only what the platform puts there (``platform_path``)
and whose environment holds only what the stack sets, what the platform itself sets
(``PLATFORM_ENV``) and where an emulator stands in for the cloud's network
(``EMULATOR_ENDPOINTS``) — anything else is refused before the process starts.

``python -m tests.support.deployed wheelhouse DIR`` fills the wheelhouse that builds read
offline (``make test`` runs it; it is the only step that needs the network).
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from agentfn.functions.local.packaging import (
    EXTRAS,
    TARGET,
    Artifact,
    install_for_target,
    package,
    requirements_for,
    target_python as packaged_python,
)

__all__ = [
    "EMULATOR_ENDPOINTS",
    "PLATFORM_ENV",
    "WHEELHOUSE",
    "build_artifact",
    "platform_path",
    "run_clean",
    "target_python",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO_ROOT / ".emulators" / "wheels"

# What each platform puts in every function's environment by itself (documented runtime
# variables), with the values a test may override (a function's name, an identity endpoint).
PLATFORM_ENV: dict[str, dict[str, str]] = {
    "aws": {  # Lambda's reserved variables
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{TARGET.python}",
        "AWS_LAMBDA_FUNCTION_NAME": "agentfn-function",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/agentfn-function",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    },
    "gcp": {  # Cloud Run functions (gen2)
        "K_SERVICE": "agentfn-function",
        "K_REVISION": "agentfn-function-00001-abc",
        "K_CONFIGURATION": "agentfn-function",
        "PORT": "8080",
        "FUNCTION_TARGET": "http",
        "FUNCTION_SIGNATURE_TYPE": "http",
        "HOME": "/root",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    },
    "azure": {  # Azure Functions on Linux
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "FUNCTIONS_EXTENSION_VERSION": "~4",
        "WEBSITE_SITE_NAME": "agentfn-function",
        "WEBSITE_HOSTNAME": "agentfn-function.azurewebsites.net",
        "WEBSITE_INSTANCE_ID": "0123456789abcdef",
        "AzureWebJobsScriptRoot": "/home/site/wwwroot",
        "IDENTITY_ENDPOINT": "http://127.0.0.1:8081/msi/token",
        "IDENTITY_HEADER": "agentfn-test",
        "HOME": "/home",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    },
}

# Where an emulator stands in for the cloud's network. These redirect addresses (and, for
# Azurite, its well-known account key); none switches a feature off.
EMULATOR_ENDPOINTS = frozenset(
    {
        "AWS_ENDPOINT_URL",
        "STORAGE_EMULATOR_HOST",
        "PUBSUB_EMULATOR_HOST",
        "SECRET_MANAGER_EMULATOR_HOST",
        "AZURE_STORAGE_CONNECTION_STRING",
        # the model servers and the metadata server that stand in for a cloud's model host
        # and for the address a Cloud Function's credentials come from
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
        "GOOGLE_VERTEX_BASE_URL",
        "GCE_METADATA_HOST",
        "GCE_METADATA_IP",
    }
)


def _wheelhouse() -> Path:
    if not any(WHEELHOUSE.glob("*.whl")):
        raise AssertionError(f"no wheels in {WHEELHOUSE}: run `make test` (it fills them)")
    return WHEELHOUSE


_BUILT: dict[tuple[str, str], Artifact] = {}


def build_artifact(
    cloud: str, out_dir: Path, project: Path | None = None, *, fresh: bool = False
) -> Artifact:
    """``agentfn package`` for the target platform, offline from the wheelhouse, in
    ``out_dir``.

    A build takes seconds (bytecode for every module, a deterministic zip), and many tests
    load the same one: each cloud's artifact of a given project (by its content) is built once
    per session and copied into ``out_dir``, so every test still has its own. ``fresh`` builds
    anew (a test of the build itself)."""
    if fresh:
        return package(cloud, out_dir, project, wheelhouse=_wheelhouse())
    key = (cloud, _fingerprint(project))
    built = _BUILT.get(key)
    if built is None:
        scratch = Path(tempfile.mkdtemp(prefix=f"agentfn-artifact-{cloud}-"))
        built = _BUILT[key] = package(cloud, scratch, project, wheelhouse=_wheelhouse())
    return _copy_artifact(built, out_dir)


def _fingerprint(project: Path | None) -> str:
    """What a build of ``project`` depends on: its files' paths and bytes."""
    if project is None:
        return ""
    digest = hashlib.sha256(str(project.resolve()).encode())
    for path in sorted(project.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _copy_artifact(built: Artifact, out_dir: Path) -> Artifact:
    source = built.archive.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built.archive, out_dir / built.archive.name)
    path = out_dir / built.path.relative_to(source)
    if built.path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(built.path, path, symlinks=True)
    return dataclasses.replace(built, path=path, archive=out_dir / built.archive.name)


def platform_path(cloud: str, artifact: Artifact, scratch: Path) -> list[Path]:
    """The folders the platform puts on ``sys.path`` for this artifact, in its order."""
    if cloud == "aws":  # Lambda unzips to /var/task and puts it first
        root = scratch / "task"
        with zipfile.ZipFile(artifact.path) as zf:
            zf.extractall(root)
        return [root]
    if cloud == "gcp":  # Cloud Build pip-installs requirements.txt beside the source
        deps = scratch / "build-step"
        requirements = (artifact.path / "requirements.txt").read_text()
        install_for_target(requirements, deps, wheelhouse=_wheelhouse())
        return [artifact.path, deps]
    if cloud == "azure":  # the Python worker adds the app root and its .python_packages
        return [artifact.path, artifact.path / ".python_packages" / "lib" / "site-packages"]
    raise AssertionError(f"unknown cloud {cloud!r}")


def target_python() -> str:
    """An interpreter of the runtime's Python version (``TARGET.python``)."""
    found = packaged_python(TARGET)
    if found is None:
        raise AssertionError(f"python{TARGET.python} (the functions' runtime) is not installed")
    return found


def run_clean(
    cloud: str,
    code: str,
    *,
    path: list[Path],
    env: dict[str, str],
    stack_env: dict[str, str],
    cwd: Path,
    timeout_s: float = 180,
) -> str:
    """Run ``code`` as the platform would run the artifact on ``path``; return its stdout."""
    allowed = set(stack_env) | set(PLATFORM_ENV[cloud]) | EMULATOR_ENDPOINTS
    extra = sorted(set(env) - allowed)
    if extra:
        raise AssertionError(f"variables the {cloud} stack does not set: {extra}")
    prelude = f"import sys\nsys.path[:0] = {[str(p) for p in path]!r}\n"
    result = subprocess.run(
        [target_python(), "-I", "-S", "-c", prelude + code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{cloud} artifact failed (exit {result.returncode}):\n{result.stderr[-6000:]}"
        )
    return result.stdout


def fill_wheelhouse(dest: Path) -> None:
    """Download, for the target, every wheel any cloud's artifact installs."""
    pins = sorted({line for c in EXTRAS for line in requirements_for(c).splitlines(True)})
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("".join(pins))
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        *TARGET.pip_args(), "--dest", str(dest), "--requirement", f.name,
    ]  # fmt: skip
    subprocess.run(command, check=True)
    Path(f.name).unlink()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "wheelhouse":
        sys.exit("usage: python -m tests.support.deployed wheelhouse DIR")
    fill_wheelhouse(Path(sys.argv[2]))
