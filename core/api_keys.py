"""API keys: ``afn_<id>_<secret>``, stored only as a salted hash, one role each.

The id is the visible prefix (it names the key in listings and the audit log); the secret is
192 random bits shown once, at creation or rotation, and never stored. A random secret that
long needs no slow hash: SHA-256 over a per-key salt and the secret, compared in constant
time, costs microseconds on a cold path where a KDF would cost a request's budget.

Layout in the BlobStore:

    api-keys/<id>                         the key's tenant (written once, never changed)
    tenants/<tenant>/api-keys/<id>.json   the key record, updated by compare-and-swap

so a request resolves its key with the pointer (cached: it never changes) and one read of
the record (never cached: a revocation or rotation holds at once on every instance).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel

from agentfn.errors import Conflict, CorruptRecord, NotFound, PreconditionFailed, Unauthorized
from agentfn.ports import BlobStore
from agentfn.roles import Role
from agentfn.tenancy import check_tenant
from agentfn.tenant_blobs import tenant_blobs

KEY_PATTERN = re.compile(r"afn_([0-9a-f]{12})_([0-9a-f]{48})")
ID_PATTERN = re.compile(r"[0-9a-f]{12}")
_POINTERS = "api-keys/"
_RECORDS = "api-keys/"
_CAS_TRIES = 8


class ApiKeyRecord(BaseModel):
    id: str
    tenant: str
    name: str
    role: Role
    created_at: float
    created_by: str
    expires_at: float | None = None
    rotated_at: float | None = None
    revoked_at: float | None = None
    salt: str
    hash: str

    def status(self, now: float) -> Literal["active", "expired", "revoked"]:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


class ApiKeyView(BaseModel):
    """What anyone may see of a key: never its secret or hash."""

    id: str
    prefix: str
    name: str
    role: Role
    status: Literal["active", "expired", "revoked"]
    created_at: float
    created_by: str
    expires_at: float | None = None
    rotated_at: float | None = None
    revoked_at: float | None = None

    @classmethod
    def of(cls, record: ApiKeyRecord, now: float) -> ApiKeyView:
        data = record.model_dump(exclude={"tenant", "salt", "hash"})
        return cls(prefix=f"afn_{record.id}", status=record.status(now), **data)


class ApiKeyCreated(ApiKeyView):
    key: str  # the whole key: shown in this answer only


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def _secret() -> tuple[str, str, str]:
    """A new secret with its salt and hash."""
    secret, salt = secrets.token_hex(24), secrets.token_hex(16)
    return secret, salt, _hash(salt, secret)


class KeyStore:
    """Every tenant's keys in one BlobStore (the root, not a tenant's view: a request's
    tenant is known only once its key is)."""

    def __init__(self, blobs: BlobStore, *, clock: Callable[[], float] = time.time) -> None:
        self.blobs = blobs
        self.clock = clock
        self._tenants: dict[str, str] = {}  # id -> tenant: written once, safe to remember
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ management

    def create(
        self,
        tenant: str,
        role: Role,
        *,
        name: str,
        created_by: str,
        expires_at: float | None = None,
    ) -> ApiKeyCreated:
        check_tenant(tenant)
        now = self.clock()
        secret, salt, digest = _secret()
        while True:  # 48 random bits: a collision is rare, and put_if_absent catches it
            key_id = secrets.token_hex(6)
            try:
                self.blobs.put_if_absent(f"{_POINTERS}{key_id}", tenant.encode())
                break
            except PreconditionFailed:
                continue
        record = ApiKeyRecord(
            id=key_id,
            tenant=tenant,
            name=name,
            role=role,
            created_at=now,
            created_by=created_by,
            expires_at=expires_at,
            salt=salt,
            hash=digest,
        )
        tenant_blobs(self.blobs, tenant).put(
            f"{_RECORDS}{key_id}.json", record.model_dump_json().encode()
        )
        return _created(record, secret, now)

    def list(self, tenant: str) -> list[ApiKeyView]:
        view = tenant_blobs(self.blobs, tenant)
        now, items, cursor = self.clock(), [], None
        while True:
            page = view.list(_RECORDS, cursor=cursor)
            for key in page.keys:
                items.append(ApiKeyView.of(self._parse(view.get(key).data, key), now))
            if page.cursor is None:
                break
            cursor = page.cursor
        return sorted(items, key=lambda k: (k.created_at, k.id))

    def get(self, tenant: str, key_id: str) -> ApiKeyView:
        return ApiKeyView.of(self._read(tenant, key_id)[0], self.clock())

    def rotate(self, tenant: str, key_id: str) -> ApiKeyCreated:
        """A new secret for the same key id, role and expiry; the old secret stops working."""
        secret, salt, digest = _secret()

        def change(record: ApiKeyRecord) -> None:
            if record.revoked_at is not None:
                raise Conflict(f"API key {key_id!r} is revoked; create a new one", field="id")
            record.salt, record.hash, record.rotated_at = salt, digest, self.clock()

        record = self._update(tenant, key_id, change)
        return _created(record, secret, self.clock())

    def revoke(self, tenant: str, key_id: str) -> ApiKeyView:
        """Stops the key at once; the record stays (the audit log names it). Idempotent."""

        def change(record: ApiKeyRecord) -> None:
            if record.revoked_at is None:
                record.revoked_at = self.clock()

        return ApiKeyView.of(self._update(tenant, key_id, change), self.clock())

    # ------------------------------------------------------------------ requests

    def authenticate(self, key: str) -> ApiKeyRecord:
        """The active record of ``key``, or :class:`Unauthorized` (one reason for all: a
        guesser learns nothing about which ids exist)."""
        match = KEY_PATTERN.fullmatch(key)
        if match is None:
            raise Unauthorized("invalid API key", field="authorization")
        key_id, secret = match.groups()
        tenant = self._tenant_of(key_id)
        if tenant is None:
            raise Unauthorized("invalid API key", field="authorization")
        try:
            record = self._read(tenant, key_id)[0]
        except NotFound:
            raise Unauthorized("invalid API key", field="authorization") from None
        if not hmac.compare_digest(_hash(record.salt, secret), record.hash):
            raise Unauthorized("invalid API key", field="authorization")
        status = record.status(self.clock())
        if status != "active":
            raise Unauthorized(f"API key afn_{key_id} is {status}", field="authorization")
        return record

    # ------------------------------------------------------------------ records

    def _tenant_of(self, key_id: str) -> str | None:
        tenant = self._tenants.get(key_id)
        if tenant is None:
            try:
                tenant = self.blobs.get(f"{_POINTERS}{key_id}").data.decode()
            except NotFound:
                return None
            with self._lock:
                self._tenants[key_id] = tenant
        return tenant

    def _read(self, tenant: str, key_id: str) -> tuple[ApiKeyRecord, str]:
        missing = NotFound(f"API key {key_id!r} not found", field="id")
        if ID_PATTERN.fullmatch(key_id) is None:
            raise missing
        try:
            blob = tenant_blobs(self.blobs, tenant).get(f"{_RECORDS}{key_id}.json")
        except NotFound:
            raise missing from None
        record = self._parse(blob.data, blob.key)
        if record.tenant != tenant:  # a record copied between prefixes by hand
            raise missing
        return record, blob.etag

    def _update(
        self, tenant: str, key_id: str, change: Callable[[ApiKeyRecord], None]
    ) -> ApiKeyRecord:
        view = tenant_blobs(self.blobs, tenant)
        for _ in range(_CAS_TRIES):
            record, etag = self._read(tenant, key_id)
            change(record)
            try:
                view.put_if_match(
                    f"{_RECORDS}{key_id}.json", record.model_dump_json().encode(), etag
                )
                return record
            except PreconditionFailed:
                continue
        raise Conflict(f"API key {key_id!r} is being changed by another request; try again")

    @staticmethod
    def _parse(data: bytes, key: str) -> ApiKeyRecord:
        try:
            return ApiKeyRecord.model_validate_json(data)
        except ValueError as exc:
            raise CorruptRecord(f"API key record {key} does not parse: {exc}") from None


def _created(record: ApiKeyRecord, secret: str, now: float) -> ApiKeyCreated:
    view = ApiKeyView.of(record, now)
    return ApiKeyCreated(key=f"afn_{record.id}_{secret}", **view.model_dump())
