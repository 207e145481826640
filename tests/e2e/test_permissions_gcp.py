"""The Google Cloud stack's grants against docs/deploy/gcp.md's "Who calls what" table.

Both ways: every row (but the deployer's, which the stack cannot grant) is an
``google_*_iam_member`` of the stack, and every such grant is a row. On top: no identity
holds a project-wide role that a resource-level grant could give, nobody holds a basic role,
the trigger can do nothing but invoke the worker, and the Pub/Sub service agent holds what
dead-lettering needs. A grant a variable switches on (``count``, such as Vertex AI's with
``vertex_ai``) is absent by default and present once the variable is set (``terraform
console`` evaluates the count), and its row's Calls say "only when `<variable>` is set".
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import hcl2
import pytest

from tests.support.stacks import (
    MODULES,
    check_switched_grants,
    hcl_text,
    permission_table,
    resources,
    terraform_value,
)

# A member expression of the stack -> the table's identity.
_MEMBERS = [
    (re.compile(r"^serviceAccount:\$\{google_service_account\.(\w+)\.email\}$"), r"\1"),
    (re.compile(r"^\$\{local\.pubsub_agent\}$"), "pubsub-agent"),
    (re.compile(r"^allUsers$"), "allUsers"),
]
# The argument naming the resource a grant is on, per IAM resource type.
_TARGET_ARGUMENT = {
    "google_storage_bucket_iam_member": "bucket",
    "google_pubsub_topic_iam_member": "topic",
    "google_pubsub_subscription_iam_member": "subscription",
    "google_secret_manager_secret_iam_member": "secret_id",
    "google_cloud_run_v2_service_iam_member": "name",
    "google_artifact_registry_repository_iam_member": "repository",
    "google_service_account_iam_member": "service_account_id",
    "google_project_iam_member": "project",
}
# Roles that exist only at project level: log entries are written to a project, never to a
# resource, so a build's log writer cannot be granted anything narrower; Vertex AI's
# publisher models (Gemini) are no resource of the project, so calling them
# (aiplatform.endpoints.predict) is granted on the project (and only with vertex_ai).
PROJECT_ONLY_ROLES = {"roles/logging.logWriter", "roles/aiplatform.user"}
BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
# A value that switches on each variable-switched grant (each is off by default).
SWITCHED_ON = {"vertex_ai": "true"}
_REF = re.compile(r"\$\{(google_[a-z0-9_]+\.[a-z0-9_]+)")


class Grant(NamedTuple):
    identity: str
    resource: str
    role: str


def _text(value: object) -> str:
    return str(value).strip('"')


def _identity(member: str) -> str:
    for pattern, identity in _MEMBERS:
        if pattern.match(member):
            return pattern.sub(identity, member)
    raise AssertionError(f"a grant to a member the table cannot name: {member!r}")


def _resource(body: dict[str, Any], argument: str) -> str:
    """``type.name`` of the resource a grant is on (``each.value`` follows ``for_each``)."""
    value = _text(body[argument])
    if value == "${var.project}":
        return "project"
    if value.startswith("${each."):
        value = _text(body["for_each"])
    found = _REF.match(value)
    assert found, f"grant on {value!r}: not a resource of the stack"
    return found.group(1)


def iam_resource_types() -> set[str]:
    """Every ``google_*_iam_member`` / ``_binding`` / ``_policy`` type the stack declares."""
    types = set()
    for tf in sorted((MODULES / "gcp").glob("*.tf")):
        with tf.open() as f:
            doc = hcl2.load(f)
        for item in doc.get("resource", []):
            types.update(
                _text(t) for t in item if re.search(r"_iam_(member|binding|policy)$", _text(t))
            )
    return types


def stack_grants() -> set[Grant]:
    return set(switched_grants())


def switched_grants() -> dict[Grant, str | None]:
    """Every grant of the stack, with the ``count`` that switches it (``None``: always)."""
    grants: dict[Grant, str | None] = {}
    for rtype in iam_resource_types():
        assert rtype.endswith("_iam_member"), (
            f"{rtype}: authoritative IAM would drop others' grants"
        )
        assert rtype in _TARGET_ARGUMENT, f"{rtype}: unknown IAM resource type"
        for body in resources("gcp", rtype).values():
            grant = Grant(
                _identity(_text(body["member"])),
                _resource(body, _TARGET_ARGUMENT[rtype]),
                _text(body["role"]),
            )
            assert grant not in grants, f"{grant}: granted twice"
            grants[grant] = hcl_text(body["count"]) if "count" in body else None
    return grants


def table_grants() -> tuple[set[Grant], set[Grant]]:
    """(the stack's rows, the deployer's rows) of the docs' table."""
    rows = permission_table("gcp")
    assert rows and set(rows[0]) == {"identity", "calls", "resource", "permission"}
    stack, deployer = set(), set()
    for row in rows:
        grant = Grant(row["identity"], row["resource"], row["permission"])
        (deployer if row["identity"] == "deployer" else stack).add(grant)
    return stack, deployer


def test_every_row_is_granted_and_every_grant_is_a_row() -> None:
    documented, _ = table_grants()
    granted = stack_grants()
    assert sorted(documented - granted) == [], "rows the stack does not grant"
    assert sorted(granted - documented) == [], "grants docs/deploy/gcp.md does not list"


def test_a_switched_grant_is_off_by_default_and_its_row_says_when() -> None:
    check_switched_grants("gcp", switched_grants(), SWITCHED_ON)


def test_vertex_ai_enables_its_api_only_when_on() -> None:
    """The stack enables every API it uses (google_project_service); Vertex AI's with the
    grants, not before."""
    [service] = resources("gcp", "google_project_service").values()
    apis = hcl_text(service["for_each"])
    assert "aiplatform.googleapis.com" not in terraform_value("gcp", apis)
    assert "aiplatform.googleapis.com" in terraform_value("gcp", apis, SWITCHED_ON)


def test_no_project_wide_role_where_a_resource_level_one_does() -> None:
    documented, deployer = table_grants()
    for grant in stack_grants() | documented:
        assert grant.role not in BASIC_ROLES, grant
        if grant.resource == "project":
            assert grant.role in PROJECT_ONLY_ROLES, f"{grant}: grant it on the resource instead"
    assert all(g.role not in BASIC_ROLES for g in deployer)


def test_the_trigger_only_invokes_the_worker() -> None:
    trigger = {g for g in stack_grants() if g.identity == "trigger"}
    assert trigger == {
        Grant("trigger", "google_cloudfunctions2_function.worker", "roles/run.invoker")
    }
    [subscription] = [
        body
        for name, body in resources("gcp", "google_pubsub_subscription").items()
        if "push_config" in body
    ]
    [push] = subscription["push_config"]
    [token] = push["oidc_token"]
    assert _text(token["service_account_email"]) == "${google_service_account.trigger.email}"
    assert _text(push["push_endpoint"]).startswith("${google_cloudfunctions2_function.worker.")


def test_dead_lettering_has_what_pubsub_needs() -> None:
    """The delivery subscription forwards to the dead-letter topic as the service agent."""
    subscriptions = resources("gcp", "google_pubsub_subscription")
    [delivery] = [name for name, body in subscriptions.items() if "push_config" in body]
    [policy] = subscriptions[delivery]["dead_letter_policy"]
    dead_topic = _REF.match(_text(policy["dead_letter_topic"]))
    assert dead_topic
    agent = {g for g in stack_grants() if g.identity == "pubsub-agent"}
    assert Grant("pubsub-agent", dead_topic.group(1), "roles/pubsub.publisher") in agent
    assert (
        Grant("pubsub-agent", f"google_pubsub_subscription.{delivery}", "roles/pubsub.subscriber")
        in agent
    )
    for body in subscriptions.values():  # nothing the stack relies on expires when idle
        [expiration] = body["expiration_policy"]
        assert _text(expiration["ttl"]) == ""


@pytest.mark.parametrize(
    ("identity", "needed"),
    [
        # The HTTP API reads the key, starts runs (publishes) and keeps records in the bucket.
        ("http", {"roles/secretmanager.secretAccessor", "roles/pubsub.publisher"}),
        # The worker runs steps (model keys), publishes next steps and dead letters.
        ("worker", {"roles/secretmanager.secretAccessor", "roles/pubsub.publisher"}),
    ],
)
def test_each_function_reads_only_its_own_secrets(identity: str, needed: set[str]) -> None:
    grants = {g for g in stack_grants() if g.identity == identity}
    assert needed <= {g.role for g in grants}
    secrets = {g.resource for g in grants if g.role == "roles/secretmanager.secretAccessor"}
    expected = {
        "http": {"google_secret_manager_secret.api_key"},
        "worker": {"google_secret_manager_secret.model"},
    }[identity]
    assert secrets == expected


def test_the_deployer_can_write_its_version_record() -> None:
    """``agentfn deploy`` writes the deployment record into the stack's bucket after apply."""
    _, deployer = table_grants()
    assert Grant("deployer", "google_storage_bucket.store", "roles/storage.objectUser") in deployer
