"""The Google Cloud artifact, loaded the way Cloud Run functions load it, with only the stack's
environment.

``agentfn package --cloud gcp`` builds the source folder; Cloud Build's step is played by pip
installing its requirements.txt into a folder (``platform_path``). A clean interpreter
(``python -I -S``, nothing from this test's site-packages) then does what the functions
framework does on Cloud Run — ``functions_framework.create_app(target, source=main.py)`` with
the entry point the stack names — and calls it through Flask's test client. Its environment is
the stack's ``local.environment`` (resource names resolved to emulator resources made under
those names), what the platform sets, and the emulators' addresses, nothing else: the
subscription, secret ids and prefixes the code reads are the ones the stack declares.

The HTTP function answers /healthz, refuses a call without the API key and starts a run with
it; the message that run published is pulled from the Pub/Sub emulator and pushed to the
worker in Pub/Sub's push envelope, which runs the first step.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from agentfn.adapters.gcp.gcs import GcsBlobStore
from agentfn.adapters.gcp.pubsub import PubSubQueue
from agentfn.adapters.gcp.secret_manager import GcpSecretManagerStore
from agentfn.model_spec import OPENAI_KEY_SECRET
from tests.contract.backends.gcp import put_secret, secret_manager_client
from tests.support.deployed import PLATFORM_ENV, build_artifact, platform_path, run_clean
from tests.support.emulators.gcp import (
    PROJECT,
    ensure_gcs,
    ensure_pubsub,
    gcs_client,
    secret_manager,
)
from tests.support.pubsub_push import envelope
from tests.support.stacks import resources, stack_environment, stack_values

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "functions" / "local" / "example"
WORKSPACE = "/workspace"  # where Cloud Run functions put the function's source
API_KEY = "deployed-gcp-key"
OPENAI_SECRET = OPENAI_KEY_SECRET  # what an openai model step reads
_PLACEHOLDER = re.compile(r"<(google_[a-z0-9_]+)\.([a-z0-9_]+)\.name>")

# What the functions framework does on Cloud Run: load main.py, serve the stack's target.
APP = """
import json
import functions_framework

app = functions_framework.create_app(target={target!r}, source={source!r}, signature_type="http")
client = app.test_client()
"""

HTTP_CALLS = """
auth = {{"authorization": "Bearer " + {key!r}}}
out = {{"healthz": client.get("/healthz").status_code}}
out["console"] = "agentfn console" in client.get("/").get_data(as_text=True)
out["anonymous"] = client.post("/v1/runs", json={{"workflow": "research-brief"}}).status_code
workflow = open({workflow!r}, "rb").read()
out["put"] = client.put(
    "/v1/workflows/research-brief",
    data=workflow,
    headers={{**auth, "content-type": "application/yaml"}},
).status_code
started = client.post(
    "/v1/runs", json={{"workflow": "research-brief", "input": {{"subject": "edge"}}}}, headers=auth
)
out["run"] = [started.status_code, started.get_json()]
print(json.dumps(out))
"""

WORKER_CALLS = """
import time
from agentfn.functions import runtime
from agentfn.model_spec import OPENAI_KEY_SECRET

pushed = client.post("/", json={envelope!r})
# The same job, not due for a day: nacked so the backoff paces it; near the end of its
# deliveries: re-published (a hop) and acked.
later = json.loads(json.dumps({envelope!r}))
later["message"]["attributes"]["agentfn_not_before"] = repr(time.time() + 86400)
not_due = client.post("/", json=later).status_code
later["deliveryAttempt"] = int({max_deliveries!r}) - 1
hopped = client.post("/", json=later).status_code
# The model key is read the way a model step reads it: through the runtime's secret store.
model_key = runtime.current().secrets.get(OPENAI_KEY_SECRET)
print(json.dumps({{"status": pushed.status_code, "not_due": not_due, "hopped": hopped,
                  "model_key": model_key}}))
"""


def _function_env(function: str, stack_env: dict[str, str]) -> dict[str, str]:
    platform = {
        **PLATFORM_ENV["gcp"],
        "K_SERVICE": function,
        "K_CONFIGURATION": function,
        "K_REVISION": f"{function}-00001-abc",
        "FUNCTION_TARGET": stack_values(
            "gcp", "google_cloudfunctions2_function", "build_config", "entry_point"
        )[function],
    }
    emulators = {
        "STORAGE_EMULATOR_HOST": ensure_gcs(),
        "PUBSUB_EMULATOR_HOST": ensure_pubsub(),
        "SECRET_MANAGER_EMULATOR_HOST": secret_manager().url,
    }
    return {**stack_env, **platform, **emulators}


def _resolve(stack_env: dict[str, str], source: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The stack's environment with each resource reference named for this test, and the
    names given; the source folder stands where Cloud Run puts it."""
    names: dict[str, str] = {}
    suffix = uuid.uuid4().hex[:8]

    def name(match: re.Match[str]) -> str:
        return names.setdefault(match.group(0), f"{match.group(2).replace('_', '-')}-{suffix}")

    env = {key: _PLACEHOLDER.sub(name, value) for key, value in stack_env.items()}
    left = {k: v for k, v in env.items() if "<" in v}
    assert not left, f"references this test cannot stand in for: {left}"
    env["AGENTFN_PROJECT"] = env["AGENTFN_PROJECT"].replace(WORKSPACE, str(source), 1)
    return env, names


def _secret_ids(env: dict[str, str]) -> tuple[str, list[str]]:
    """The ids the stack gives its API key and model secrets (the allow-list it sets),
    rendered with the prefix it gives the secret store."""
    prefix = GcpSecretManagerStore.from_url(env["AGENTFN_SECRETS"]).prefix
    declared = {
        name: str(body["secret_id"]).strip('"')
        for name, body in resources("gcp", "google_secret_manager_secret").items()
    }
    template = "${local.secret_prefix}"
    assert declared["api_key"].startswith(template)
    assert declared["model"] == template + "${each.key}"
    models = [prefix + name for name in env["AGENTFN_MODEL_SECRETS"].split(",")]
    return declared["api_key"].replace(template, prefix), models


def _make_emulator_resources(env: dict[str, str]) -> PubSubQueue:
    """What apply would have made, under the names the stack's environment gives."""
    gcs_client().create_bucket(GcsBlobStore.from_url(env["AGENTFN_STORAGE"]).bucket_name)
    url_queue = PubSubQueue.from_url(env["AGENTFN_QUEUE"])
    # create() makes the topics, the dead-letter subscription and, under the stack's name,
    # the work subscription (pulled here to play the push subscription's part).
    return PubSubQueue.create(
        PROJECT,
        url_queue.topic,
        max_attempts=int(env["AGENTFN_MAX_ATTEMPTS"]),
        subscription=url_queue.subscription,
        dead_letter_topic=url_queue.dead_letter_topic,
        dead_letter_subscription=url_queue.dead_letter_subscription,
    )


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ensure_gcs(), ensure_pubsub(), secret_manager()
    scratch = tmp_path_factory.mktemp("deployed-gcp")
    artifact = build_artifact("gcp", scratch / "dist", project=EXAMPLE)
    path = platform_path("gcp", artifact, scratch)
    name = f"d{uuid.uuid4().hex[:8]}"
    stack_env = stack_environment(
        "gcp", {"project": PROJECT, "name": name, "region": "us-central1"}
    )
    env, names = _resolve(stack_env, artifact.path)
    api_key_id, model_ids = _secret_ids(env)
    client = secret_manager_client()
    put_secret(client, PROJECT, api_key_id, API_KEY)
    for secret_id in model_ids:
        put_secret(client, PROJECT, secret_id, f"model key {secret_id}")
    queue = _make_emulator_resources(env)
    return {
        "artifact": artifact,
        "path": path,
        "env": env,
        "stack_env": stack_env,
        "queue": queue,
        "model_ids": model_ids,
        "names": names,
    }


def _run(deployed: dict[str, Any], function: str, calls: str) -> dict[str, Any]:
    source = deployed["artifact"].path
    target = _function_env(function, {})["FUNCTION_TARGET"]
    code = APP.format(target=target, source=str(source / "main.py")) + calls
    out = run_clean(
        "gcp",
        code,
        path=deployed["path"],
        env=_function_env(function, deployed["env"]),
        stack_env=deployed["stack_env"],
        cwd=source,
    )
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_http_function_then_worker_run_a_step_as_deployed(deployed: dict[str, Any]) -> None:
    http = _run(
        deployed,
        "http",
        HTTP_CALLS.format(key=API_KEY, workflow=str(EXAMPLE / "workflow.yaml")),
    )
    assert http["healthz"] == 200
    assert http["console"] is True  # the console's files are in the source Cloud Build gets
    assert http["anonymous"] == 401
    assert http["put"] == 200
    status, run = http["run"]
    assert status == 202, run

    # The job the HTTP function published, delivered to the worker as Pub/Sub pushes it.
    queue: PubSubQueue = deployed["queue"]
    subscriber = queue._sub()
    pulled = subscriber.pull(
        request={"subscription": queue._sub_path, "max_messages": 1}, timeout=10
    )
    [received] = pulled.received_messages
    subscriber.acknowledge(subscription=queue._sub_path, ack_ids=[received.ack_id])
    push = envelope(received, queue._sub_path)
    max_deliveries = PubSubQueue.from_url(deployed["env"]["AGENTFN_QUEUE"]).max_deliveries
    calls = WORKER_CALLS.format(envelope=push, max_deliveries=max_deliveries)
    worker = _run(deployed, "worker", calls)
    assert (worker["status"], worker["not_due"], worker["hopped"]) == (204, 429, 200)
    [openai_id] = [i for i in deployed["model_ids"] if i.endswith(OPENAI_SECRET)]
    assert worker["model_key"] == f"model key {openai_id}"

    # The first step ran and its successor was published: the run moves on the worker.
    blobs = GcsBlobStore.from_url(deployed["env"]["AGENTFN_STORAGE"])
    assert any(run["id"] in key and "steps" in key for key in blobs.list().keys), blobs.list()
    attributes: list[dict[str, str]] = []
    for _ in range(3):  # a pull may return part of what is there
        nxt = subscriber.pull(
            request={"subscription": queue._sub_path, "max_messages": 50}, timeout=10
        )
        attributes += [dict(m.message.attributes) for m in nxt.received_messages]
        if not nxt.received_messages:
            break
    hops = [a for a in attributes if "agentfn_not_before" in a]
    assert len(hops) == 1 and hops[0]["agentfn_id"] == push["message"]["attributes"]["agentfn_id"]
    assert len(attributes) > len(hops), "the worker published no next step"


def test_only_stack_variables_reach_the_functions(deployed: dict[str, Any]) -> None:
    """The harness itself: a variable the stack does not set is refused before anything runs."""
    env = {**_function_env("worker", deployed["env"]), "AGENTFN_API_KEY": API_KEY}
    with pytest.raises(AssertionError, match="AGENTFN_API_KEY"):
        run_clean(
            "gcp",
            "print(1)",
            path=deployed["path"],
            env=env,
            stack_env=deployed["stack_env"],
            cwd=deployed["artifact"].path,
        )
