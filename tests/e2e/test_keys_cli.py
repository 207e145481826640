"""``agentfn keys`` and ``agentfn tenants`` as an operator runs them: real processes against the
local default store; the keys they print are the ones the API accepts, the limits they set are
the ones the API enforces, and bad input is one line with exit code 2."""

from __future__ import annotations

import re
import time
from pathlib import Path

from agentfn.api import Request
from agentfn.functions.runtime import Runtime
from agentfn.settings import Settings
from tests.e2e.test_cli import agentfn, one_error_line

KEY = re.compile(r"afn_[0-9a-f]{12}_[0-9a-f]{48}")


def status_with(home: Path, key: str) -> int:
    rt = Runtime(Settings.from_env({}, home=home))
    headers = {"authorization": f"Bearer {key}"}
    return rt.api.handle(Request("GET", "/v1/runs", headers=headers)).status


def test_create_list_rotate_revoke(tmp_path: Path) -> None:
    home = tmp_path / "home"
    made = agentfn(
        "keys", "create", "--name", "ci", "--role", "viewer", "--tenant", "acme", home=home
    )
    assert made.returncode == 0, made.stderr
    key = KEY.search(made.stdout)
    assert key is not None, made.stdout
    prefix = key.group(0)[:16]
    assert status_with(home, key.group(0)) == 200

    listed = agentfn("keys", "list", "--tenant", "acme", home=home)
    assert listed.returncode == 0 and prefix in listed.stdout and "viewer" in listed.stdout
    assert key.group(0) not in listed.stdout
    assert prefix not in agentfn("keys", "list", home=home).stdout  # tenant default's keys

    rotated = agentfn("keys", "rotate", prefix, "--tenant", "acme", home=home)
    assert rotated.returncode == 0, rotated.stderr
    new = KEY.search(rotated.stdout)
    assert new is not None and new.group(0) != key.group(0) and new.group(0).startswith(prefix)
    assert status_with(home, key.group(0)) == 401
    assert status_with(home, new.group(0)) == 200

    revoked = agentfn("keys", "revoke", prefix, "--tenant", "acme", home=home)
    assert revoked.returncode == 0 and "status=revoked" in revoked.stdout
    assert status_with(home, new.group(0)) == 401

    rt = Runtime(Settings.from_env({}, home=home))
    actions = [(e.action, e.actor) for e in rt.for_tenant("acme").audit.page().items]
    assert actions == [
        ("key.revoked", "operator"),
        ("key.rotated", "operator"),
        ("key.created", "operator"),
    ]


def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad_tenant = agentfn("keys", "create", "--name", "x", "--tenant", "Acme Corp", home=home)
    assert "--tenant 'Acme Corp' is not a tenant name" in one_error_line(bad_tenant)
    past = agentfn("keys", "create", "--name", "x", "--expires", "2001-01-01", home=home)
    assert "is not in the future" in one_error_line(past)
    unknown = agentfn("keys", "revoke", "afn_0123456789ab", home=home)
    assert "API key '0123456789ab' not found" in one_error_line(unknown)
    assert Runtime(Settings.from_env({}, home=home)).keys.list("default") == []  # none made


def test_limits_set_by_the_operator_are_what_the_api_enforces_and_reports(tmp_path: Path) -> None:
    home = tmp_path / "home"
    made = agentfn(
        "keys", "create", "--name", "a", "--role", "tenant_admin", "--tenant", "acme", home=home
    )
    key = KEY.search(made.stdout)
    assert key is not None, made.stdout
    limited = agentfn(
        "tenants", "limit", "--tenant", "acme", "--requests-per-minute", "3", home=home
    )
    assert limited.returncode == 0 and '"requests_per_minute": 3' in limited.stdout, limited.stderr
    rt = Runtime(Settings.from_env({}, home=home))
    headers = {"authorization": f"Bearer {key.group(0)}"}
    if time.time() % 60 > 45:  # the calls below count in one minute's window
        time.sleep(60 - time.time() % 60 + 0.1)
    usage = rt.api.handle(Request("GET", "/v1/usage", headers=headers))
    assert usage.status == 200, usage.body
    assert usage.json()["limits"]["requests_per_minute"] == 3
    assert usage.json()["requests_this_minute"] == 1  # this very call
    statuses = [rt.api.handle(Request("GET", "/v1/runs", headers=headers)).status for _ in range(3)]
    assert statuses[:2] == [200, 200] and statuses[2] == 429  # 3 a minute: usage took one
    shown = agentfn("tenants", "show", "--tenant", "acme", home=home)
    assert shown.returncode == 0 and '"requests_this_minute": 3' in shown.stdout
    cleared = agentfn(
        "tenants", "limit", "--tenant", "acme", "--requests-per-minute", "0", home=home
    )
    assert '"requests_per_minute": null' in cleared.stdout
    bad = agentfn("tenants", "show", "--tenant", "-x-", home=home)
    assert "--tenant '-x-' is not a tenant name" in one_error_line(bad)


def test_costs_of_a_run_as_a_table_and_as_csv(tmp_path: Path) -> None:
    import csv
    import io

    from tests.support.engine_harness import project

    home = tmp_path / "home"
    flow = project(tmp_path, 'nodes:\n  - {id: ask, type: agent, agent: echo, prompt: "hi"}\n')
    assert agentfn("run", str(flow), "--workers", "0", "--quiet", home=home).returncode == 0
    table = agentfn("costs", home=home)
    assert table.returncode == 0 and "echo" in table.stdout and "total $" in table.stdout
    done = agentfn("costs", "--csv", "--days", "1", home=home)
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["workflow"], r["agent"], r["calls"]) for r in rows] == [("wf", "echo", "1")]
    assert float(rows[0]["cost_usd"]) > 0
    assert "--days" in one_error_line(agentfn("costs", "--days", "0", home=home))
