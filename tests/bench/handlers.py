"""Cold start and warm overhead of each cloud's HTTP handler, loaded from the artifact
``agentfn package`` builds, beside a bare hello-world on the same platform library
(Powertools resolver, functions-framework, azure-functions) from the same artifact.

Both sides run as the platform runs them: a clean interpreter of the runtime's version
(``python -I -S``) whose path holds only the artifact as the platform lays it out, with only
the environment the cloud's Terraform stack sets. Measuring the source tree instead would
time a different program: an editable install, bytecode the artifact may not carry, packages
the artifact may not hold. Cold start = the program timing its own imports plus the first
``GET /healthz`` (interpreter start-up is the same on both sides and left out). Warm = mean
time per request after the first, in one process.

The guard test (tests/performance/test_cold_start.py) and ``make bench`` share this table.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentfn.functions.local.cli import EXAMPLE
from tests.support.deployed import PLATFORM_ENV, build_artifact, platform_path, run_clean
from tests.support.stacks import stack_environment

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "events" / "samples"
COLD_RUNS = 7
WARM_REQUESTS = 300
# What /healthz never needs. A module the bare baseline loads by itself is the platform's.
NOT_ON_THE_HEALTH_PATH = (
    "pydantic",
    "yaml",
    "httpx",
    "agentfn.engine",
    "agentfn.catalog",
    "agentfn.workflows",
    "agentfn.adapters",
    "boto3",
    "botocore",
    "google.cloud.storage",
    "google.cloud.pubsub",
    "google.cloud.secretmanager",
    "azure.storage",
    "azure.identity",
    "azure.keyvault",
    "openai",
    "libcloud",
)
INSPECTED_ROOTS = tuple(sorted({m.split(".")[0] for m in NOT_ON_THE_HEALTH_PATH}))

AWS_EVENT = json.loads((SAMPLES / "aws" / "lambda_function_url.json").read_text())

# Prints {"cold_ms", "warm_ms", "loaded"}; {imports} and {call} differ per side.
PROGRAM = """
import json, sys, time
t0 = time.perf_counter()
{imports}
{call}
cold = (time.perf_counter() - t0) * 1000
t1 = time.perf_counter()
for _ in range({n}):
    {call}
warm = (time.perf_counter() - t1) * 1000 / max({n}, 1)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {roots!r})
print(json.dumps({{"cold_ms": cold, "warm_ms": warm, "loaded": loaded}}))
"""

BARE_POWERTOOLS = """
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
app = APIGatewayHttpResolver()
@app.get("/healthz")
def health():
    return {"status": "ok"}
def handler(event, context):
    return app.resolve(event, context)
"""

BARE_GCP = """
import functions_framework
@functions_framework.http
def http(request):
    return {"status": "ok"}
"""

BARE_AZURE = """
import azure.functions as func
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
@app.route(route="{*path}", methods=["GET"])
def http(req):
    return func.HttpResponse('{"status":"ok"}', mimetype="application/json")
"""

AZURE_REQUEST = (
    "__import__('azure.functions', fromlist=['x']).HttpRequest(method='GET', "
    "url='https://x/healthz', headers={}, params={}, route_params={'path': 'healthz'}, body=b'')"
)
FF_CLIENT = (
    "import functions_framework as ff\nclient = ff.create_app('http', {source!r}).test_client()"
)


@dataclass(frozen=True)
class Case:
    """One handler: its cloud, the bare hello-world's source, and each side's program."""

    cloud: str
    bare_source: str
    ours: tuple[str, str]  # (imports, first request); {app} is the artifact's root folder
    bare: tuple[str, str]  # {bare} is the folder holding bare.py


CASES: dict[str, Case] = {
    "aws-lambda (Powertools APIGatewayHttpResolver)": Case(
        cloud="aws",
        bare_source=BARE_POWERTOOLS,
        ours=("import agentfn.functions.aws.http as m", f"m.handler({AWS_EVENT!r}, None)"),
        bare=("import bare as m", f"m.handler({AWS_EVENT!r}, None)"),
    ),
    "gcp (functions-framework)": Case(
        cloud="gcp",
        bare_source=BARE_GCP,
        ours=(FF_CLIENT.replace("{source!r}", "{app!r} + '/main.py'"), "client.get('/healthz')"),
        bare=(FF_CLIENT.replace("{source!r}", "{bare!r} + '/bare.py'"), "client.get('/healthz')"),
    ),
    "azure (azure-functions v2)": Case(
        cloud="azure",
        bare_source=BARE_AZURE,
        ours=(
            "import function_app\n"
            "call = next(f for f in function_app.app.get_functions() "
            "if f.get_function_name() == 'http').get_user_function()",
            f"call({AZURE_REQUEST})",
        ),
        bare=(
            "import bare as m\ncall = m.http.build().get_user_function()",
            f"call({AZURE_REQUEST})",
        ),
    ),
}


@dataclass(frozen=True)
class Staged:
    """One cloud's artifact laid out as its platform does, with a bare.py beside it."""

    cloud: str
    path: list[Path]  # sys.path: the bare folder, then the platform's folders
    app: Path  # the artifact's root folder
    bare: Path
    env: dict[str, str]  # the stack's environment and the platform's own variables
    stack_env: dict[str, str]


def stage(case: Case, scratch: Path) -> Staged:
    """Build ``case``'s artifact and lay it out under ``scratch`` as its platform would."""
    cloud = case.cloud
    artifact = build_artifact(cloud, scratch / "dist", EXAMPLE)
    path = platform_path(cloud, artifact, scratch)
    bare = scratch / "bare"
    bare.mkdir()
    (bare / "bare.py").write_text(textwrap.dedent(case.bare_source))
    stack_env = stack_environment(
        cloud, {"name": "coldstart", "project": "coldstart", "region": "us-central1"}
    )
    return Staged(
        cloud=cloud,
        path=[bare, *path],
        app=path[0],
        bare=bare,
        env={**PLATFORM_ENV[cloud], **stack_env},
        stack_env=stack_env,
    )


def run_side(case: Case, side: str, staged: Staged, *, warm: int = 0) -> dict[str, Any]:
    """One fresh interpreter running ``side`` ("ours" or "bare") of ``case``."""
    imports, call = case.ours if side == "ours" else case.bare
    program = PROGRAM.format(
        imports=imports.format(app=str(staged.app), bare=str(staged.bare)),
        call=call,
        n=warm,
        roots=INSPECTED_ROOTS,
    )
    out = run_clean(
        staged.cloud,
        program,
        path=staged.path,
        env=staged.env,
        stack_env=staged.stack_env,
        cwd=staged.bare,
    )
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def measure() -> list[dict[str, Any]]:
    rows = []
    for name, case in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            staged = stage(case, Path(tmp))
            samples: dict[str, list[dict[str, Any]]] = {"ours": [], "bare": []}
            for _ in range(COLD_RUNS):  # interleaved, so drift hits both sides alike
                for side in samples:
                    samples[side].append(run_side(case, side, staged, warm=WARM_REQUESTS))
        cold = {s: statistics.median(x["cold_ms"] for x in v) for s, v in samples.items()}
        warm = {s: statistics.median(x["warm_ms"] for x in v) for s, v in samples.items()}
        rows.append(
            {
                "name": name,
                "cold_ms": cold["ours"],
                "bare_cold_ms": cold["bare"],
                "cold_ratio": cold["ours"] / cold["bare"],
                "warm_ms": warm["ours"],
                "bare_warm_ms": warm["bare"],
                "warm_ratio": warm["ours"] / warm["bare"],
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| handler | cold start (ms) | bare (ms) | ratio | warm request (ms) | bare (ms) | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['cold_ms']:.0f} | {r['bare_cold_ms']:.0f} | "
            f"{r['cold_ratio']:.2f}x | {r['warm_ms']:.3f} | {r['bare_warm_ms']:.3f} | "
            f"{r['warm_ratio']:.2f}x |"
        )
    return "\n".join(lines) + (
        f"\n\nBoth sides load from the artifact `agentfn package` builds, as the platform lays "
        f"it out, with the stack's environment. Cold start: median of {COLD_RUNS} fresh "
        f"interpreters, imports plus a first `GET /healthz`. Warm: mean of {WARM_REQUESTS} "
        "requests. Target: cold start within 1.2x of the bare baseline.\n"
    )
