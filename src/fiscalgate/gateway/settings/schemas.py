from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class SettingsOut(BaseModel):
    authority: str
    available: bool = Field(description="Country match OR active module")
    configured: bool
    environment: str | None = None
    active: bool | None = None
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Every field; secrets masked (never returned whole)"
    )
    secret_fields: list[str] = Field(default_factory=list)
    derived: dict[str, Any] = Field(
        default_factory=dict, description="Read from the settings, e.g. the e-MECeF NIM and token expiry"
    )
    problems: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Why the stored settings no longer validate (an expired token, say); empty when valid",
    )
    updated_at: datetime | None = None
