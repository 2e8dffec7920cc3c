"""What a printed e-MECeF normalised invoice must show (spec §12), as data for the PDF layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta, timezone
from decimal import Decimal

from fiscalgate.authorities.bj_emecef.convert import _Collector, line_group
from fiscalgate.authorities.bj_emecef.regime import GROUP_RATES, INVOICE_TYPE_LABELS, InvoiceType, TaxGroup
from fiscalgate.core.certification import Certification
from fiscalgate.core.invoice import Invoice, InvoiceLine
from fiscalgate.printing.block import AuthorityBlock, QrText
from fiscalgate.printing.block import TaxRow as BlockTaxRow

SECURITY_TITLE = "ÉLÉMENTS DE SÉCURITÉ DE LA FACTURE NORMALISÉE"
TEST_BANNER = "TEST FACTURE"  # required on invoices from the test platform [SEC]
LABELS = {
    "code": "Code MECeF/DGI",
    "nim": "MECeF NIM",
    "counters": "MECeF Compteurs",
    "time": "MECeF Heure",
}
TITLES = {
    InvoiceType.FV: "FACTURE DE VENTE",
    InvoiceType.FA: "FACTURE D'AVOIR",
    InvoiceType.EV: "FACTURE DE VENTE À L'EXPORTATION",
    InvoiceType.EA: "FACTURE D'AVOIR À L'EXPORTATION",
}
GROUP_LABELS = {
    TaxGroup.A: "A - Exonéré",
    TaxGroup.B: "B - Taxable",
    TaxGroup.C: "C - Exportation",
    TaxGroup.D: "D - Régime d'exception",
    TaxGroup.E: "E - Régime TPS",
    TaxGroup.F: "F - Réservé",
}


@dataclass(frozen=True)
class TaxRow:
    group: TaxGroup
    label: str
    total: Decimal  # TTC, as the e-MCF computed it
    base: Decimal  # HT
    tax: Decimal  # VAT


@dataclass(frozen=True)
class PrintedInvoice:
    title: str
    type_label: str
    number: str  # NIM-m
    banner: str | None
    security_title: str
    security: list[tuple[str, str]]  # (label, value) in print order
    qr_payload: str
    original_code: str | None
    tax_rows: list[TaxRow] = field(default_factory=list)
    aib: tuple[str, Decimal] | None = None  # ("AIB 1 %", amount)
    total: Decimal = Decimal(0)


def printed(cert: Certification) -> PrintedInvoice:
    """The mandatory content of the printed invoice, from a confirmed e-MECeF Certification; the
    amounts are the e-MCF's (they prevail over the SFE's, §12)."""
    data = cert.authority_data
    kind = InvoiceType(data["type"])
    totals = cert.totals
    rows = []
    for group in TaxGroup:
        total = totals.get(f"ta{group.value.lower()}", Decimal(0))
        if not total:
            continue
        if group in (TaxGroup.B, TaxGroup.D):
            base = totals[f"ha{group.value.lower()}"]
            tax = totals[f"va{group.value.lower()}"]
        else:
            base, tax = total, Decimal(0)
        label = f"{GROUP_LABELS[group]} ({GROUP_RATES[group]} %)"
        rows.append(TaxRow(group, label, total, base, tax))
    aib = None
    if totals.get("aib"):
        rate = {"A": 1, "B": 5}.get(str(data.get("aib")), 0)
        aib = (f"AIB {rate} %", totals["aib"])
    nim = str(data.get("nim", ""))
    return PrintedInvoice(
        title=TITLES[kind],
        type_label=INVOICE_TYPE_LABELS[kind],
        number=str(data.get("invoice_number", "")),
        banner=TEST_BANNER if cert.environment != "production" or cert.reference.startswith("TEST") else None,
        security_title=SECURITY_TITLE,
        security=[
            (LABELS["code"], cert.reference),
            (LABELS["nim"], nim),
            (LABELS["counters"], cert.counters or ""),
            (LABELS["time"], str(data.get("date_time", ""))),
        ],
        qr_payload=cert.qr_content,
        original_code=data.get("original_code"),
        tax_rows=rows,
        aib=aib,
        total=totals.get("total", Decimal(0)),
    )


# --- the neutral block the PDF renderer lays out (fiscalgate.printing) ---------------------------
AUTHORITY_NAME = "DGI Bénin — e-MECeF"
TAX_ID_LABEL = "IFU"
TAX_COLUMN = "Groupe"
# Bénin keeps West Africa Time (UTC+1) all year.
TIME_ZONE = timezone(timedelta(hours=1), "WAT")


def line_tax_code(invoice: Invoice, line: InvoiceLine) -> str:
    """The tax group letter of the line (A–F), as the request carried it."""
    group = line_group(line, invoice, 0, _Collector([]))
    return group.value if group is not None else ""


def block(cert: Certification, invoice: Invoice) -> AuthorityBlock:
    p = printed(cert)
    totals = cert.totals
    rows: list[tuple[str, Decimal]] = [("Total HT", totals.get("total_excl_tax", Decimal(0)))]
    rows.append(("TVA", totals.get("total_vat", Decimal(0))))
    if p.aib is not None:
        rows.append(p.aib)
    if totals.get("ts"):
        rows.append(("Taxe spécifique", totals["ts"]))
    rows.append(("Total TTC", p.total))
    ifu = cert.authority_data.get("ifu")
    nim = cert.authority_data.get("nim")
    seller_ids = [(TAX_ID_LABEL, str(ifu))] if ifu else []
    if nim:
        seller_ids.append(("NIM e-MCF", str(nim)))
    fields = list(p.security)
    if p.original_code:
        fields.append(("Facture d'origine (code MECeF/DGI)", p.original_code))
    return AuthorityBlock(
        authority=AUTHORITY_NAME,
        title=f"{p.title} Nº {p.number}" if p.number else p.title,
        reference=cert.reference,
        heading=p.security_title,
        fields=tuple(fields),
        qr=QrText(p.qr_payload) if p.qr_payload else None,
        totals=tuple(rows),
        tax_rows=tuple(BlockTaxRow(r.label, r.base, r.tax, r.total) for r in p.tax_rows),
        banner=p.banner,
        original_reference=p.original_code,
        seller_ids=tuple(seller_ids),
    )
