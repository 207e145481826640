"""Where the local default keeps things."""

from __future__ import annotations

from pathlib import Path

from agentfn.settings import Settings


def test_a_new_home_keeps_store_and_queue_in_one_database(tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path)
    assert settings.storage == settings.queue == f"sqlite://{tmp_path / 'agentfn.db'}"


def test_a_home_an_earlier_version_set_up_keeps_its_files(tmp_path: Path) -> None:
    (tmp_path / "store.db").write_bytes(b"")
    (tmp_path / "queue.db").write_bytes(b"")
    settings = Settings.from_env({}, home=tmp_path)
    assert settings.storage == f"sqlite://{tmp_path / 'store.db'}"
    assert settings.queue == f"sqlite://{tmp_path / 'queue.db'}"


def test_urls_given_win(tmp_path: Path) -> None:
    env = {"AGENTFN_STORAGE": "file:///data/blobs", "AGENTFN_QUEUE": "sqlite:///data/q.db"}
    settings = Settings.from_env(env, home=tmp_path)
    assert (settings.storage, settings.queue) == ("file:///data/blobs", "sqlite:///data/q.db")
