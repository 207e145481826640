"""What a tenant chooses for itself (its admin sets it over ``PUT /v1/settings``), as opposed
to its limits, which the operator sets."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

SETTINGS_KEY = "settings.json"


class TenantSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mask_pii: bool = Field(
        default=False,
        description="mask e-mail addresses, phone and card numbers and API-key-like strings in "
        "log lines and the prompt log (a masked prompt log cannot serve replays)",
    )
