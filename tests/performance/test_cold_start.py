"""Cold-start guard: every HTTP entry point, imported in a fresh interpreter and answering its
first ``GET /healthz``, stays within a budget of the bare platform library doing the same, and
loads nothing that path does not need (pydantic, the engine, cloud SDKs).

The entry points, the bare baselines and the first request are the benchmark's own table
(tests/bench/handlers.py), so the guard and ``make bench`` measure the same thing. This is a
budget, not a benchmark: the best of several interleaved runs per side, a generous ratio, so a
noisy machine does not fail it while a heavy import on the cold path does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.bench.handlers import BARE_SOURCES, CASES, ROOT
from tests.support.stacks import stack_environment

RUNS = 5
# ours / bare, best of RUNS each, plus a small absolute allowance for timer noise.
BUDGET_RATIO = 1.6
BUDGET_SLACK_MS = 25.0

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

PROGRAM = """
import json, sys, time
t0 = time.perf_counter()
{imports}
{call}
cold_ms = (time.perf_counter() - t0) * 1000
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {roots!r})
print(json.dumps({{"cold_ms": cold_ms, "loaded": loaded}}))
"""


def _measure(imports: str, call: str, folder: Path, env: dict[str, str]) -> dict[str, object]:
    roots = sorted({m.split(".")[0] for m in NOT_ON_THE_HEALTH_PATH})
    program = PROGRAM.format(imports=imports, call=call, roots=roots)
    out = subprocess.run(
        [sys.executable, "-c", program],
        cwd=folder,
        env={
            **env,
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(folder),
            "PYTHONPATH": str(folder),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _heavy(loaded: object, allowed: set[str]) -> list[str]:
    assert isinstance(loaded, list)
    return sorted(
        m
        for m in loaded
        if any(m == h or m.startswith(h + ".") for h in NOT_ON_THE_HEALTH_PATH) and m not in allowed
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_health_path_cold_start_is_within_budget_of_the_bare_library(
    case: str, tmp_path: Path
) -> None:
    (tmp_path / "bare.py").write_text(textwrap.dedent(BARE_SOURCES[case]))
    # Exactly the environment the cloud's stack gives its functions, nothing more.
    cloud = case.split()[0].split("-")[0]
    env = stack_environment(cloud, {"name": "coldstart", "project": "coldstart"})
    runs: dict[str, list[dict[str, object]]] = {"ours": [], "bare": []}
    for _ in range(RUNS):  # interleaved, so drift hits both sides alike
        for side, (imports, call) in CASES[case].items():
            imports = imports.format(
                ours_gcp=str(ROOT / "functions" / "gcp" / "main.py"),
                bare_path=str(tmp_path / "bare.py"),
            )
            runs[side].append(_measure(imports, call, tmp_path, env))
    bare_loaded = set(runs["bare"][0]["loaded"])  # type: ignore[arg-type]
    heavy = _heavy(runs["ours"][0]["loaded"], bare_loaded)
    assert not heavy, f"{case}: GET /healthz loaded {heavy}"

    ours = min(float(r["cold_ms"]) for r in runs["ours"])  # type: ignore[arg-type]
    bare = min(float(r["cold_ms"]) for r in runs["bare"])  # type: ignore[arg-type]
    budget = bare * BUDGET_RATIO + BUDGET_SLACK_MS
    assert ours <= budget, (
        f"{case}: cold start {ours:.0f} ms > budget {budget:.0f} ms "
        f"(bare {bare:.0f} ms x {BUDGET_RATIO} + {BUDGET_SLACK_MS:.0f} ms)"
    )


def test_the_guard_sees_a_heavy_import() -> None:
    """The check above is not vacuous: pydantic on the path is reported."""
    assert _heavy(["pydantic", "pydantic.main", "json"], set()) == ["pydantic", "pydantic.main"]
    assert _heavy(["pydantic"], {"pydantic"}) == []
