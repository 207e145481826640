"""SecretStore contract (any backend) plus the local environment/.env specifics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from agentfn.adapters.local import EnvSecretStore
from agentfn.adapters.local.env_secrets import parse_dotenv
from agentfn.errors import NotFound, UserError
from agentfn.ports import SecretStore
from tests.support.logs import debug_logging

SECRET = "s3cr3t-VALUE-do-not-leak"


# --------------------------------------------------------------------------- contract


def test_get_and_not_found(secret_store_factory: Any) -> None:
    secret_store_factory.set_secret("API_KEY", SECRET)
    store = secret_store_factory.make()
    assert isinstance(store, SecretStore)
    assert store.get("API_KEY") == SECRET
    with pytest.raises(NotFound) as info:
        store.get("MISSING_KEY")
    assert "MISSING_KEY" in str(info.value)


def test_ttl_cache_hides_rotation_until_expiry(secret_store_factory: Any, fake_clock: Any) -> None:
    clock = fake_clock if secret_store_factory.fake_clock else None
    ttl = 60.0 if clock else 0.3  # real sleeping for backends without an injectable clock

    def advance(seconds: float) -> None:
        if clock:
            clock.advance(seconds)
        else:
            time.sleep(seconds)

    secret_store_factory.set_secret("TOKEN", "v1")
    store = secret_store_factory.make(ttl_s=ttl, clock=clock)
    assert store.get("TOKEN") == "v1"
    secret_store_factory.set_secret("TOKEN", "v2")
    advance(ttl * 0.5)
    assert store.get("TOKEN") == "v1"  # cached: rotation not seen before the TTL
    advance(ttl * 0.6)
    assert store.get("TOKEN") == "v2"  # seen after it


def test_value_never_leaks(secret_store_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    debug_logging(caplog)
    secret_store_factory.set_secret("DB_PASSWORD", SECRET)
    store = secret_store_factory.make()
    assert store.get("DB_PASSWORD") == SECRET
    with pytest.raises(NotFound) as info:
        store.get("DB_PASSWORD_2")
    assert SECRET not in str(info.value)
    assert SECRET not in repr(store) and SECRET not in str(store)
    assert SECRET not in caplog.text
    assert all(SECRET not in str(r.args) for r in caplog.records)


# --------------------------------------------------------------------------- local only


def _env_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def test_local_environment_wins_over_dotenv(tmp_path: Path) -> None:
    path = _env_file(tmp_path, "A=from-file\nB=file-only\n")
    store = EnvSecretStore(path, environ={"A": "from-env", "C": "env-only"})
    assert store.get("A") == "from-env"
    assert store.get("B") == "file-only"
    assert store.get("C") == "env-only"
    with pytest.raises(NotFound):
        store.get("D")


def test_local_reads_process_environment_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTFN_TEST_SECRET", "from-os-environ")
    store = EnvSecretStore(tmp_path / "absent.env")  # a missing .env file is not an error
    assert store.get("AGENTFN_TEST_SECRET") == "from-os-environ"
    with pytest.raises(NotFound):
        store.get("AGENTFN_TEST_SECRET_MISSING")


def test_local_misses_are_not_cached(tmp_path: Path, fake_clock: Any) -> None:
    clock = fake_clock
    path = _env_file(tmp_path, "")
    store = EnvSecretStore(path, environ={}, clock=clock)
    with pytest.raises(NotFound):
        store.get("LATE")
    path.write_text("LATE=here\n")
    assert store.get("LATE") == "here"


def test_local_dotenv_syntax() -> None:
    text = "\n".join(
        [
            "# a comment",
            "",
            "PLAIN=value",
            "SPACED = padded value   ",
            "export EXPORTED=yes",
            "INLINE=keep#this # but not this",
            "EMPTY=",
            "SINGLE='literal $HOME \\n # not a comment'",
            'DOUBLE="line1\\nline2 \\"quoted\\" # kept"  # dropped',
            'MULTI="first',
            'second"',
            "NO_EXPANSION=${PLAIN}",
            "EQUALS=a=b=c",
            "this line is junk",
            "PLAIN=override",
        ]
    )
    assert parse_dotenv(text) == {
        "PLAIN": "override",
        "SPACED": "padded value",
        "EXPORTED": "yes",
        "INLINE": "keep#this",
        "EMPTY": "",
        "SINGLE": "literal $HOME \\n # not a comment",
        "DOUBLE": 'line1\nline2 "quoted" # kept',
        "MULTI": "first\nsecond",
        "NO_EXPANSION": "${PLAIN}",
        "EQUALS": "a=b=c",
    }


def test_local_parse_warnings_do_not_leak(caplog: pytest.LogCaptureFixture) -> None:
    debug_logging(caplog)
    parse_dotenv(f"{SECRET}\nKEY='{SECRET}\n", source="x.env")
    assert "x.env:1" in caplog.text and "x.env:2" in caplog.text
    assert SECRET not in caplog.text


def test_local_repr_and_name_validation(tmp_path: Path) -> None:
    path = _env_file(tmp_path, f"K={SECRET}\n")
    store = EnvSecretStore(path, environ={})
    store.get("K")
    assert repr(store) == f"EnvSecretStore(source='env+{path}', cached=1)"
    store.clear()
    assert "cached=0" in repr(store)
    for bad in ["", "A=B", "A\x00"]:
        with pytest.raises(UserError) as info:
            store.get(bad)
        assert info.value.field == "name"
