"""What an authority asks the printed invoice to show, in one neutral shape.

Each `authorities/<pkg>/printing.py` turns its stored Certification into an `AuthorityBlock`; the
renderer lays the block out without knowing which authority it came from. Pure data: no PDF code
here, so the authority packages can import it under mypy's strict mode.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class QrText:
    """A QR code to draw from its exact content (FNE's verification URL, e-MECeF's qrCode)."""

    content: str


@dataclass(frozen=True)
class QrPicture:
    """A QR code the authority handed over as a picture (SFEC): printed as is, never redrawn."""

    png: bytes


@dataclass(frozen=True)
class TaxRow:
    """One line of the tax breakdown, amounts as the authority returned them."""

    label: str
    base: Decimal
    tax: Decimal
    total: Decimal | None = None


@dataclass(frozen=True)
class AuthorityBlock:
    authority: str  # who certified, as printed: "DGI — FNE"
    title: str  # the document's legal title (French), e.g. "Facture de vente Nº 9606123E26000000001"
    reference: str  # the official reference; also printed in every page's footer
    # The security elements, (label, value) in print order.
    fields: tuple[tuple[str, str], ...] = ()
    heading: str | None = None  # a title over the security elements (e-MECeF's is mandatory)
    qr: QrText | QrPicture | None = None
    qr_caption: str | None = None
    mentions: tuple[str, ...] = ()
    # The authority's totals, (label, amount) in print order; the last one is the amount due.
    totals: tuple[tuple[str, Decimal], ...] = ()
    tax_rows: tuple[TaxRow, ...] = ()
    banner: str | None = None  # e.g. e-MECeF's "TEST FACTURE" outside production
    original_reference: str | None = None  # a credit note's original, as the authority knows it
    # The seller's identifiers as the authority registered them: (("NCC", "9606123E"),)
    seller_ids: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def png_from_data_uri(uri: str) -> bytes:
    """The PNG bytes of a `data:image/png;base64,...` URI; ValueError when it is anything else."""
    head, sep, payload = uri.partition(",")
    if not sep or not head.startswith("data:image/png") or not head.endswith(";base64"):
        raise ValueError("the QR picture is not a data:image/png;base64 URI")
    try:
        png = base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"the QR picture is not valid base64: {exc}") from None
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("the QR picture's data is not a PNG")
    return png
