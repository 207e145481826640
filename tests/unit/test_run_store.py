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


def new_run(given: dict[str, object]) -> Run:
    now = time.time()
    return Run(
        id=new_run_id(),
        workflow="w",
        blueprint_key="b",
        created_at=now,
        updated_at=now,
        input=given,
    )


def test_a_large_input_is_kept_apart_from_the_record_every_step_rewrites(tmp_path: Path) -> None:
    import json

    from agentfn.runs import INLINE_INPUT_BYTES

    blobs = FileBlobStore(tmp_path)
    store = RunStore(blobs)
    big = {"tasks": {f"t{i}": "x" * 100 for i in range(INLINE_INPUT_BYTES // 50)}}
    run = new_run(big)
    store.create(run)
    record = json.loads(blobs.get(f"runs/{run.id}/run.json").data)
    assert "input" not in record and record["input_apart"] is True
    assert json.loads(blobs.get(f"runs/{run.id}/input.json").data) == big

    def step(r: Run) -> bool:
        r.steps_run += 1
        return True

    store.update(run.id, step)
    after = json.loads(blobs.get(f"runs/{run.id}/run.json").data)
    assert "input" not in after and after["steps_run"] == 1
    elsewhere = RunStore(FileBlobStore(tmp_path))  # another process: reads it from the store
    assert elsewhere.get(run.id).input == big and store.get(run.id).input == big


def test_a_small_input_stays_in_the_record(tmp_path: Path) -> None:
    import json

    blobs = FileBlobStore(tmp_path)
    run = new_run({"topic": "retries"})
    RunStore(blobs).create(run)
    record = json.loads(blobs.get(f"runs/{run.id}/run.json").data)
    assert record["input"] == {"topic": "retries"} and record["input_apart"] is False


def test_an_input_apart_that_is_gone_is_a_corrupt_record(tmp_path: Path) -> None:
    import pytest

    from agentfn.errors import CorruptRecord

    blobs = FileBlobStore(tmp_path)
    run = new_run({"blob": "y" * 10_000})
    RunStore(blobs).create(run)
    blobs.delete(f"runs/{run.id}/input.json")
    with pytest.raises(CorruptRecord, match="its input cannot be read"):
        RunStore(blobs).get(run.id)
