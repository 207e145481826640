"""The AWS stack for real: terraform init/validate/plan/apply against moto's server, boto3
checks of every resource, an empty second plan, deploy/rollback through the CLI, then destroy
leaves nothing behind. Slow (about two minutes, mostly the provider waiting on SQS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import hcl2
import pytest

from tests.support.deployed import WHEELHOUSE
from tests.support.emulators.aws import ensure_moto
from tests.support.stacks import MODULES

ROOT = Path(__file__).resolve().parents[2]
NAME = "tfstack"
BEDROCK_MODEL = "amazon.nova-lite-v1:0"

pytestmark = pytest.mark.slow


def agentfn(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentfn.functions.local.cli", *args],
        cwd=cwd,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    config = os.environ.get("TF_CLI_CONFIG_FILE", "")
    assert config and "filesystem_mirror" in Path(config).read_text(), (
        "TF_CLI_CONFIG_FILE must point at a CLI config with the AWS provider mirror "
        "(`make test` writes it when the machine image ships the mirror)"
    )
    endpoint = ensure_moto()
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AGENTFN_HOME": str(tmp_path_factory.mktemp("home")),
        "AGENTFN_DEPLOYER": "ci@test",
        # the deployer's machine builds offline, from the wheelhouse `make test` filled
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
    }
    yield env


def variable_default(name: str) -> str:
    """A variable's default in the AWS module (what a deploy without --var gets)."""
    with (MODULES / "aws" / "variables.tf").open() as f:
        variables = hcl2.load(f)["variable"]
    (body,) = [b for v in variables for k, b in v.items() if k.strip('"') == name]
    return str(body["default"])


def client(service: str, env: dict[str, str]) -> object:
    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def model_access(iam: object, lam: object) -> dict[str, tuple[list[str], str]]:
    """Per function: the resources its role may call Bedrock on, and its AGENTFN_MODEL_HOSTS."""

    def listed(value: str | list[str]) -> list[str]:
        return value if isinstance(value, list) else [value]

    found = {}
    for fn in ("http", "worker"):
        policy = iam.get_role_policy(RoleName=f"{NAME}-{fn}", PolicyName=f"{NAME}-{fn}")  # type: ignore[attr-defined]
        document = policy["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        bedrock = [
            resource
            for statement in document["Statement"]
            if any(a.startswith("bedrock:") for a in listed(statement["Action"]))
            for resource in listed(statement["Resource"])
        ]
        config = lam.get_function_configuration(FunctionName=f"{NAME}-{fn}")  # type: ignore[attr-defined]
        found[fn] = (bedrock, config["Environment"]["Variables"]["AGENTFN_MODEL_HOSTS"])
    return found


def test_deploy_check_redeploy_rollback_destroy(aws_env: dict[str, str], tmp_path: Path) -> None:
    common = ["--cloud", "aws", "--name", NAME, "--region", "us-east-1"]
    project = ROOT / "functions" / "local" / "example"

    planned = agentfn(
        "deploy", *common, "--project", str(project), "--plan", env=aws_env, cwd=tmp_path
    )
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "Plan: 22 to add" in planned.stdout

    first = agentfn("deploy", *common, "--project", str(project), env=aws_env, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    assert "Apply complete!" in first.stdout and "deployed version 1" in first.stdout

    workdir = (
        Path(aws_env["AGENTFN_HOME"]) / "deploy" / f"aws-{NAME}" / "terraform" / "examples" / "aws"
    )
    tf_env = {**os.environ, **aws_env}
    outputs = json.loads(
        subprocess.run(
            ["terraform", f"-chdir={workdir}", "output", "-json"],
            env=tf_env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert set(outputs) == {"api_url", "bucket", "queue", "dead_letter_queue", "secret"}
    bucket = outputs["bucket"]["value"]
    api_url = outputs["api_url"]["value"]
    assert api_url.startswith("https://") and not api_url.endswith("/"), api_url  # $API/v1/...

    # the resources exist, with the settings the functions rely on
    s3, sqs, sm, lam, apigw = (
        client(s, aws_env) for s in ("s3", "sqs", "secretsmanager", "lambda", "apigatewayv2")
    )
    # bucket names are global: the stack's holds the account and region, not only the name
    account = client("sts", aws_env).get_caller_identity()["Account"]  # type: ignore[attr-defined]
    assert bucket.startswith(f"{NAME}-") and account in bucket and "us-east-1" in bucket, bucket
    assert s3.head_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]  # type: ignore[attr-defined]
    aborts = [
        r for r in rules if r["Status"] == "Enabled" and "AbortIncompleteMultipartUpload" in r
    ]
    assert aborts and all(r.get("Filter", {}).get("Prefix", "") == "" for r in aborts), rules
    assert aborts[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1
    work_url = outputs["queue"]["value"]
    attrs = sqs.get_queue_attributes(QueueUrl=work_url, AttributeNames=["All"])["Attributes"]  # type: ignore[attr-defined]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f":{NAME}-dead-letter")
    assert (
        sm.describe_secret(SecretId=f"{NAME}/AGENTFN_API_KEY")["Name"] == f"{NAME}/AGENTFN_API_KEY"
    )  # type: ignore[attr-defined]
    for fn, handler in (
        ("http", "agentfn.functions.aws.http.handler"),
        ("worker", "agentfn.functions.aws.worker.handler"),
    ):
        config = lam.get_function_configuration(FunctionName=f"{NAME}-{fn}")  # type: ignore[attr-defined]
        assert config["Handler"] == handler and config["Runtime"] == "python3.11"
        variables = config["Environment"]["Variables"]
        assert variables["AGENTFN_STORAGE"] == f"s3://{bucket}"
        # SQS redrives only what the engine never got to fail: it must allow one delivery
        # more than the engine's attempts (the engine dead-letters itself after them)
        assert int(redrive["maxReceiveCount"]) == int(variables["AGENTFN_MAX_ATTEMPTS"]) + 1
        assert variables["AGENTFN_QUEUE"] == f"sqs://{NAME}-work"
        assert variables["AGENTFN_SECRETS"] == f"aws-sm://{NAME}/"
    mappings = [
        m
        for m in lam.list_event_source_mappings()["EventSourceMappings"]  # type: ignore[attr-defined]
        if m["FunctionArn"].endswith(f":function:{NAME}-worker")
    ]
    assert len(mappings) == 1 and mappings[0]["EventSourceArn"].endswith(f":{NAME}-work")
    assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # one job per invocation, so a slow step never waits behind others inside one timeout;
    # parallelism comes from bounded concurrency instead
    assert mappings[0]["BatchSize"] == 1
    concurrency = mappings[0]["ScalingConfig"]["MaximumConcurrency"]
    assert concurrency == int(variable_default("worker_concurrency")) >= 2
    apis = [a for a in apigw.get_apis()["Items"] if a["Name"] == f"{NAME}-api"]  # type: ignore[attr-defined]
    assert len(apis) == 1 and apis[0]["ProtocolType"] == "HTTP"
    # no cloud model by default: no Bedrock statement, only OpenAI's host for models
    iam = client("iam", aws_env)
    off = {fn: ([], "api.openai.com") for fn in ("http", "worker")}
    assert model_access(iam, lam) == off

    # a second plan is empty: no drift between the stack and the endpoint
    replan = subprocess.run(
        [
            "terraform",
            f"-chdir={workdir}",
            "plan",
            "-detailed-exitcode",
            "-no-color",
            "-input=false",
            "-var",
            f"name={NAME}",
            "-var",
            "region=us-east-1",
            "-var",
            f"artifact={workdir.parents[2] / 'dist' / 'agentfn-aws.zip'}",
        ],
        env=tf_env,
        capture_output=True,
        text=True,
    )
    assert replan.returncode == 0, replan.stdout[-3000:] + replan.stderr

    # a second deploy of other code records version 2; rolling back to 1 records version 3
    changed = tmp_path / "project-v2"
    subprocess.run(["cp", "-r", str(project), str(changed)], check=True)
    (changed / "NOTES.md").write_text("version 2\n")
    # ... granting a Bedrock model: both roles may invoke exactly it, its host is allowed
    bedrock = f'bedrock_models=["{BEDROCK_MODEL}"]'
    second = agentfn(
        "deploy", *common, "--project", str(changed), "--var", bedrock, env=aws_env, cwd=tmp_path
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    assert "deployed version 2" in second.stdout
    arn = f"arn:aws:bedrock:us-east-1::foundation-model/{BEDROCK_MODEL}"
    hosts = "api.openai.com,bedrock-runtime.us-east-1.amazonaws.com"
    assert model_access(iam, lam) == {fn: ([arn], hosts) for fn in ("http", "worker")}
    listed = agentfn("deployments", *common, env=aws_env, cwd=tmp_path)
    assert listed.returncode == 0 and "ci@test" in listed.stdout
    rolled = agentfn("rollback", *common, "--to", "1", env=aws_env, cwd=tmp_path)
    assert rolled.returncode == 0, rolled.stdout[-3000:] + rolled.stderr
    assert "now version 3" in rolled.stdout
    assert model_access(iam, lam) == off  # applied without the variable: the grant is gone
    versions = [
        json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())  # type: ignore[attr-defined]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix="deployments/versions/")["Contents"]  # type: ignore[attr-defined]
    ]
    assert [v["number"] for v in versions] == [1, 2, 3]
    assert versions[0]["artifact_sha256"] != versions[1]["artifact_sha256"]
    assert versions[2]["artifact_sha256"] == versions[0]["artifact_sha256"]
    assert versions[2]["rollback_of"] == 1
    code = lam.get_function(FunctionName=f"{NAME}-http")["Configuration"]["CodeSha256"]  # type: ignore[attr-defined]
    assert code  # moto reports the hash of the zip the rollback uploaded

    bad = agentfn("rollback", *common, "--to", "9", env=aws_env, cwd=tmp_path)
    assert bad.returncode == 2 and "no deployment number 9 (recorded: 1, 2, 3)" in bad.stderr

    # destroy leaves nothing behind
    gone = agentfn("destroy", *common, env=aws_env, cwd=tmp_path)
    assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr
    assert not [b for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(NAME)]  # type: ignore[attr-defined]
    assert not [u for u in sqs.list_queues().get("QueueUrls", []) if NAME in u]  # type: ignore[attr-defined]
    assert not [f for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith(NAME)]  # type: ignore[attr-defined]
    assert not [a for a in apigw.get_apis()["Items"] if a["Name"].startswith(NAME)]  # type: ignore[attr-defined]
    assert not [
        s
        for s in sm.list_secrets()["SecretList"]
        if s["Name"].startswith(NAME)  # type: ignore[attr-defined]
    ]


def test_terraform_errors_are_shown_not_swallowed(aws_env: dict[str, str], tmp_path: Path) -> None:
    result = agentfn(
        "deploy",
        "--cloud",
        "aws",
        "--name",
        "Bad_Name!",
        "--region",
        "us-east-1",
        "--plan",
        env=aws_env,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "name must be 3-31 lowercase letters" in result.stdout + result.stderr
    assert "error: terraform plan failed with exit code 1" in result.stderr
