"""One convention for datetimes in the API's answers, whatever the authority: UTC, ISO 8601, `Z`.

`2026-12-02T16:42:26Z`, with the fraction of a second only when there is one
(`2026-12-02T16:42:26.123456Z`), which is also what pydantic writes for an aware UTC datetime, so
answers built from models and answers built from stored JSON agree. An authority's own local
time (e-MECeF answers in Bénin time, +01:00) is converted, never relabelled.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, PlainSerializer


def utc_iso(value: datetime) -> str:
    """The answer form of an aware datetime (a naive one is refused: its zone is unknown)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: its time zone is unknown")
    utc = value.astimezone(UTC)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds").replace("+00:00", "Z")


def utc_iso_text(text: str) -> str:
    """A stored ISO 8601 text with an offset, in the answer form (ValueError when it has none)."""
    return utc_iso(datetime.fromisoformat(text))


# A datetime field of an answer model: serialised with `utc_iso`.
UtcDatetime = Annotated[AwareDatetime, PlainSerializer(utc_iso, return_type=str, when_used="json")]
