"""Cold start and warm overhead of each cloud handler beside a bare hello-world on the same
library (Powertools resolver, functions-framework, azure-functions), measured in this run.

Cold start = a fresh interpreter timing its own imports plus the first request (interpreter
start-up itself is the same for both sides and left out). Warm = mean time per request after
the first, in one process.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "events" / "samples"
COLD_RUNS = 7
WARM_REQUESTS = 300

AWS_EVENT = json.loads((SAMPLES / "aws" / "lambda_function_url.json").read_text())

# Each program prints {"cold_ms": …, "warm_ms": …}; {IMPORT} and {CALL} differ per side.
HARNESS = """
import json, sys, time
t0 = time.perf_counter()
{IMPORT}
{CALL}
cold = (time.perf_counter() - t0) * 1000
t1 = time.perf_counter()
for _ in range({N}):
    {CALL_INDENTED}
warm = (time.perf_counter() - t1) * 1000 / {N}
print(json.dumps({{"cold_ms": cold, "warm_ms": warm}}))
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

CASES: dict[str, dict[str, tuple[str, str]]] = {
    "aws-lambda (Powertools APIGatewayHttpResolver)": {
        "ours": ("import agentfn.functions.aws.http as m", f"m.handler({AWS_EVENT!r}, None)"),
        "bare": ("import bare as m", f"m.handler({AWS_EVENT!r}, None)"),
    },
    "gcp (functions-framework)": {
        "ours": (
            "import functions_framework as ff\n"
            "client = ff.create_app('http', {ours_gcp!r}).test_client()",
            "client.get('/healthz')",
        ),
        "bare": (
            "import functions_framework as ff\n"
            "client = ff.create_app('http', {bare_path!r}).test_client()",
            "client.get('/healthz')",
        ),
    },
    "azure (azure-functions v2)": {
        "ours": (
            "import agentfn.functions.azure.function_app as m\ncall = m.http.build().get_user_function()",
            f"call({AZURE_REQUEST})",
        ),
        "bare": (
            "import bare as m\ncall = m.http.build().get_user_function()",
            f"call({AZURE_REQUEST})",
        ),
    },
}
BARE_SOURCES = {
    "aws-lambda (Powertools APIGatewayHttpResolver)": BARE_POWERTOOLS,
    "gcp (functions-framework)": BARE_GCP,
    "azure (azure-functions v2)": BARE_AZURE,
}


def _program(imports: str, call: str) -> str:
    return HARNESS.format(IMPORT=imports, CALL=call, CALL_INDENTED=call, N=WARM_REQUESTS)


def _run(program: str, folder: Path, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", program],
        cwd=folder,
        env={**os.environ, **env, "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure() -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {
            "AGENTFN_HOME": str(folder / "home"),
            "AGENTFN_API_KEY": "bench",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "bench",
        }
        for name, sides in CASES.items():
            (folder / "bare.py").write_text(textwrap.dedent(BARE_SOURCES[name]))
            samples: dict[str, list[dict[str, float]]] = {"ours": [], "bare": []}
            for _ in range(COLD_RUNS):  # interleaved, so drift hits both sides alike
                for side, (imports, call) in sides.items():
                    imports = imports.format(
                        ours_gcp=str(ROOT / "functions" / "gcp" / "main.py"),
                        bare_path=str(folder / "bare.py"),
                    )
                    samples[side].append(_run(_program(imports, call), folder, env))
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
        f"\n\nCold start: median of {COLD_RUNS} fresh interpreters, imports plus a first "
        f"`GET /healthz`. Warm: mean of {WARM_REQUESTS} requests. Target: cold start within "
        "1.5x of the bare baseline.\n"
    )
