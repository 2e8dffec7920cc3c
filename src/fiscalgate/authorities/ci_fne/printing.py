"""What a printed FNE invoice must show, as data (the PDF renderer lays it out).

Sources: spec §1 (the sticker = QR code + FNE visual + numbering), §8.4 (titles), §8.5 (the totals
rows of real PDFs), §8.7 (the QR encodes the verification URL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta, timezone
from decimal import Decimal

from fiscalgate.authorities.ci_fne import regime
from fiscalgate.authorities.ci_fne.convert import vat_code_for
from fiscalgate.core.certification import Certification
from fiscalgate.core.invoice import Invoice, InvoiceKind, InvoiceLine
from fiscalgate.printing.block import AuthorityBlock, QrText

TITLES: dict[InvoiceKind, str] = {
    InvoiceKind.SALE: "Facture de vente",
    InvoiceKind.CREDIT_NOTE: "Facture d'avoir",
    # Not shown in the sources: our wording for the agricultural purchase slip.
    InvoiceKind.PURCHASE: "Bordereau d'achat",
}

# Totals rows in the order real FNE PDFs print them, with the Certification.totals key of each.
TOTAL_ROWS: tuple[tuple[str, str], ...] = (
    ("TOTAL HT", "total_excl_tax"),
    ("TVA", "vat"),
    ("TOTAL TTC", "total_incl_vat"),
    ("AUTRES TAXES", "other_taxes"),
    ("TOTAL A PAYER", "total_to_pay"),
)

LINE_COLUMNS = ("Réf.", "Désignation", "Qté", "Unité", "P.U. HT", "Rem. (%)", "Taxes", "Montant HT")

MENTIONS = (
    "Facture normalisée électronique certifiée par la DGI",
    "Vérifiez l'authenticité de cette facture en scannant le QR code",
)


@dataclass(frozen=True)
class FnePrint:
    title: str  # "Facture de vente Nº 9606123E25000000019"
    reference: str
    qr_payload: str  # exactly what the QR code encodes: the verification URL
    verification_url: str | None
    issuer_ncc: str | None
    mentions: tuple[str, ...] = MENTIONS
    totals: list[tuple[str, Decimal]] = field(default_factory=list)
    original_reference: str | None = None  # on a credit note
    vat_labels: dict[str, str] = field(default_factory=lambda: dict(regime.VAT_LABELS))


def print_data(cert: Certification) -> FnePrint:
    return FnePrint(
        title=f"{TITLES[cert.kind]} Nº {cert.reference}",
        reference=cert.reference,
        qr_payload=cert.qr_content,
        verification_url=cert.verification_url,
        issuer_ncc=cert.authority_data.get("ncc"),
        totals=[(label, cert.totals[key]) for label, key in TOTAL_ROWS if key in cert.totals],
        original_reference=cert.authority_data.get("original_reference"),
    )


# --- the neutral block the PDF renderer lays out (fiscalgate.printing) ---------------------------
AUTHORITY_NAME = "DGI Côte d'Ivoire — FNE (Facture Normalisée Électronique)"
TAX_ID_LABEL = "NCC"
TAX_COLUMN = "Taxes"
# Côte d'Ivoire keeps UTC all year.
TIME_ZONE = timezone(timedelta(0), "GMT")
STICKER_HEADING = "STICKER ÉLECTRONIQUE FNE"


def line_tax_code(invoice: Invoice, line: InvoiceLine) -> str:
    """The VAT code the line was certified with (TVA, TVAB, TVAC, TVAD), plus its custom taxes."""
    code = vat_code_for(invoice, line)
    extra = [t.name for t in line.extra_taxes]
    return " + ".join([code, *extra])


def block(cert: Certification, invoice: Invoice) -> AuthorityBlock:
    data = print_data(cert)
    when = cert.certified_at.astimezone(TIME_ZONE).strftime("%d/%m/%Y %H:%M")
    fields = [("Nº FNE", data.reference), ("Certifiée le", when)]
    if data.issuer_ncc:
        fields.append(("NCC émetteur", data.issuer_ncc))
    template = cert.authority_data.get("template")
    if template:
        fields.append(("Type de facturation", str(template)))
    if data.original_reference:
        fields.append(("Facture d'origine", data.original_reference))
    return AuthorityBlock(
        authority=AUTHORITY_NAME,
        title=data.title,
        reference=data.reference,
        heading=STICKER_HEADING,
        fields=tuple(fields),
        qr=QrText(data.qr_payload) if data.qr_payload else None,
        qr_caption=data.mentions[1],
        mentions=data.mentions[:1],
        totals=tuple(data.totals),
        original_reference=data.original_reference,
        seller_ids=((TAX_ID_LABEL, data.issuer_ncc),) if data.issuer_ncc else (),
    )
