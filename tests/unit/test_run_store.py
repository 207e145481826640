"""Run records: concurrent writers on one record never lose an update."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from agentfn.adapters.local.filesystem import FileBlobStore
from agentfn.runs import Run, RunStore, new_run_id


def bump(root: str, run_id: str, times: int) -> None:
    store = RunStore(FileBlobStore(root))

    def change(run: Run) -> bool:
        run.steps_run += 1
        run.pending.add(f"{run.steps_run}")
        return True

    for _ in range(times):
        store.update(run_id, change)


def test_concurrent_updates_from_processes_are_all_kept(tmp_path: Path) -> None:
    store = RunStore(FileBlobStore(tmp_path))
    now = time.time()
    run = Run(id=new_run_id(), workflow="w", blueprint_key="b", created_at=now, updated_at=now)
    store.create(run)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=bump, args=(str(tmp_path), run.id, 40)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    final = store.get(run.id)
    assert final.steps_run == 160
    assert final.pending == {str(i) for i in range(1, 161)}


def test_update_that_changes_nothing_does_not_write(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    store = RunStore(blobs)
    now = time.time()
    run = Run(id=new_run_id(), workflow="w", blueprint_key="b", created_at=now, updated_at=now)
    store.create(run)
    before = blobs.get(f"runs/{run.id}/run.json").etag
    store.update(run.id, lambda r: False)
    assert blobs.get(f"runs/{run.id}/run.json").etag == before


def test_runs_list_newest_first_with_cursor(tmp_path: Path) -> None:
    store = RunStore(FileBlobStore(tmp_path))
    ids = []
    for i in range(5):
        now = 1_700_000_000 + i
        run = Run(
            id=new_run_id(now), workflow="w", blueprint_key="b", created_at=now, updated_at=now
        )
        store.create(run)
        ids.append(run.id)
    page, cursor = store.list_runs(limit=3)
    assert [r.id for r in page] == ids[::-1][:3] and cursor is not None
    rest, end = store.list_runs(cursor=cursor, limit=3)
    assert [r.id for r in rest] == ids[::-1][3:] and end is None
