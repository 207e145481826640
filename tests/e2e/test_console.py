"""The web console in a real headless browser (Debian's chromium, driven by Playwright) against
`agentfn serve` with a worker: start a run from the form built from the workflow's inputs, watch
the graph's nodes light up until it completes, open a failed step and read its error, filter
the runs list, see the costs; served with a strict content security policy and hashed,
immutable assets. Screenshots go to .emulators/artifacts/console/."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.collaboration_team import TEAM
from tests.support.emulators import free_port
from tests.support.engine_harness import HEADER, RULES, TOOLS
from tests.support.entry_points import REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / ".emulators" / "artifacts" / "console"
KEY = "console-bootstrap-key-0123456789"
# Chromium as this machine's closed network needs it: no background connections at all.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SLOW = f"""name: steps
{HEADER.strip()}
inputs:
  label: {{type: string, required: true, description: what to record}}
  pause: {{type: number, default: 0.6}}
nodes:
  - {{id: first, type: tool, tool: slow, args: {{label: "{{{{ input.label }}}}", seconds: "{{{{ input.pause }}}}"}}}}
  - {{id: second, type: tool, tool: slow, args: {{label: two, seconds: "{{{{ input.pause }}}}"}}}}
  - {{id: greet, type: agent, agent: echo, prompt: "hello {{{{ input.label }}}}"}}
edges:
  - {{from: first, to: second}}
  - {{from: second, to: greet}}
"""
BREAKS = f"""name: breaks
{HEADER.strip()}
nodes:
  - {{id: boom, type: tool, tool: explode, args: {{message: the disk is on fire}}, retry: {{max_attempts: 1}}}}
"""

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (make test installs it)"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("console")
    project = tmp / "project"
    project.mkdir()
    (project / "tools.py").write_text(TOOLS)
    (project / "rules.yaml").write_text(RULES)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AGENTFN_HOME": str(tmp / "home"),
        "AGENTFN_PROJECT": str(project),
        "AGENTFN_SECRETS": "env://",
        "AGENTFN_API_KEY": KEY,
    }
    log = (tmp / "serve.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentfn.functions.local.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (tmp / "serve.log").read_text()
        time.sleep(0.1)
    auth = {"authorization": f"Bearer {KEY}", "content-type": "application/yaml"}
    for name, text in (("steps", SLOW), ("breaks", BREAKS), ("team", TEAM)):
        put = httpx.put(f"{base}/v1/workflows/{name}", headers=auth, content=text)
        assert put.status_code == 200, put.text
    yield base
    proc.terminate()
    proc.wait(20)


@pytest.fixture(scope="module")
def page(served: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(served + "/")
        page.fill("#key", KEY)
        page.click("#key-form button")
        page.wait_for_selector("tr.run, #more", state="attached")
        yield page
        browser.close()
        assert not [e for e in errors if "Content Security Policy" in e], errors


def node_states(page: Any) -> dict[str, str]:
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('#graph g.node')]"
        ".map(g => [g.dataset.node, g.dataset.state]))"
    )


def test_start_a_run_from_the_form_and_watch_its_graph_until_it_completes(page: Any) -> None:
    page.goto(page.url.split("#")[0] + "#/start")
    page.wait_for_function("() => document.querySelectorAll('#workflow-names option').length >= 3")
    page.fill("#workflow-name", "steps")  # one of the stored workflows the field offers
    page.click("#pick button")
    page.wait_for_selector("#inputs")
    assert page.input_value("#input-pause") == "0.6"  # the declared default
    page.fill("#input-label", "console")
    page.click("#start")
    page.wait_for_selector("#graph")
    seen: list[dict[str, str]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = node_states(page)
        if not seen or states != seen[-1]:
            seen.append(states)
        if all(s == "finished" for s in states.values()) and len(states) == 3:
            break
        time.sleep(0.1)
    assert seen[-1] == {"first": "finished", "second": "finished", "greet": "finished"}, seen
    assert len(seen) >= 3, seen  # the page followed the run: nodes lit up one after another
    assert any(s.get("first") == "finished" and s.get("greet") != "finished" for s in seen)
    page.wait_for_selector("#run-output")
    page.click("#graph g.node[data-node='first']")
    step = page.wait_for_selector("#step-panel .step[data-key='first']")
    assert '"label": "console"' in step.inner_text()  # the step's input, as rendered
    assert "tokens" in page.inner_text("#run-summary")
    assert (
        page.evaluate(
            "() => [...document.querySelector('#view').childNodes]"
            ".filter(n => n.nodeType === 3 && n.textContent.trim()).length"
        )
        == 0
    )
    page.screenshot(path=str(ARTIFACTS / "run-completed.png"), full_page=True)


def test_a_failed_step_shows_its_error(page: Any) -> None:
    page.goto(page.url.split("#")[0] + "#/start/breaks")
    page.wait_for_selector("#inputs")
    page.click("#start")
    page.wait_for_selector("#run-error", timeout=60_000)
    assert "the disk is on fire" in page.inner_text("#run-error")
    assert node_states(page) == {"boom": "failed"}
    page.click("#graph g.node[data-node='boom']")
    error = page.wait_for_selector("#step-panel .step-error")
    assert "the disk is on fire" in error.inner_text()
    page.screenshot(path=str(ARTIFACTS / "run-failed.png"), full_page=True)


def test_the_runs_list_filters_and_the_costs_page_draws(page: Any) -> None:
    page.goto(page.url.split("#")[0] + "#/runs")
    page.wait_for_selector("tr.run")
    assert page.locator("tr.run").count() >= 2
    page.select_option("#status-filter", "failed")
    assert page.locator("tr.run").count() == 1 and "breaks" in page.inner_text("tbody")
    page.screenshot(path=str(ARTIFACTS / "runs.png"), full_page=True)
    page.goto(page.url.split("#")[0] + "#/costs")
    page.wait_for_selector("#cost-chart rect")
    page.wait_for_selector("#by-agent table")
    assert "echo" in page.inner_text("#by-agent")
    page.screenshot(path=str(ARTIFACTS / "costs.png"), full_page=True)


def test_a_stored_agent_is_asked_from_its_form(served: str, page: Any) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    put = httpx.put(f"{served}/v1/agents/helper", headers=auth, json={"instructions": "Repeat."})
    assert put.status_code == 200, put.text
    page.goto(page.url.split("#")[0] + "#/start")
    page.wait_for_selector("#agent-form")
    page.fill("#agent-name", "helper")
    page.fill("#agent-models", "steps")
    page.fill("#agent-prompt", "hello from the form")
    page.click("#agent-start")
    page.wait_for_selector("#run-output", timeout=60_000)
    assert "echo: hello from the form" in page.inner_text("#run-output")
    assert node_states(page) == {"answer": "finished"}


def test_a_collaboration_shows_its_subtasks(served: str, page: Any) -> None:
    plan = {
        "subtasks": [
            {"id": "intro", "task": "Write the intro.", "capability": "write"},
            {"id": "review", "task": "Review it.", "capability": "review", "depends_on": ["intro"]},
        ]
    }
    auth = {"authorization": f"Bearer {KEY}"}
    started = httpx.post(
        f"{served}/v1/collaborations", headers=auth, json={"team": "team", "plan": plan}
    )
    assert started.status_code == 202, started.text
    page.goto(page.url.split("#")[0] + f"#/collaboration/{started.json()['id']}")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#subtasks tbody tr')].length === 2 && "
        "[...document.querySelectorAll('#subtasks .status')].every(s => s.textContent === 'completed')",
        timeout=60_000,
    )
    rows = page.inner_text("#subtasks")
    assert "intro" in rows and "critic" in rows
    page.screenshot(path=str(ARTIFACTS / "collaboration.png"), full_page=True)


def test_the_console_is_served_with_a_strict_policy_and_hashed_assets(served: str) -> None:
    page = httpx.get(served + "/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    script = next(line for line in page.text.splitlines() if "app.js" in line)
    asset = script.split('src="')[1].split('"')[0]
    fresh = httpx.get(served + asset)
    assert fresh.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert fresh.headers["content-type"].startswith("text/javascript")
    stale = httpx.get(served + "/console/app.js?v=old")
    assert stale.headers["cache-control"] == "no-cache"
    assert httpx.get(served + "/console/secrets.txt").status_code == 404
    assert "innerHTML" not in fresh.text  # data reaches the page as text only
