"""Who calls what on AWS: the table in docs/deploy/aws.md against the stack, both ways.

Each IAM grant the stack makes (the roles' inline policies, the Lambda permission for API
Gateway) is a row of the table, and each row of the table is granted, for exactly the resource
the row names: a wildcard action or a resource broader than the row fails. The deployer's
rows come from no stack (they are the person's credentials): they are checked against the
S3 calls ``agentfn deploy``'s version record really makes, recorded on moto.

Resources are written as Terraform addresses: ``aws_s3_bucket.store/*`` is
``${aws_s3_bucket.store.arn}/*`` in the stack, ``local.stack_secrets`` is
``${local.stack_secrets}``.

A grant a variable switches on (a ``dynamic "statement"``, such as Bedrock's with
``bedrock_models``) is a row too, whose Calls say "only when `<variable>` is set"; Terraform
itself (``terraform console``) shows the statement absent by default, present once the
variable is set, and on exactly the resources the row names.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import hcl2
import pytest

from tests.support.stacks import (
    MODULES,
    ONLY_WHEN,
    hcl_text,
    permission_table,
    resources,
    terraform_value,
)

Grant = tuple[str, str, str]  # (identity, resource, action)

# How each identity of the table is found in the stack.
ROLE_IDENTITIES = {  # identities acting with a Lambda's execution role
    "http function": "http",  # the function API Gateway's integration targets
    "worker": "worker",  # the function the event source mapping invokes...
    "trigger": "worker",  # ...and the mapping itself, which polls with that function's role
}
API_GATEWAY = "API Gateway"
DEPLOYER = "deployer"
# What an SQS event source mapping must be allowed on its queue (Lambda refuses to create the
# mapping without them).
TRIGGER_NEEDS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
# The IAM action each S3 API operation of the deployer's code path is authorised by.
S3_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
}
# A value that switches on each variable-switched grant (each is off by default).
SWITCHED_ON = {
    "bedrock_models": '["anthropic.claude-3-haiku-20240307-v1:0", "amazon.nova-lite-v1:0"]'
}


def unquote(value: object) -> str:
    return str(value).strip('"')


def address(expression: str) -> str:
    """``${aws_x.y.arn}/*`` → ``aws_x.y/*``; ``${local.z}`` → ``local.z``."""
    return re.sub(
        r"\$\{([^{}]+)\}",
        lambda m: re.sub(r"\.(arn|id|function_name|invoke_arn)$", "", m.group(1)),
        unquote(expression),
    )


def policy_documents() -> dict[str, list[dict[str, Any]]]:
    """``{document name: statements}`` of every aws_iam_policy_document in the module. A
    ``dynamic "statement"`` is its content plus ``for_each``, the expression switching it."""
    found: dict[str, list[dict[str, Any]]] = {}
    for tf in sorted((MODULES / "aws").glob("*.tf")):
        with tf.open() as f:
            doc = hcl2.load(f)
        for item in doc.get("data", []):
            for dtype, named in item.items():
                if unquote(dtype) == "aws_iam_policy_document":
                    for name, body in named.items():
                        statements = list(body.get("statement", []))
                        for dynamic in body.get("dynamic", []):
                            for label, spec in dynamic.items():
                                assert unquote(label) == "statement", label
                                assert "iterator" not in spec, spec
                                [content] = spec["content"]
                                assert "for_each" not in content
                                statements.append({**content, "for_each": spec["for_each"]})
                        found[unquote(name)] = statements
    return found


def listed(value: object) -> list[object]:
    """A statement's actions or resources: a list, or one expression naming a list."""
    return value if isinstance(value, list) else [value]


def role_of_function(function: str) -> str:
    lam = resources("aws", "aws_lambda_function")[function]
    return address(lam["role"]).removeprefix("aws_iam_role.")


def function_of(ref: str) -> str:
    return address(ref).removeprefix("aws_lambda_function.")


def stack_grants() -> set[Grant]:
    """Every grant of the stack, attributed to the identities that act with it."""
    return set(switched_grants())


def switched_grants() -> dict[Grant, str | None]:
    """Every grant of the stack, with the expression that switches it (``None``: always)."""
    integration = next(iter(resources("aws", "aws_apigatewayv2_integration").values()))
    mapping = next(iter(resources("aws", "aws_lambda_event_source_mapping").values()))
    functions = {
        "http": function_of(integration["integration_uri"]),
        "worker": function_of(mapping["function_name"]),
    }
    documents = policy_documents()
    role_policies = {
        address(p["role"]).removeprefix("aws_iam_role."): address(p["policy"])
        for p in resources("aws", "aws_iam_role_policy").values()
    }
    assert len(role_policies) == len(resources("aws", "aws_iam_role_policy")), role_policies
    assert not resources("aws", "aws_iam_role_policy_attachment"), "managed policies are broad"
    grants: dict[Grant, str | None] = {}
    for identity, function in ROLE_IDENTITIES.items():
        policy = role_policies[role_of_function(functions[function])]
        document = policy.removeprefix("data.aws_iam_policy_document.").removesuffix(".json")
        for statement in documents[document]:
            assert unquote(statement.get("effect", "Allow")) == "Allow", statement
            assert "not_actions" not in statement and "not_resources" not in statement
            switch = hcl_text(statement["for_each"]) if "for_each" in statement else None
            for action in listed(statement["actions"]):
                for resource in listed(statement["resources"]):
                    grant = (identity, address(resource), unquote(action))
                    assert grants.get(grant, switch) == switch, f"{grant}: granted twice"
                    grants[grant] = switch
    for permission in resources("aws", "aws_lambda_permission").values():
        assert unquote(permission["principal"]) == "apigateway.amazonaws.com", permission
        api = address(permission["source_arn"])
        assert re.fullmatch(r"aws_apigatewayv2_api\.\w+\.execution_arn/\*/\*", api), api
        assert "count" not in permission and "for_each" not in permission
        grants[
            (API_GATEWAY, address(permission["function_name"]), unquote(permission["action"]))
        ] = None
    return grants


def table_grants(identities: set[str]) -> set[Grant]:
    grants: set[Grant] = set()
    for row in permission_table("aws"):
        if row["identity"] not in identities:
            continue
        for action in row["permission"].split(","):
            grants.add((row["identity"], row["resource"], action.strip()))
    return grants


def test_every_identity_of_the_table_is_known() -> None:
    known = {*ROLE_IDENTITIES, API_GATEWAY, DEPLOYER}
    rows = permission_table("aws")
    assert {r["identity"] for r in rows} == known, rows
    assert all(r["calls"] for r in rows), "each row says what the identity calls"


def test_the_stack_grants_exactly_the_table() -> None:
    granted = stack_grants()
    table = table_grants({*ROLE_IDENTITIES, API_GATEWAY})
    for identity, resource, action in granted:
        assert "*" not in action, f"wildcard action {action} for {identity}"
        assert resource != "*" and not resource.startswith("arn:"), (identity, resource)
    # rows of identities sharing one role are granted together: compare per role
    by_role: dict[str, tuple[set[Grant], set[Grant]]] = {}
    for identity, function in ROLE_IDENTITIES.items():
        got, want = by_role.setdefault(function, (set(), set()))
        got.update((function, r, a) for i, r, a in granted if i == identity)
        want.update((function, r, a) for i, r, a in table if i == identity)
    for function, (got, want) in by_role.items():
        assert want - got == set(), f"{function}: rows the stack does not grant"
        assert got - want == set(), f"{function}: grants no row of the table names"
    api = {g for g in granted if g[0] == API_GATEWAY}
    assert api == {g for g in table if g[0] == API_GATEWAY}, api


def test_a_switched_grant_is_off_by_default_and_its_row_says_when() -> None:
    """Each ``dynamic "statement"`` is absent by default and present once its variable is set,
    and the table's rows say so for exactly those grants ("only when `<variable>` is set")."""
    switched = {g: s for g, s in switched_grants().items() if s is not None}
    assert switched, "the Bedrock statements (bedrock_models) are dynamic statements"
    for grant, switch in switched.items():
        variables = set(re.findall(r"\bvar\.(\w+)", switch))
        assert variables and variables <= set(SWITCHED_ON), (grant, switch)
        on = {name: SWITCHED_ON[name] for name in variables}
        assert terraform_value("aws", f"length({switch})") == 0, f"{grant}: granted by default"
        assert terraform_value("aws", f"length({switch})", on) == 1, f"{grant}: never granted"
    by_role = {(ROLE_IDENTITIES.get(i, i), r, a): s for (i, r, a), s in switched_grants().items()}
    for row in permission_table("aws"):
        said = set(ONLY_WHEN.findall(row["calls"]))
        for action in row["permission"].split(","):
            key = (ROLE_IDENTITIES.get(row["identity"], row["identity"]), row["resource"])
            switch = by_role.get((*key, action.strip()))
            wanted = set(re.findall(r"\bvar\.(\w+)", switch or ""))
            assert said == wanted, f"{row}: its Calls must say only when {wanted or 'never'}"


def test_bedrock_is_granted_on_exactly_the_models_given() -> None:
    """The Bedrock statements' resources: none by default, else each model's foundation-model
    ARN in the stack's region; ids that are not one foundation model are refused."""
    assert terraform_value("aws", "local.bedrock_models") == []
    models = json.loads(SWITCHED_ON["bedrock_models"])
    given = {"region": "eu-west-1", "bedrock_models": json.dumps(models)}
    assert terraform_value("aws", "local.bedrock_models", given) == [
        f"arn:aws:bedrock:eu-west-1::foundation-model/{model}" for model in models
    ]
    for refused in ("*", "anthropic.*", "us.amazon.nova-lite-v1:0", "arn:aws:bedrock:x"):
        with pytest.raises(AssertionError, match="bedrock_models must be Bedrock foundation"):
            terraform_value(
                "aws", "local.bedrock_models", {**given, "bedrock_models": json.dumps([refused])}
            )


def test_the_trigger_rows_are_what_the_event_source_mapping_needs() -> None:
    rows = table_grants({"trigger"})
    mapping = next(iter(resources("aws", "aws_lambda_event_source_mapping").values()))
    queue = address(mapping["event_source_arn"])
    assert {(r, a) for _, r, a in rows} == {(queue, a) for a in TRIGGER_NEEDS}


@pytest.fixture
def recorded_s3() -> Iterator[tuple[str, list[str]]]:
    """A bucket on moto and the S3 operations made on it while the test runs."""
    from tests.support.emulators.aws import ensure_moto

    ensure_moto()
    bucket = f"deployer-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    calls: list[str] = []

    def record(model: Any, params: Any, **_: Any) -> None:
        if params.get("Bucket") == bucket:
            calls.append(model.name)

    session_events = boto3.DEFAULT_SESSION._session.get_component("event_emitter")  # type: ignore[union-attr]
    session_events.register("provide-client-params.s3", record)
    try:
        yield bucket, calls
    finally:
        session_events.unregister("provide-client-params.s3", record)


def test_the_deployer_rows_are_what_agentfn_deploy_calls(
    recorded_s3: tuple[str, list[str]], tmp_path: Path
) -> None:
    from agentfn.adapters.aws.s3 import PART_SIZE
    from agentfn.functions.local.deploy import bucket_store, deployments, record

    bucket, calls = recorded_s3
    store = bucket_store("aws", bucket)
    for size in (1024, PART_SIZE + 1):  # a small artifact, and one uploaded in parts
        archive = tmp_path / f"agentfn-{size}.zip"
        archive.write_bytes(uuid.uuid4().bytes * (size // 16 + 1))
        record(store, "aws", archive, hashlib.sha256(archive.read_bytes()).hexdigest())
    first = deployments(store)[0]  # what `agentfn deployments` and `rollback` read
    with (tmp_path / "rollback.zip").open("wb") as f:
        store.download(first.artifact_key, f)
    assert {"CreateMultipartUpload", "PutObject", "ListObjectsV2"} <= set(calls), calls
    unknown = set(calls) - set(S3_ACTIONS)
    assert not unknown, f"map these S3 operations to their IAM action: {unknown}"
    bucket_address = "aws_s3_bucket.store"
    needed = {
        (DEPLOYER, bucket_address if S3_ACTIONS[c] == "s3:ListBucket" else f"{bucket_address}/*",
         S3_ACTIONS[c])
        for c in calls
    }  # fmt: skip
    # AbortMultipartUpload runs only when an upload fails; the row keeps it so a failed
    # deploy cleans up its parts
    needed.add((DEPLOYER, f"{bucket_address}/*", "s3:AbortMultipartUpload"))
    assert table_grants({DEPLOYER}) == needed
