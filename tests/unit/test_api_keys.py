"""API keys: shown once, stored as a salted hash, rotated, revoked and expired by record."""

from __future__ import annotations

import pytest

from agentfn.api_keys import KeyStore
from agentfn.errors import Conflict, NotFound, Unauthorized
from agentfn.roles import Role
from agentfn.testing import FakeClock, MemoryBlobStore


def store() -> tuple[KeyStore, MemoryBlobStore, FakeClock]:
    blobs, clock = MemoryBlobStore(), FakeClock(1_800_000_000.0)
    return KeyStore(blobs, clock=clock), blobs, clock


def test_a_created_key_authenticates_as_its_tenant_and_role() -> None:
    keys, _, _ = store()
    created = keys.create("acme", Role.developer, name="ci", created_by="bootstrap")
    assert created.key.startswith(f"afn_{created.id}_") and created.prefix == f"afn_{created.id}"
    record = keys.authenticate(created.key)
    assert (record.tenant, record.role, record.id) == ("acme", Role.developer, created.id)


def test_the_secret_is_never_stored() -> None:
    keys, blobs, _ = store()
    created = keys.create("acme", Role.viewer, name="dash", created_by="bootstrap")
    secret = created.key.rsplit("_", 1)[1]
    for key in blobs.list("").keys:
        assert secret not in blobs.get(key).data.decode()
    assert sorted(blobs.list("").keys) == [
        f"api-keys/{created.id}",
        f"tenants/acme/api-keys/{created.id}.json",
    ]
    listed = keys.list("acme")
    assert [k.id for k in listed] == [created.id]
    assert "key" not in listed[0].model_dump() and "hash" not in listed[0].model_dump()


@pytest.mark.parametrize(
    "presented",
    ["", "afn_", "afn_0123456789ab_" + "0" * 48, "not-a-key", "afn_XYZ_" + "0" * 48],
)
def test_unknown_or_malformed_keys_are_refused(presented: str) -> None:
    keys, _, _ = store()
    keys.create("acme", Role.viewer, name="x", created_by="bootstrap")
    with pytest.raises(Unauthorized) as err:
        keys.authenticate(presented)
    assert err.value.message == "invalid API key"


def test_a_wrong_secret_for_a_real_id_is_refused() -> None:
    keys, _, _ = store()
    created = keys.create("acme", Role.viewer, name="x", created_by="bootstrap")
    with pytest.raises(Unauthorized):
        keys.authenticate(f"afn_{created.id}_" + "f" * 48)


def test_rotation_replaces_the_secret_and_keeps_the_id() -> None:
    keys, _, _ = store()
    old = keys.create("acme", Role.tenant_admin, name="ops", created_by="bootstrap")
    new = keys.rotate("acme", old.id)
    assert new.id == old.id and new.key != old.key and new.rotated_at is not None
    with pytest.raises(Unauthorized):
        keys.authenticate(old.key)
    assert keys.authenticate(new.key).role == Role.tenant_admin


def test_a_revoked_key_stops_at_once_and_cannot_be_rotated_back() -> None:
    keys, _, _ = store()
    created = keys.create("acme", Role.developer, name="x", created_by="bootstrap")
    assert keys.authenticate(created.key)
    view = keys.revoke("acme", created.id)
    assert view.status == "revoked"
    with pytest.raises(Unauthorized) as err:
        keys.authenticate(created.key)
    assert "revoked" in err.value.message
    assert keys.revoke("acme", created.id).revoked_at == view.revoked_at  # idempotent
    with pytest.raises(Conflict):
        keys.rotate("acme", created.id)


def test_an_expired_key_is_refused() -> None:
    keys, _, clock = store()
    created = keys.create(
        "acme", Role.viewer, name="temp", created_by="bootstrap", expires_at=clock() + 60
    )
    assert keys.authenticate(created.key)
    clock.advance(61)
    with pytest.raises(Unauthorized) as err:
        keys.authenticate(created.key)
    assert "expired" in err.value.message
    assert keys.get("acme", created.id).status == "expired"


def test_another_tenant_cannot_see_or_change_a_key() -> None:
    keys, _, _ = store()
    created = keys.create("acme", Role.viewer, name="x", created_by="bootstrap")
    assert keys.list("beta") == []
    for act in (keys.get, keys.rotate, keys.revoke):
        with pytest.raises(NotFound):
            act("beta", created.id)
    assert keys.authenticate(created.key).tenant == "acme"
