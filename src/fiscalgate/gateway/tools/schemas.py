from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class TopicOut(BaseModel):
    name: str = Field(description="The topic as the platform names it, e.g. `taxGroups`")
    title: str
    call: str = Field(description="The request the gateway sends for it, e.g. `GET /api/info/taxGroups`")


class ConnectionTestOffer(BaseModel):
    call: str = Field(description="The harmless request the test sends")


class InformationOffer(BaseModel):
    topics: list[TopicOut]


class ReportOffer(BaseModel):
    call: str


class AuthorityOut(BaseModel):
    """One registered authority and the optional capabilities its driver offers."""

    code: str = Field(examples=["bj-emecef"])
    name: str
    module: str = Field(description="The tenant-module slug")
    aliases: list[str]
    country: str = Field(description="ISO 3166 alpha-2")
    country_name: str
    currencies: list[str]
    available: bool = Field(description="Whether the calling tenant may use it (its country or module)")
    capabilities: list[Literal["connection_test", "information", "report"]] | None = Field(
        description="null when the authority's driver cannot be loaded"
    )
    connection_test: ConnectionTestOffer | None
    information: InformationOffer | None
    report: ReportOffer | None


class ConnectionTestOut(BaseModel):
    """A connection test that worked. A failure answers the error body instead: 502
    `AuthorityAuthError` (credentials refused, with the authority's code and text), 503
    `AuthorityUnreachable`, 422 (settings), each with the audit entries of the call."""

    result: Literal["ok"] = "ok"
    authority: str
    environment: str
    call: str
    summary: str
    facts: dict[str, Any] = Field(description="What the authority answered (secrets masked)")
    duration_ms: float | None
    tested_at: datetime
    audit_entry_ids: list[str]


class TopicData(BaseModel):
    topic: str
    title: str
    call: str
    data: Any = Field(description="The authority's answer, as sent (secrets masked)")


class InformationOut(BaseModel):
    authority: str
    environment: str
    items: list[TopicData]
    audit_entry_ids: list[str]


class TopicAnswer(TopicData):
    authority: str
    environment: str
    audit_entry_ids: list[str]


class ReportOut(BaseModel):
    """The authority's acknowledgement of the report of a certified invoice."""

    invoice_id: str
    authority: str
    environment: str
    reported_at: datetime
    call: str
    acknowledgement: dict[str, Any] = Field(
        description="What the authority answered: its certification number, identifier, date (secrets masked)"
    )
    audit_entry_ids: list[str]
