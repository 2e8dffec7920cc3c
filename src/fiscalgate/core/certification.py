"""What an authority gives back for a certified document, in one neutral shape."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fiscalgate.core.invoice import InvoiceKind


class Notice(BaseModel):
    """A warning that travels on a successful result (e.g. FNE low sticker stock)."""

    code: str
    message: str
    # "warning": someone should act (low sticker stock); "info": worth knowing, nothing to do.
    severity: Literal["warning", "info"] = "warning"


class Certification(BaseModel):
    model_config = ConfigDict(extra="forbid")

    authority: str  # the authority's code, e.g. "ci-fne"
    environment: str  # "mock", "sandbox", "production"
    kind: InvoiceKind = InvoiceKind.SALE
    reference: str  # the official number printed on the invoice
    # Exactly what the QR code must encode; empty when the authority hands over only an image.
    qr_content: str = ""
    # The QR as an image when the authority provides one (SFEC: a data:image/png;base64 URI, whose
    # encoded text is undocumented): print it as is.
    qr_image: str | None = None
    verification_url: str | None = None
    certified_at: AwareDatetime
    # The authority's own totals, which prevail over ours on the printed invoice. Neutral keys
    # `total_excl_tax`, `total_tax`, `total` are always present; other keys are authority-specific.
    totals: dict[str, Decimal] = Field(default_factory=dict)
    counters: str | None = None
    sticker_balance: int | None = None
    notices: list[Notice] = Field(default_factory=list)
    # Ids later calls need (FNE invoice and item ids, e-MECeF uid/NIM, SFEC identifier...).
    authority_data: dict[str, Any] = Field(default_factory=dict)
    # The authority's responses as received, secrets masked.
    raw: dict[str, Any] = Field(default_factory=dict)
