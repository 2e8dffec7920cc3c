"""The printed invoice, read back: every mandatory mention in the text, the QR code decoded from
the page's pixels, pro forma and duplicate markings, pagination, languages and fonts."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import anyio
import pytest
from PIL import Image

from fiscalgate.authorities.bj_emecef import printing as emecef_printing
from fiscalgate.authorities.cg_sfec import printing as sfec_printing
from fiscalgate.authorities.ci_fne import printing as fne_printing
from fiscalgate.core.certification import Certification
from fiscalgate.core.invoice import Invoice, parse_invoice
from fiscalgate.printing import SellerIdentity, render_invoice_pdf
from fiscalgate.printing.render import amount_text
from tests.printing.conftest import AUTHORITIES, Certified, certify_pair, example
from tests.printing.helpers import all_text, normalised, page_texts, qr_codes_per_page, qr_of_data_uri

LAYOUTS = ("a4", "receipt", "receipt58")


def mandatory(code: str, invoice: Invoice, cert: Certification) -> list[str]:
    """What the law and the authority ask the page to show, from the stored certification."""
    data = cert.authority_data
    total = amount_text(next(iter(reversed(_printed_totals(code, cert, invoice)))), "fr")
    common = [invoice.number, invoice.seller.name or "", invoice.buyer.name or "", total, "FCFA"]
    common += [line.description for line in invoice.lines]
    if code == "ci-fne":
        title = fne_printing.TITLES[cert.kind]
        out = [f"{title} Nº {cert.reference}", "STICKER ÉLECTRONIQUE FNE", *fne_printing.MENTIONS]
        out += ["TOTAL HT", "TVA", "TOTAL TTC", "TOTAL A PAYER", data["ncc"]]
        if cert.kind == "credit_note":
            out.append(data["original_reference"])
        return [normalised(m) for m in common + out]
    if code == "bj-emecef":
        p = emecef_printing.printed(cert)
        out = [p.security_title, "Code MECeF/DGI", cert.reference, "MECeF NIM", data["nim"]]
        out += ["MECeF Compteurs", cert.counters or "", "MECeF Heure", data["date_time"]]
        out += [p.title, p.number, "TEST FACTURE", "Ventilation des taxes"]
        out += [row.label for row in p.tax_rows]
        if p.aib:
            out.append(p.aib[0])
        if cert.kind == "credit_note":
            out.append(data["original_code"])
        return [normalised(m) for m in common + out]
    m = sfec_printing.mentions(cert, invoice=invoice)
    out = [m.title, m.certification_number, m.short_signature or "", m.mention, "NIU", data["taxpayer_niu"]]
    out += [label for label, _ in m.totals]
    if cert.kind == "credit_note":
        out += ["FACTURE D'AVOIR", data["reference_invoice_id"]]
    return [normalised(m) for m in common + out]


def _printed_totals(code: str, cert: Certification, invoice: Invoice) -> list[Decimal]:
    module = {"ci-fne": fne_printing, "bj-emecef": emecef_printing, "cg-sfec": sfec_printing}[code]
    return [amount for _, amount in module.block(cert, invoice).totals]


def expected_qr(cert: Certification) -> str:
    if cert.qr_image:
        return qr_of_data_uri(cert.qr_image)  # SFEC: what its own picture encodes
    return cert.qr_content


def pair(certified: dict[str, Certified], code: str, kind: str) -> tuple[Invoice, Certification]:
    c = certified[code]
    return (c.invoice, c.cert) if kind == "invoice" else (c.credit, c.credit_cert)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["invoice", "credit_note"])
@pytest.mark.parametrize("code", AUTHORITIES)
def test_certified_page_shows_every_mention_and_a_readable_qr(
    certified: dict[str, Certified], code: str, kind: str, layout: str
) -> None:
    invoice, cert = pair(certified, code, kind)
    pdf = render_invoice_pdf(invoice, cert, layout=layout)  # type: ignore[arg-type]
    text = all_text(pdf)
    missing = [m for m in mandatory(code, invoice, cert) if m and m not in text]
    assert not missing, f"not on the page: {missing}\n---\n{text}"
    assert "NON CERTIFIÉE" not in text and "DUPLICATA" not in text
    # The QR, decoded from pixels, carries exactly the stored content (one code, on the last page).
    codes = qr_codes_per_page(pdf)
    assert codes[-1] == [expected_qr(cert)]
    assert all(not page for page in codes[:-1])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("code", AUTHORITIES)
def test_pro_forma_has_no_qr_no_reference_and_says_so(
    certified: dict[str, Certified], code: str, layout: str
) -> None:
    c = certified[code]
    pdf = render_invoice_pdf(c.invoice, None, authority=code, layout=layout)  # type: ignore[arg-type]
    text = all_text(pdf)
    assert "PRO FORMA" in text and "NON CERTIFIÉE" in text
    assert c.cert.reference not in text
    assert all(not page for page in qr_codes_per_page(pdf))
    # no authority totals on a document the authority has not seen
    assert normalised(amount_text(_printed_totals(code, c.cert, c.invoice)[-1], "fr")) not in text
    # a pro forma is never a duplicate, whatever the caller says
    again = render_invoice_pdf(c.invoice, None, authority=code, layout=layout, duplicate=True)  # type: ignore[arg-type]
    assert "DUPLICATA" not in all_text(again)


@pytest.mark.parametrize("layout", ["a4", "receipt"])
def test_a_reprint_is_marked_duplicata_on_every_page(certified: dict[str, Certified], layout: str) -> None:
    c = certified["bj-emecef"]
    first = render_invoice_pdf(c.invoice, c.cert, layout=layout)  # type: ignore[arg-type]
    second = render_invoice_pdf(c.invoice, c.cert, layout=layout, duplicate=True)  # type: ignore[arg-type]
    assert "DUPLICATA" not in all_text(first)
    assert all("DUPLICATA" in page for page in page_texts(second))
    assert qr_codes_per_page(second)[-1] == [c.cert.qr_content]


def test_english_labels_keep_the_legal_mentions_in_french(certified: dict[str, Certified]) -> None:
    c = certified["ci-fne"]
    text = all_text(render_invoice_pdf(c.invoice, c.cert, lang="en"))
    for label in ("CUSTOMER", "Description", "Qty", "Sales invoice", "Payment", "Totals (as certified"):
        assert label in text
    french_total = normalised(amount_text(c.cert.totals["total_to_pay"], "fr"))
    for legal in mandatory("ci-fne", c.invoice, c.cert):
        assert legal in text or legal == french_total
    assert amount_text(c.cert.totals["total_to_pay"], "en") + " FCFA" in text  # 861,192
    assert "Désignation" not in text
    pro = all_text(render_invoice_pdf(c.invoice, None, authority="ci-fne", lang="en"))
    assert "PRO FORMA INVOICE" in pro and "NOT CERTIFIED" in pro


def test_500_lines_paginate_with_totals_and_authority_block_on_the_last_page() -> None:
    sale = example("ci_fne/examples/b2b_invoice.json")
    sale["number"] = "F-2026-LONG"
    template = sale["lines"][0]
    sale["lines"] = [
        {**template, "description": f"article {i:03d}", "reference": f"R{i}"} for i in range(500)
    ]
    [cert] = anyio.run(certify_pair, "ci-fne", sale, None)
    invoice = parse_invoice(sale)
    pdf = render_invoice_pdf(invoice, cert)
    pages = page_texts(pdf)
    assert len(pages) >= 10
    for number, page in enumerate(pages, start=1):
        # every page: the column headings, the invoice number, the reference and "Page n/N"
        assert "Désignation" in page and "F-2026-LONG" in page and cert.reference in page
        assert f"Page {number}/{len(pages)}" in page
    assert all(f"article {i:03d}" in " ".join(pages) for i in range(500))
    assert "article 499" in pages[-1]
    for page in pages[:-1]:
        assert "TOTAL A PAYER" not in page and "STICKER ÉLECTRONIQUE FNE" not in page
    assert "TOTAL A PAYER" in pages[-1] and "STICKER ÉLECTRONIQUE FNE" in pages[-1]
    # (the text above already shows the block only on the last page; its QR decodes)
    assert qr_codes_per_page(pdf, dpi=150, pages=slice(-1, None)) == [[cert.qr_content]]


def _png(size: tuple[int, int] = (120, 60)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (20, 90, 160)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_accents_franc_sign_and_the_sellers_profile(
    certified: dict[str, Certified], layout: str, caplog: pytest.LogCaptureFixture
) -> None:
    c = certified["cg-sfec"]
    words = "Crème brûlée, côté forêt, façon maïs — prix en ₣ CFA"
    invoice = c.invoice.model_copy(update={"notes": words})
    profile = SellerIdentity(
        name="Société Générale de Brazzaville",
        rccm="CG-BZV-01-2024-B12-00042",
        phone="+242 06 000 0000",
        email="contact@sgb.cg",
        address="Avenue de l'Indépendance",
        logo=_png(),
    )
    pdf = render_invoice_pdf(invoice, c.cert, seller=profile, layout=layout)  # type: ignore[arg-type]
    text = all_text(pdf)
    assert words in text
    # every glyph exists in the shipped font (fpdf2 logs the ones it lacks and prints nothing)
    assert not [r for r in caplog.records if "missing the following glyphs" in r.getMessage()]
    for value in ("Société Générale de Brazzaville", "CG-BZV-01-2024-B12-00042", "contact@sgb.cg"):
        assert value in text
    # the NIU printed is the one SFEC registered the certification under
    assert c.cert.authority_data["taxpayer_niu"] in text
    assert b"/Subtype /Image" in pdf  # the logo (and SFEC's QR picture)


def test_a_character_outside_the_font_is_reported(
    certified: dict[str, Certified], caplog: pytest.LogCaptureFixture
) -> None:
    # The check above can fail: a character the subset lacks is reported.
    c = certified["ci-fne"]
    render_invoice_pdf(c.invoice.model_copy(update={"notes": "Thé ☕"}), c.cert)
    assert [r for r in caplog.records if "missing the following glyphs" in r.getMessage()]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layout": "a5"}, "layout must be one of a4, receipt, receipt58"),
        ({"lang": "de"}, "lang must be one of fr, en"),
        ({"authority": "bj-emecef"}, "the certification is ci-fne's"),
    ],
)
def test_bad_arguments_are_refused_precisely(
    certified: dict[str, Certified], kwargs: dict[str, Any], message: str
) -> None:
    c = certified["ci-fne"]
    with pytest.raises(ValueError, match=message):
        render_invoice_pdf(c.invoice, c.cert, **kwargs)


def test_a_pro_forma_needs_its_authority(certified: dict[str, Certified]) -> None:
    with pytest.raises(ValueError, match="a pro forma needs `authority`"):
        render_invoice_pdf(certified["ci-fne"].invoice, None)
