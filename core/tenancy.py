"""Tenants: every record of a tenant lives under ``tenants/<tenant>/`` in the one BlobStore.

A tenant's engine, catalog, prompt log and audit log see the store through a view that
prefixes every key (:mod:`agentfn.tenant_blobs`), so no code path of a tenant can name a key
of another: isolation is a property of the store the code is handed, not of each handler
remembering to check. Queue jobs carry their tenant (see ``step_ready``) and a worker opens
the job's run through that tenant's view only.

Light on purpose (no pydantic): entry points name the default tenant on their cold path.
"""

from __future__ import annotations

import re

from agentfn.errors import UserError

DEFAULT_TENANT = "default"
# Lower-case letters, digits and dashes: safe as a key segment on every store and in a log line.
TENANT_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
TENANTS_ROOT = "tenants/"


def check_tenant(value: object, field: str = "tenant") -> str:
    """``value`` as a tenant name, or a :class:`UserError` naming ``field``."""
    if not isinstance(value, str) or TENANT_PATTERN.fullmatch(value) is None:
        raise UserError(
            f"{field} {value!r} is not a tenant name: 1-40 lower-case letters, digits and "
            "dashes, starting and ending with a letter or digit",
            field=field,
        )
    return value


def tenant_prefix(tenant: str) -> str:
    return f"{TENANTS_ROOT}{check_tenant(tenant)}/"
