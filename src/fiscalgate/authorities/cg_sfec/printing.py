"""What a printed SFEC invoice must show, as data for the PDF layer.

Sources: spec §4 "Print/PDF" (T-CONNECTOR's gap report citing the doc, and Congolese practice):
the QR image, the certification number and date, the (short) signature, the "SFEC" mention,
the document type ("FACTURE D'AVOIR" plus the original's number for a credit note), line and
global discounts on lines of their own, and the VAT 18 % / VAT 5 % / centimes additionnels /
exempt breakdown; NIU and RCCM of the seller. (Not here: the régime fiscal and the total in words,
which the PDF layer writes from the invoice.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta, timezone
from decimal import Decimal

from fiscalgate.authorities.cg_sfec.regime import rate_for
from fiscalgate.core.certification import Certification
from fiscalgate.core.invoice import Invoice, InvoiceKind, InvoiceLine, SellerRegime
from fiscalgate.printing.block import AuthorityBlock, QrPicture, png_from_data_uri

TITLES = {InvoiceKind.SALE: "FACTURE", InvoiceKind.CREDIT_NOTE: "FACTURE D'AVOIR"}
MENTION = "Facture certifiée par le SFEC (Système de Facturation Électronique Certifiée)"

# Labels of the totals breakdown, in print order: Certification.totals key -> French label.
TOTAL_LABELS: tuple[tuple[str, str], ...] = (
    ("line_discounts", "Remises sur lignes"),
    ("total_excl_tax", "Total HT"),
    ("exempt_base", "Montant exonéré"),
    ("vat_18", "TVA 18 %"),
    ("vat_5", "TVA 5 %"),
    ("additional_cent_tax", "Centimes additionnels (5 % de la TVA)"),
    ("electronic_stamp_duty", "Timbre électronique"),
    ("total", "Total TTC"),
    ("amount_due", "Net à payer"),
)


@dataclass(frozen=True)
class PrintedMentions:
    title: str
    mention: str
    certification_number: str
    certified_at: str
    short_signature: str | None
    signature: str | None
    qr_image: str  # the QR exactly as SFEC returned it: a data:image/png;base64 URI
    original_reference: str | None
    totals: list[tuple[str, Decimal]] = field(default_factory=list)
    # the seller's identifiers, labelled as printed: [("NIU", "M24..."), ("RCCM", "CG-BZV-...")]
    seller_ids: list[tuple[str, str]] = field(default_factory=list)
    # the invoice's own number (the ERP's `invoice_id`), distinct from the certification number
    invoice_number: str | None = None


def mentions(
    cert: Certification, *, original_reference: str | None = None, invoice: Invoice | None = None
) -> PrintedMentions:
    """The mentions of a certified invoice; `invoice` adds what SFEC does not hand back (RCCM)."""
    data = cert.authority_data
    reference = original_reference or data.get("reference_invoice_id")
    niu = data.get("taxpayer_niu") or (invoice.seller.tax_id if invoice else None)
    seller_ids = [("NIU", str(niu))] if niu else []
    if invoice is not None and invoice.seller.rccm:
        seller_ids.append(("RCCM", invoice.seller.rccm))
    return PrintedMentions(
        title=TITLES.get(cert.kind, "FACTURE"),
        mention=MENTION,
        certification_number=cert.reference,
        certified_at=cert.certified_at.isoformat(),
        short_signature=data.get("short_signature"),
        signature=data.get("signature"),
        qr_image=cert.qr_image or "",
        original_reference=reference if cert.kind is InvoiceKind.CREDIT_NOTE else None,
        totals=[(label, cert.totals[key]) for key, label in TOTAL_LABELS if key in cert.totals],
        seller_ids=seller_ids,
        invoice_number=data.get("invoice_id") or (invoice.number if invoice else None),
    )


# --- the neutral block the PDF renderer lays out (fiscalgate.printing) ---------------------------
AUTHORITY_NAME = "SFEC — Système de Facturation Électronique Certifiée (Congo)"
TAX_ID_LABEL = "NIU"
TAX_COLUMN = "TVA"
# Congo (Brazzaville) keeps West Africa Time (UTC+1) all year.
TIME_ZONE = timezone(timedelta(hours=1), "WAT")


def line_tax_code(invoice: Invoice, line: InvoiceLine) -> str:
    """The VAT rate of the line (18 %, 5 %, 0 %), as the payload carried it."""
    rate = rate_for(
        line.tax_category, line.tax_code, seller_without_vat=invoice.seller.regime is SellerRegime.TPS
    )
    return f"{rate} %" if rate is not None else ""


def block(cert: Certification, invoice: Invoice) -> AuthorityBlock:
    m = mentions(cert, invoice=invoice)
    when = cert.certified_at.astimezone(TIME_ZONE).strftime("%d/%m/%Y %H:%M")
    fields = [("Nº de certification", m.certification_number), ("Certifiée le", when)]
    if m.short_signature or m.signature:
        fields.append(("Signature", m.short_signature or m.signature or ""))
    if m.original_reference:
        fields.append(("Facture d'origine", m.original_reference))
    return AuthorityBlock(
        authority=AUTHORITY_NAME,
        title=m.title,
        reference=m.certification_number,
        fields=tuple(fields),
        # Printed as SFEC returned it (its encoded text is undocumented): never redrawn.
        qr=QrPicture(png_from_data_uri(m.qr_image)) if m.qr_image else None,
        mentions=(m.mention,),
        totals=tuple(m.totals),
        original_reference=m.original_reference,
        seller_ids=tuple(m.seller_ids),
    )
