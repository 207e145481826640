"""Per-tenant quotas on a real store: each window admits exactly its limit and says when to come
back; tokens per day, model-call throttling and concurrent runs; the first refusal of each
window is audited; and 200 parallel requests from four processes admit exactly the limit."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agentfn.adapters.local.sqlite_blobs import SqliteBlobStore
from agentfn.api import Request
from agentfn.errors import QuotaExceeded
from agentfn.functions.runtime import Runtime
from agentfn.quotas import Limits, TenantQuotas
from agentfn.roles import Role
from agentfn.settings import Settings
from agentfn.tenant_blobs import tenant_blobs


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def quotas(tmp_path: Path, clock: Clock, **limits: int) -> tuple[TenantQuotas, list[Any]]:
    refusals: list[Any] = []
    blobs = tenant_blobs(SqliteBlobStore(tmp_path / "q.db"), "acme")
    q = TenantQuotas(blobs, clock=clock, on_refusal=lambda *a: refusals.append(a))
    q.set_limits(Limits(**limits))
    return q, refusals


def test_a_minute_admits_exactly_its_limit_then_says_when_to_come_back(tmp_path: Path) -> None:
    clock = Clock(1_800_000_000.0 + 15)  # 15 s into a minute
    q, refusals = quotas(tmp_path, clock, requests_per_minute=3)
    for _ in range(3):
        q.admit_request("key1")
    for _ in range(2):
        with pytest.raises(QuotaExceeded) as refused:
            q.admit_request("key1")
    assert refused.value.status == 429 and refused.value.retry_after == 45
    assert refused.value.headers() == {"retry-after": "45"}
    assert "requests_per_minute quota of 3" in refused.value.message
    assert refusals == [("key1", "requests_per_minute", {"limit": 3, "used": 3})]  # once
    clock.now += 45  # the next minute
    q.admit_request("key1")
    assert q.usage().requests_this_minute == 1


def test_old_windows_are_removed_as_new_ones_begin(tmp_path: Path) -> None:
    clock = Clock()
    q, _ = quotas(tmp_path, clock, requests_per_minute=1)
    for _ in range(5):
        q.admit_request("k")
        with pytest.raises(QuotaExceeded):
            q.admit_request("k")
        clock.now += 60
    counters = q.blobs.list("quota/").keys
    assert len(counters) <= 4, counters  # the last windows' counter and refusal marker only


def test_tokens_per_day_refuse_once_spent_and_reset_the_next_day(tmp_path: Path) -> None:
    clock = Clock(1_800_000_000.0 - 1_800_000_000.0 % 86400 + 3600)  # 01:00 UTC
    q, refusals = quotas(tmp_path, clock, tokens_per_day=1000)
    q.add_tokens(600)
    q.check_tokens()
    q.add_tokens(600)
    with pytest.raises(QuotaExceeded) as refused:
        q.check_tokens()
    assert refused.value.retry_after == 23 * 3600
    assert refusals == [("engine", "tokens_per_day", {"limit": 1000, "used": 1200})]
    clock.now += 23 * 3600
    q.check_tokens()
    assert q.usage().tokens_today == 0


def test_model_calls_past_the_minute_wait_for_the_next(tmp_path: Path) -> None:
    clock = Clock(1_800_000_000.0 + 50)
    q, refusals = quotas(tmp_path, clock, model_calls_per_minute=2)
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock.now += s

    for _ in range(3):
        q.throttle_model_call(sleep)
    assert len(slept) == 1 and 10 <= slept[0] <= 10.5  # waited for the next minute
    assert refusals == []  # throttling slows calls down; it is not a refusal


def test_concurrent_runs_are_limited_and_ended_runs_free_their_slots(tmp_path: Path) -> None:
    clock = Clock()
    q, refusals = quotas(tmp_path, clock, concurrent_runs=2)
    running = {"r1", "r2", "r3", "r4"}  # what the run records say
    q.admit_run("r1", running.__contains__)
    q.admit_run("r2", running.__contains__)
    with pytest.raises(QuotaExceeded, match="concurrent_runs quota of 2") as refused:
        q.admit_run("r3", running.__contains__)
    assert refused.value.retry_after == 5
    q.release_run("r1")
    q.admit_run("r3", running.__contains__)
    assert q.usage().active_runs == 2
    running.discard("r2")  # r2 ended, but its release was lost (a worker died)
    with pytest.raises(QuotaExceeded):  # a run admitted under a minute ago stays counted
        q.admit_run("r4", running.__contains__)
    clock.now += 61
    q.admit_run("r4", running.__contains__)  # r2 is pruned, r3 still runs
    assert q.usage().active_runs == 2
    assert [r[1] for r in refusals] == ["concurrent_runs"]  # one audit entry a minute


def test_without_limits_only_active_runs_are_written(tmp_path: Path) -> None:
    q, _ = quotas(tmp_path, Clock())
    q.admit_request("k")
    q.add_tokens(10)
    q.check_tokens()
    q.throttle_model_call()
    q.admit_run("r1", lambda r: True)  # counted, so a limit set later sees it
    assert q.blobs.list("quota/").keys == ["quota/active-runs.json"]
    assert q.usage().active_runs == 1
    q.release_run("r1")
    assert q.usage().active_runs == 0


# ---------------------------------------------------------------- across processes

LIMIT = 50
PROCESSES = 4
REQUESTS_EACH = 50


def _burst(home: str, project: str, key: str, ready: Any, go: Any, out: Any) -> None:
    rt = Runtime(Settings.from_env({"AGENTFN_PROJECT": project}, home=Path(home)))
    headers = {"authorization": f"Bearer {key}"}
    import agentfn.api._v1  # noqa: F401  (warm: the burst below is requests, not imports)

    rt.keys.authenticate(key)
    rt.for_tenant("acme").quotas.limits()

    def one(_: int) -> int:
        go.wait()
        return rt.api.handle(Request("GET", "/v1/runs", headers=headers)).status

    with ThreadPoolExecutor(REQUESTS_EACH) as pool:
        pending = [pool.submit(one, i) for i in range(REQUESTS_EACH)]
        ready.put(1)
        out.put([f.result() for f in pending])


def test_parallel_requests_from_several_processes_admit_exactly_the_limit(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    project.mkdir()
    rt = Runtime(Settings.from_env({"AGENTFN_PROJECT": str(project)}, home=home))
    key = rt.keys.create("acme", Role.viewer, name="load", created_by="test").key
    rt.for_tenant("acme").quotas.set_limits(Limits(requests_per_minute=LIMIT))
    if time.time() % 60 > 40:  # all of it inside one minute window
        time.sleep(60 - time.time() % 60 + 0.1)
    started = time.time()
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(target=_burst, args=(str(home), str(project), key, ready, go, out))
        for _ in range(PROCESSES)
    ]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get(timeout=60)
    go.set()  # 200 requests at once: every process's threads released together
    statuses = [s for _ in workers for s in out.get(timeout=120)]
    for w in workers:
        w.join(30)
    assert int(started // 60) == int(time.time() // 60), "the burst spanned two windows"
    assert len(statuses) == PROCESSES * REQUESTS_EACH
    assert statuses.count(200) == LIMIT, sorted(set(statuses))
    assert statuses.count(429) == PROCESSES * REQUESTS_EACH - LIMIT
    entries = rt.for_tenant("acme").audit.page().items  # the admin's calls would count too
    hits = [e for e in entries if e.action == "quota.exceeded"]
    assert [(e.target, e.details) for e in hits] == [
        ("requests_per_minute", {"limit": LIMIT, "used": LIMIT})
    ]
