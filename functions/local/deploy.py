"""``agentfn deploy | deployments | rollback | destroy``: Terraform with versioned artifacts.

A deploy builds the artifact (``agentfn package``), runs terraform init/plan/apply on the
cloud's example stack in a working folder that keeps the state, then records a version —
number, artifact hash, time, who — in the stack's own bucket next to a copy of the artifact.
A rollback redeploys the artifact of an earlier version and records that as a new version.
Terraform's output and errors go straight to the terminal; a failing terraform command stops
the deploy with its exit status.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from agentfn.errors import AgentfnError, ConfigError, NotFound, PreconditionFailed, UserError
from agentfn.functions.local.packaging import package
from agentfn.ports import BlobStore
from agentfn.runs import iter_keys

# The Terraform modules live beside the sources (functions/local/ → the repository root).
IAC = Path(__file__).resolve().parents[2] / "iac" / "terraform"
LOCATION_VARIABLE = {"aws": "region", "gcp": "region", "azure": "location"}
VERSIONS = "deployments/versions/"


class TerraformFailed(AgentfnError):
    code = "terraform_failed"


class Deployment(BaseModel):
    number: int
    cloud: str
    artifact_sha256: str
    artifact_key: str
    deployed_at: float
    deployed_by: str
    rollback_of: int | None = None


@dataclass
class Stack:
    """One cloud's stack: a working folder (Terraform files + state) and its variables."""

    cloud: str
    workdir: Path
    variables: dict[str, str] = field(default_factory=dict)
    env: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.cloud not in LOCATION_VARIABLE:
            raise UserError(f"unknown cloud {self.cloud!r}: use aws, gcp or azure", field="cloud")

    @property
    def example(self) -> Path:
        return self.workdir / "terraform" / "examples" / self.cloud

    def sync(self) -> None:
        """Copy the current modules and example in; the state and .terraform stay."""
        for folder in (Path("modules") / self.cloud, Path("examples") / self.cloud):
            target = self.workdir / "terraform" / folder
            target.mkdir(parents=True, exist_ok=True)
            for tf in (IAC / folder).glob("*.tf"):
                shutil.copy2(tf, target / tf.name)

    def terraform(self, *args: str, capture: bool = False) -> str:
        command = ["terraform", f"-chdir={self.example}", *args]
        env = {**os.environ, **(self.env or {}), "TF_IN_AUTOMATION": "1"}
        try:
            result = subprocess.run(
                command, env=env, text=True, capture_output=capture, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError:
            raise ConfigError("terraform is not installed or not on PATH") from None
        if result.returncode != 0:
            detail = (result.stderr or "").strip().splitlines()[-1:] if capture else []
            raise TerraformFailed(
                f"terraform {args[0]} failed with exit code {result.returncode}"
                + (f": {detail[0]}" if detail else " (its output is above)")
            )
        return result.stdout if capture else ""

    def var_args(self, artifact: Path) -> list[str]:
        values = {**self.variables, "artifact": str(artifact)}
        return [arg for k, v in sorted(values.items()) for arg in ("-var", f"{k}={v}")]

    def outputs(self) -> dict[str, str]:
        raw = json.loads(self.terraform("output", "-json", "-no-color", capture=True) or "{}")
        return {k: str(v.get("value", "")) for k, v in raw.items()}


def bucket_store(cloud: str, bucket: str) -> BlobStore:
    from agentfn.adapters.registry import open_blobstore

    url = {"aws": f"s3://{bucket}", "gcp": f"gs://{bucket}", "azure": f"az://{bucket}"}[cloud]
    return open_blobstore(url)


def who() -> str:
    return os.environ.get("AGENTFN_DEPLOYER") or f"{getpass.getuser()}@{socket.gethostname()}"


def deploy(stack: Stack, *, project: Path | None, plan_only: bool = False) -> Deployment | None:
    artifact = package(stack.cloud, stack.workdir / "dist", project)
    return apply(stack, artifact.archive, artifact.sha256, plan_only=plan_only)


def apply(
    stack: Stack,
    archive: Path,
    sha256: str,
    *,
    plan_only: bool = False,
    rollback_of: int | None = None,
) -> Deployment | None:
    stack.sync()
    stack.terraform("init", "-input=false", "-no-color")
    plan = stack.example / "agentfn.tfplan"
    stack.terraform("plan", "-input=false", "-no-color", f"-out={plan}", *stack.var_args(archive))
    if plan_only:
        return None
    stack.terraform("apply", "-input=false", "-no-color", "-auto-approve", str(plan))
    outputs = stack.outputs()
    store = bucket_store(stack.cloud, outputs["bucket"])
    return record_when_allowed(store, stack.cloud, archive, sha256, rollback_of=rollback_of)


# Azure RBAC: the deployer's blob role is created by the same apply and takes minutes to reach
# the data plane, so the version record is retried while it is refused with HTTP 403.
RECORD_PATIENCE_S = {"azure": 600.0}


def record_when_allowed(
    store: BlobStore,
    cloud: str,
    archive: Path,
    sha256: str,
    *,
    rollback_of: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Deployment:
    """:func:`record`, waiting up to ``RECORD_PATIENCE_S[cloud]`` for a new role to apply."""
    deadline = clock() + RECORD_PATIENCE_S.get(cloud, 0.0)
    delay = 5.0
    while True:
        try:
            return record(store, cloud, archive, sha256, rollback_of=rollback_of)
        except Exception as exc:
            if getattr(exc, "status_code", None) != 403 or clock() + delay > deadline:
                raise
            print(
                f"the version record was refused (HTTP 403): waiting {delay:.0f} s for the "
                "deployer's new role assignment to take effect",
                file=sys.stderr,
            )
            sleep(delay)
            delay = min(delay * 2, 60.0)


def record(
    store: BlobStore, cloud: str, archive: Path, sha256: str, *, rollback_of: int | None = None
) -> Deployment:
    key = f"deployments/artifacts/{sha256}.zip"
    try:
        store.get(f"{key}.sha256")
    except NotFound:
        with archive.open("rb") as f:
            store.upload(key, f)
        store.put(f"{key}.sha256", sha256.encode())
    for _ in range(20):  # two deploys at once: exactly one gets each number
        number = (max((d.number for d in deployments(store)), default=0)) + 1
        entry = Deployment(
            number=number,
            cloud=cloud,
            artifact_sha256=sha256,
            artifact_key=key,
            deployed_at=time.time(),
            deployed_by=who(),
            rollback_of=rollback_of,
        )
        try:
            store.put_if_absent(f"{VERSIONS}{number:06d}.json", entry.model_dump_json().encode())
            return entry
        except PreconditionFailed:
            continue
    raise PreconditionFailed("could not record the deployment: too many concurrent deploys")


def deployments(store: BlobStore) -> list[Deployment]:
    return [
        Deployment.model_validate_json(store.get(key).data) for key in iter_keys(store, VERSIONS)
    ]


def rollback(stack: Stack, to: int) -> Deployment:
    store = bucket_store(stack.cloud, stack.outputs()["bucket"])
    versions = {d.number: d for d in deployments(store)}
    if to not in versions:
        known = ", ".join(str(n) for n in sorted(versions)) or "none"
        raise UserError(f"no deployment number {to} (recorded: {known})", field="to")
    target = versions[to]
    archive = stack.workdir / "dist" / f"rollback-{to}.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with archive.open("wb") as f:
        store.download(target.artifact_key, f)
    deployed = apply(stack, archive, target.artifact_sha256, rollback_of=to)
    assert deployed is not None
    return deployed


def destroy(stack: Stack) -> None:
    stack.sync()
    stack.terraform("init", "-input=false", "-no-color")
    placeholder = stack.workdir / "dist" / "destroy-placeholder.zip"
    placeholder.parent.mkdir(parents=True, exist_ok=True)
    if not placeholder.exists():
        import zipfile

        with zipfile.ZipFile(placeholder, "w") as zf:
            zf.writestr("README", "placeholder artifact used only by terraform destroy\n")
    stack.terraform(
        "destroy", "-input=false", "-no-color", "-auto-approve", *stack.var_args(placeholder)
    )
