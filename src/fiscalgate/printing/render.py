"""The printed invoice: A4 and thermal receipts (80 mm, 58 mm), as PDF bytes (fpdf2).

Authority-neutral: what an authority asks to print comes from its `printing.py` as an
`AuthorityBlock` (see block.py); this module only lays it out. Totals are the authority's, never
recomputed here; the only arithmetic on the page is each line's own amount (quantity x unit price
less its discount, rounded to the currency), the figure the invoice itself carried.
"""

from __future__ import annotations

import importlib
import io
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Literal

from fpdf import FPDF, FontFace, XPos, YPos
from fpdf.enums import TableBordersLayout

from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import ConfigurationError
from fiscalgate.core.invoice import Invoice, InvoiceKind
from fiscalgate.core.money import round_money
from fiscalgate.printing import qr as qrcodes
from fiscalgate.printing.block import AuthorityBlock, QrPicture, QrText
from fiscalgate.printing.labels import KIND_IN_ENGLISH, LABELS, LANGS, PAYMENT_METHODS, PROFORMA_TITLES, Lang

Layout = Literal["a4", "receipt", "receipt58"]
LAYOUTS: tuple[Layout, ...] = ("a4", "receipt", "receipt58")

FONTS = Path(__file__).parent / "fonts"
FAMILY = "DejaVu"
RED = (176, 0, 32)
GREY = (235, 235, 235)


@dataclass(frozen=True)
class SellerIdentity:
    """Who sells, as printed: the tenant's profile (or the invoice's own seller fields)."""

    name: str | None = None
    tax_id: str | None = None
    rccm: str | None = None
    address: str | None = None
    phone: str | None = None
    email: str | None = None
    logo: bytes | None = None  # PNG or JPEG


@dataclass(frozen=True)
class _Receipt:
    width: float
    margin: float
    font: float  # body size, pt
    qr_side: float  # mm, quiet zone included
    logo_height: float


RECEIPTS: dict[str, _Receipt] = {
    "receipt": _Receipt(80, 4, 7.5, 40, 14),
    "receipt58": _Receipt(58, 3, 6.5, 34, 11),
}
A4_QR_SIDE = 38.0
RECEIPT_MAX_PAGE = 1000.0  # mm: a roll; longer receipts continue on another page


# --- preparing the document ------------------------------------------------------------------------
def authority_printing(code: str) -> ModuleType:
    """The authority's printing module, found next to its driver (so a new authority folder needs
    no line here)."""
    from fiscalgate import authorities

    driver = authorities.get_driver(code)
    package = type(driver).__module__.rsplit(".", 1)[0]
    module = importlib.import_module(f"{package}.printing")
    for name in ("block", "line_tax_code", "TAX_ID_LABEL", "TAX_COLUMN", "AUTHORITY_NAME"):
        if not hasattr(module, name):
            raise ConfigurationError(
                f"{package}.printing has no {name}: the authority cannot be printed",
                code="printing.authority_incomplete",
            )
    return module


def amount_text(value: Decimal, lang: Lang) -> str:
    """1 189 469 (fr) / 1,189,469 (en); decimals only when the amount has some."""
    text = f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"
    if lang == "fr":
        text = text.replace(",", "\u00a0").replace(".", ",")
    return text


def quantity_text(value: Decimal, lang: Lang) -> str:
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(".", ",") if lang == "fr" else text


def currency_text(code: str) -> str:
    return "FCFA" if code in ("XOF", "XAF") else code


@dataclass(frozen=True)
class _Line:
    no: str
    reference: str
    description: str
    quantity: str
    unit_price: str
    discount: str
    tax: str
    amount: str


@dataclass
class _Doc:
    invoice: Invoice
    cert: Certification | None
    block: AuthorityBlock | None
    authority_name: str
    tax_id_label: str
    tax_column: str
    time_zone: tzinfo | None
    seller: SellerIdentity
    lang: Lang
    duplicate: bool
    printed_at: datetime | None
    lines: list[_Line] = field(default_factory=list)
    amount_label: str = ""
    unit_price_label: str = ""

    @property
    def t(self) -> dict[str, str]:
        return LABELS[self.lang]

    def money(self, value: Decimal) -> str:
        return amount_text(value, self.lang)

    @property
    def currency(self) -> str:
        return currency_text(self.invoice.currency)

    @property
    def title(self) -> str:
        if self.block is not None:
            return self.block.title
        return PROFORMA_TITLES[self.lang][self.invoice.kind]

    @property
    def subtitle(self) -> str | None:
        if self.block is not None and self.lang == "en":
            return KIND_IN_ENGLISH[self.invoice.kind]
        return None

    @property
    def reference(self) -> str | None:
        return self.block.reference if self.block is not None else None

    @property
    def banners(self) -> list[str]:
        out = []
        if self.duplicate:
            when = ""
            if self.printed_at is not None:
                when = f" — {self.t['printed_at']} {self.when(self.printed_at)}"
            out.append(self.t["duplicate"] + when)
        if self.block is None:
            out.append(self.t["proforma_banner"])
        elif self.block.banner:
            out.append(self.block.banner)
        return out

    def when(self, moment: datetime) -> str:
        if self.time_zone is not None:
            moment = moment.astimezone(self.time_zone)
        return moment.strftime("%d/%m/%Y %H:%M")

    @property
    def original_text(self) -> str | None:
        if self.invoice.kind is not InvoiceKind.CREDIT_NOTE:
            return None
        ref = self.block.original_reference if self.block is not None else None
        original = self.invoice.original
        parts = [p for p in (ref or (original.reference if original else None),) if p]
        if original is not None and original.number and original.number not in parts:
            parts.append(original.number)
        return " / ".join(parts) or None

    def seller_lines(self) -> list[str]:
        s, t = self.seller, self.t
        ids = dict(self.block.seller_ids) if self.block is not None else {}
        out = []
        tax_id = ids.pop(self.tax_id_label, None) or s.tax_id
        if tax_id:
            out.append(f"{self.tax_id_label} : {tax_id}")
        rccm = ids.pop("RCCM", None) or s.rccm
        if rccm:
            out.append(f"{t['rccm']} : {rccm}")
        out.extend(f"{label} : {value}" for label, value in ids.items())
        if s.address:
            out.append(s.address)
        contacts = [f"{t['phone']} {s.phone}" if s.phone else "", s.email or ""]
        if any(contacts):
            out.append("  ·  ".join(c for c in contacts if c))
        return out

    def buyer_lines(self) -> list[str]:
        b, t = self.invoice.buyer, self.t
        out = []
        if b.tax_id:
            out.append(f"{self.tax_id_label} : {b.tax_id}")
        if b.rccm:
            out.append(f"{t['rccm']} : {b.rccm}")
        if b.address:
            out.append(b.address)
        contacts = [f"{t['phone']} {b.phone}" if b.phone else "", b.email or ""]
        if any(contacts):
            out.append("  ·  ".join(c for c in contacts if c))
        return out

    def info_rows(self) -> list[tuple[str, str]]:
        inv, t = self.invoice, self.t
        rows = [(t["number"], inv.number)]
        issued = inv.issued_at or (self.cert.certified_at if self.cert else None)
        if issued is not None:
            rows.append((t["date"], self.when(issued)))
        if inv.due_date is not None:
            rows.append((t["due_date"], inv.due_date.strftime("%d/%m/%Y")))
        if self.original_text:
            rows.append((t["credit_note_of"], self.original_text))
        if inv.operator is not None:
            rows.append((t["operator"], inv.operator.name))
        if inv.point_of_sale:
            rows.append((t["point_of_sale"], inv.point_of_sale))
        if inv.establishment:
            rows.append((t["establishment"], inv.establishment))
        return rows

    def discount_rows(self) -> list[tuple[str, str]]:
        d = self.invoice.discount
        if d is None or d.value == 0:
            return []
        value = f"{quantity_text(d.value, self.lang)} %" if d.kind == "percent" else self.money(d.value)
        return [(self.t["global_discount"], value)]

    def payment_rows(self) -> list[tuple[str, str]]:
        out = []
        for p in self.invoice.payments:
            label = PAYMENT_METHODS[self.lang][p.method]
            if p.reference:
                label += f" ({p.reference})"
            out.append((label, f"{self.money(p.amount)} {self.currency}" if p.amount is not None else ""))
        return out


def _prepare(
    invoice: Invoice,
    cert: Certification | None,
    authority: str,
    seller: SellerIdentity | None,
    lang: Lang,
    duplicate: bool,
    printed_at: datetime | None,
) -> _Doc:
    module = authority_printing(authority)
    block: AuthorityBlock | None = module.block(cert, invoice) if cert is not None else None
    own = invoice.seller
    base = SellerIdentity(own.name, own.tax_id, own.rccm, own.address, own.phone, own.email)
    if seller is not None:
        # The profile wins; a field it leaves empty falls back to the invoice's.
        base = SellerIdentity(
            name=seller.name or base.name,
            tax_id=seller.tax_id or base.tax_id,
            rccm=seller.rccm or base.rccm,
            address=seller.address or base.address,
            phone=seller.phone or base.phone,
            email=seller.email or base.email,
            logo=seller.logo,
        )
    doc = _Doc(
        invoice=invoice,
        cert=cert,
        block=block,
        authority_name=str(module.AUTHORITY_NAME),
        tax_id_label=str(module.TAX_ID_LABEL),
        tax_column=str(module.TAX_COLUMN),
        time_zone=getattr(module, "TIME_ZONE", None),
        seller=base,
        lang=lang,
        # Only a certified invoice has an original to copy: a pro forma is never a duplicate.
        duplicate=duplicate and block is not None,
        printed_at=printed_at,
    )
    t = doc.t
    kinds = {line.price_includes_tax for line in invoice.lines}
    suffix = "" if len(kinds) > 1 else (t["ttc"] if kinds == {True} else t["ht"])
    doc.amount_label = f"{t['col_amount']} {suffix}".strip()
    doc.unit_price_label = f"{t['col_unit_price']} {suffix}".strip()
    for i, line in enumerate(invoice.lines, start=1):
        discount = ""
        if line.discount is not None and line.discount.value:
            d = line.discount
            discount = f"{quantity_text(d.value, lang)} %" if d.kind == "percent" else doc.money(d.value)
        net = round_money(line.gross - line.discount_amount, invoice.currency)
        doc.lines.append(
            _Line(
                no=str(i),
                reference=line.reference or "",
                description=line.description,
                quantity=quantity_text(line.quantity, lang) + (f" {line.unit}" if line.unit else ""),
                unit_price=doc.money(line.unit_price),
                discount=discount,
                tax=str(module.line_tax_code(invoice, line)),
                amount=doc.money(net),
            )
        )
    return doc


# --- the PDF ---------------------------------------------------------------------------------------
class _Pdf(FPDF):
    def __init__(self, doc: _Doc, page: tuple[float, float], margin: float, *, a4: bool) -> None:
        super().__init__(unit="mm", format=page)
        self.doc = doc
        self.a4 = a4
        self.add_font(FAMILY, "", str(FONTS / "DejaVuSansCondensed.ttf"))
        self.add_font(FAMILY, "B", str(FONTS / "DejaVuSansCondensed-Bold.ttf"))
        self.set_margins(margin, margin, margin)
        self.set_auto_page_break(True, margin + (8 if a4 else 0))
        self.set_title(doc.title)
        self.set_author(doc.seller.name or "")
        self.set_creator("fiscalgate")
        self.set_lang("fr" if doc.lang == "fr" else "en")
        self.c_margin = 0.8
        if doc.printed_at is not None:
            self.set_creation_date(doc.printed_at)

    def finish(self) -> bytes:
        """The PDF bytes; then the font files fontTools keeps open (lazy loading) are closed."""
        try:
            return bytes(self.output())
        finally:
            self.close_fonts()

    def close_fonts(self) -> None:
        for font in self.fonts.values():
            ttfont = getattr(font, "ttfont", None)
            if ttfont is not None:
                ttfont.close()

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(FAMILY, "B" if bold else "", size)

    def header(self) -> None:
        if not self.a4:
            return
        for text in self.doc.banners:
            self.banner(text, 10)
        if self.page_no() > 1:
            # Continuation pages say whose lines these are.
            self.font(8, True)
            self.cell(
                0, 5, f"{self.doc.title} — {self.doc.invoice.number}", new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
            self.ln(1)

    def footer(self) -> None:
        if not self.a4:
            return
        d = self.doc
        self.set_y(-12)
        self.font(7)
        self.set_text_color(90, 90, 90)
        ref = d.reference or d.t["not_certified"]
        text = f"{d.invoice.number} · {ref} · {d.t['page']} {self.page_no()}/{{nb}}"
        self.cell(0, 4, text, align="C")
        self.set_text_color(0, 0, 0)

    def banner(self, text: str, size: float) -> None:
        self.font(size, True)
        self.set_text_color(*RED)
        self.set_draw_color(*RED)
        self.set_line_width(0.4)
        self.multi_cell(0, size * 0.5, text, border=1, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0, 0, 0)
        self.set_draw_color(0, 0, 0)
        self.set_line_width(0.2)
        self.ln(1.5)

    def rows(
        self,
        rows: list[tuple[str, str]],
        width: float,
        size: float,
        *,
        bold_last: bool = False,
        bold_values: bool = False,
    ) -> None:
        """label ............ value, one per row, starting at the current x; either side wraps."""
        x = self.get_x()
        height = size * 0.45
        for i, (label, value) in enumerate(rows):
            bold = bold_last and i == len(rows) - 1
            self.font(size, bold or bold_values)
            needed = self.get_string_width(value) + 2
            if self.will_page_break(height):
                self.add_page()
            self.set_x(x)
            if needed > width * 0.6 and label:
                # A long value (a reference, a code) is never broken: label above, value below.
                self.font(size, bold)
                self.multi_cell(width, height, label, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                self.set_x(x)
                self.font(size, bold or bold_values)
                self.multi_cell(width, height, value, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                continue
            value_width = min(width * 0.6, needed)
            top = self.get_y()
            self.font(size, bold)
            self.multi_cell(width - value_width, height, label, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            bottom = self.get_y()
            self.set_xy(x + width - value_width, top)
            self.font(size, bold or bold_values)
            self.multi_cell(value_width, height, value, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.set_y(max(bottom, self.get_y()))

    def logo(self, data: bytes, x: float, y: float, max_w: float, max_h: float, *, center: bool) -> float:
        """Draw the logo within max_w x max_h; returns the height used."""
        info = self.image(io.BytesIO(data), x=-10000, y=-10000, w=1)  # measure only (off the page)
        ratio = float(info.height) / float(info.width) if info.width else 1.0
        w, h = max_w, max_w * ratio
        if h > max_h:
            w, h = max_h / ratio, max_h
        if center:
            x = x + (max_w - w) / 2
        self.image(io.BytesIO(data), x=x, y=y, w=w, h=h)
        return h

    def qr_side(self, block: AuthorityBlock, side: float, *, thermal: bool) -> float:
        """The side the block's QR code will take (quiet zone included) for a target side."""
        if isinstance(block.qr, QrText):
            return qrcodes.geometry(qrcodes.make(block.qr.content), side, thermal=thermal).side_mm
        return side if block.qr is not None else 0.0

    def qr(self, block: AuthorityBlock, x: float, y: float, side: float, *, thermal: bool) -> float:
        """Draw the block's QR code with its top-left corner at (x, y); returns its side."""
        if isinstance(block.qr, QrText):
            code = qrcodes.make(block.qr.content)
            geo = qrcodes.geometry(code, side, thermal=thermal)
            qrcodes.draw(self, code, x, y, geo)
            return geo.side_mm
        if isinstance(block.qr, QrPicture):
            # The authority's picture, printed as is; its own margin is its quiet zone, and a white
            # frame of ours keeps text away from it.
            pad = side * 0.06
            self.image(io.BytesIO(block.qr.png), x=x + pad, y=y + pad, w=side - 2 * pad, h=side - 2 * pad)
            return side
        return 0.0


# --- A4 --------------------------------------------------------------------------------------------
def _a4(doc: _Doc, *, closing_on_new_page: bool = False) -> bytes:
    pdf = _Pdf(doc, (210, 297), 12, a4=True)
    pdf.alias_nb_pages()
    pdf.add_page()
    full = pdf.epw
    half = full / 2 - 3
    top = pdf.get_y()

    # Seller (left)
    x0 = pdf.l_margin
    y = top
    if doc.seller.logo:
        y += pdf.logo(doc.seller.logo, x0, y, 40, 18, center=False) + 2
    pdf.set_xy(x0, y)
    pdf.font(11, True)
    pdf.multi_cell(half, 5, doc.seller.name or "", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.font(8.5)
    for text in doc.seller_lines():
        pdf.multi_cell(half, 4, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    left_bottom = pdf.get_y()

    # Title and the invoice's own facts (right)
    xr = x0 + full - half
    pdf.set_xy(xr, top)
    pdf.font(13, True)
    pdf.multi_cell(half, 6, doc.title, align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    if doc.subtitle:
        pdf.font(9)
        pdf.multi_cell(half, 4.5, doc.subtitle, align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.ln(1)
    pdf.set_x(xr)
    pdf.rows(doc.info_rows(), half, 8.5)
    right_bottom = pdf.get_y()

    # Buyer box (right), subject (left)
    pdf.set_y(max(left_bottom, right_bottom) + 3)
    box_top = pdf.get_y()
    pdf.set_x(xr)
    pdf.font(7.5, True)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(half, 4, pdf.doc.t["buyer"].upper(), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.font(9.5, True)
    pdf.multi_cell(half, 4.6, doc.invoice.buyer.name or "—", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.font(8.5)
    for text in doc.buyer_lines():
        pdf.multi_cell(half, 4, text, new_x=XPos.LEFT, new_y=YPos.NEXT)
    box_bottom = pdf.get_y() + 1.5
    pdf.rect(xr - 2, box_top - 1.5, half + 2, box_bottom - box_top + 1.5)
    if doc.invoice.subject:
        pdf.set_xy(x0, box_top)
        pdf.font(8.5, True)
        pdf.multi_cell(
            half - 4, 4, f"{doc.t['subject']}{doc.t['colon']} {doc.invoice.subject}", new_x=XPos.LMARGIN
        )
    pdf.set_y(box_bottom + 4)

    _a4_lines(pdf, doc)
    pdf.ln(3)
    if closing_on_new_page:
        pdf.add_page()
    page = pdf.page
    _a4_closing(pdf, doc)
    if pdf.page != page and not closing_on_new_page:
        # The closing block (totals, authority block) ran over a page break: it stays in one piece,
        # so draw the document again with the block starting a page of its own.
        pdf.close_fonts()
        return _a4(doc, closing_on_new_page=True)
    return pdf.finish()


# (width mm, alignment) of #, ref., description, quantity, unit price, discount, tax, amount
A4_COLUMNS = ((7, "R"), (18, "L"), (65, "L"), (14, "R"), (21, "R"), (14, "R"), (18, "C"), (29, "R"))


def _a4_lines(pdf: _Pdf, doc: _Doc) -> None:
    """The lines table, headings repeated on every page. Drawn by hand: fpdf2's table() lays every
    cell out twice through multi_cell, ten times slower on a 500-line invoice."""
    t = doc.t
    headings = (
        t["col_no"],
        t["col_ref"],
        t["col_description"],
        t["col_quantity"],
        doc.unit_price_label,
        t["col_discount"],
        doc.tax_column,
        doc.amount_label,
    )
    line_h, pad = 3.8, 0.6

    def wrapped(text: str, width: float) -> list[str]:
        if pdf.get_string_width(text) <= width - 2 * pdf.c_margin:
            return [text]
        lines: list[str] = pdf.multi_cell(width, line_h, text, dry_run=True, output="LINES")  # type: ignore[assignment]
        return lines

    def row(cells: tuple[str, ...], *, heading: bool = False) -> None:
        pdf.font(8, heading)
        parts = [wrapped(text, width) for text, (width, _) in zip(cells, A4_COLUMNS, strict=True)]
        height = max(len(p) for p in parts) * line_h + 2 * pad
        if not heading and pdf.will_page_break(height):
            pdf.add_page()
            row(headings, heading=True)
            pdf.font(8)
        x, y = pdf.l_margin, pdf.get_y()
        if heading:
            pdf.set_fill_color(*GREY)
            pdf.rect(x, y, pdf.epw, height, style="F")
        for lines, (width, align) in zip(parts, A4_COLUMNS, strict=True):
            for i, text in enumerate(lines):
                pdf.set_xy(x, y + pad + i * line_h)
                pdf.cell(width, line_h, text, align=align)
            x += width
        pdf.set_line_width(0.2 if heading else 0.1)
        pdf.line(pdf.l_margin, y + height, pdf.l_margin + pdf.epw, y + height)
        pdf.set_line_width(0.2)
        pdf.set_xy(pdf.l_margin, y + height)

    row(headings, heading=True)
    for line in doc.lines:
        row(
            (
                line.no,
                line.reference,
                line.description,
                line.quantity,
                line.unit_price,
                line.discount,
                line.tax,
                line.amount,
            )
        )


def _a4_closing(pdf: _Pdf, doc: _Doc) -> None:
    """Discounts, totals, tax breakdown, payment and the authority block: always together, on the
    last page (see printing/README.md)."""
    t = doc.t
    full = pdf.epw
    x0 = pdf.l_margin
    block = doc.block
    right_w = 82
    xr = x0 + full - right_w
    top = pdf.get_y()

    # Left column: tax breakdown, payments
    left_w = full - right_w - 6
    pdf.set_xy(x0, top)
    if block is not None and block.tax_rows:
        pdf.font(8.5, True)
        pdf.cell(left_w, 5, t["tax_breakdown"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.font(7.5)
        with pdf.table(
            col_widths=(40, 20, 18, 20),
            width=left_w,
            text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
            headings_style=FontFace(emphasis="BOLD", fill_color=GREY),
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            line_height=3.6,
            padding=(0.6, 1),
            align="LEFT",
        ) as table:
            table.row((t["col_group"], t["col_base"], t["col_tax"], t["col_total"]))
            for row in block.tax_rows:
                total = doc.money(row.total) if row.total is not None else ""
                table.row((row.label, doc.money(row.base), doc.money(row.tax), total))
        pdf.ln(2)
    payments = doc.payment_rows()
    if payments:
        pdf.set_x(x0)
        pdf.font(8.5, True)
        pdf.cell(left_w, 5, t["payments"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_x(x0)
        pdf.rows(payments, left_w * 0.7, 8)
    left_bottom = pdf.get_y()

    # Right column: discounts then the authority's totals
    pdf.set_xy(xr, top)
    discounts = doc.discount_rows()
    if discounts:
        pdf.rows(discounts, right_w, 8.5)
        pdf.set_x(xr)
    if block is not None and block.totals:
        pdf.font(7.5, True)
        pdf.set_text_color(90, 90, 90)
        pdf.cell(right_w, 4.5, f"{t['totals']} — {doc.currency}", new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_text_color(0, 0, 0)
        rows = [(label, doc.money(value)) for label, value in block.totals]
        pdf.rows(rows[:-1], right_w, 9)
        pdf.set_x(xr)
        pdf.line(xr, pdf.get_y() + 0.5, xr + right_w, pdf.get_y() + 0.5)
        pdf.ln(1.2)
        pdf.set_x(xr)
        last_label, last_value = rows[-1]
        pdf.rows([(last_label, f"{last_value} {doc.currency}")], right_w, 11, bold_last=True)
    else:
        pdf.font(8.5)
        pdf.multi_cell(right_w, 4, t["proforma_totals"], align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(left_bottom, pdf.get_y()) + 5)

    _a4_authority(pdf, doc)
    for text in (doc.invoice.commercial_message, doc.invoice.notes, doc.invoice.footer):
        if text:
            pdf.font(8)
            pdf.multi_cell(0, 4, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _a4_authority(pdf: _Pdf, doc: _Doc) -> None:
    block, t = doc.block, doc.t
    x0, full = pdf.l_margin, pdf.epw
    top = pdf.get_y()
    if block is None:
        pdf.set_draw_color(*RED)
        pdf.set_text_color(*RED)
        pdf.font(9, True)
        pdf.multi_cell(full, 4.5, f"{t['proforma_banner']}\n{t['proforma_note']}", border=1, align="C")
        pdf.set_text_color(0, 0, 0)
        pdf.set_draw_color(0, 0, 0)
        pdf.ln(3)
        return
    side = A4_QR_SIDE
    pdf.set_xy(x0 + 2, top + 2)
    used = pdf.qr(block, x0 + 2, top + 2, side, thermal=False) if block.qr is not None else 0.0
    text_x = x0 + 4 + used + 3
    text_w = full - (text_x - x0) - 2
    pdf.set_xy(text_x, top + 3)
    if block.heading:
        pdf.font(9.5, True)
        pdf.multi_cell(text_w, 4.6, block.heading, new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.font(8)
    pdf.multi_cell(
        text_w, 4, f"{t['certified_by']}{t['colon']} {block.authority}", new_x=XPos.LEFT, new_y=YPos.NEXT
    )
    pdf.ln(0.5)
    for label, value in block.fields:
        pdf.set_x(text_x)
        pdf.font(8.5)
        label_w = min(58.0, pdf.get_string_width(label + " :") + 2)
        row_top = pdf.get_y()
        pdf.multi_cell(label_w, 4.4, f"{label} :", new_x=XPos.RIGHT, new_y=YPos.TOP)
        pdf.font(8.5, True)
        pdf.multi_cell(text_w - label_w, 4.4, value, new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_xy(text_x, max(pdf.get_y(), row_top + 4.4))
    pdf.ln(1)
    pdf.font(7.5)
    for text in block.mentions:
        pdf.set_x(text_x)
        pdf.multi_cell(text_w, 3.6, text, new_x=XPos.LEFT, new_y=YPos.NEXT)
    bottom = max(pdf.get_y(), top + 2 + used)
    if block.qr_caption:
        pdf.set_xy(x0 + 2, top + 2 + used)
        pdf.font(6.5)
        pdf.multi_cell(used or side, 3, block.qr_caption, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        bottom = max(bottom, pdf.get_y())
    pdf.rect(x0, top, full, bottom - top + 2)
    pdf.set_y(bottom + 5)


# --- receipts --------------------------------------------------------------------------------------
def _receipt(doc: _Doc, spec: _Receipt) -> bytes:
    first = _receipt_pdf(doc, spec, RECEIPT_MAX_PAGE)
    if first.pages_count > 1:
        return first.finish()
    # One page: cut the roll where the content ends.
    height = first.get_y() + spec.margin + 2
    first.close_fonts()
    return _receipt_pdf(doc, spec, max(height, 60.0)).finish()


def _receipt_pdf(doc: _Doc, spec: _Receipt, page_height: float) -> _Pdf:
    pdf = _Pdf(doc, (spec.width, page_height), spec.margin, a4=False)
    pdf.add_page()
    t, s = doc.t, spec.font
    w = pdf.epw
    lh = s * 0.45

    def centred(text: str, size: float = s, bold: bool = False) -> None:
        pdf.font(size, bold)
        pdf.multi_cell(w, size * 0.46, text, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def rule() -> None:
        pdf.ln(0.8)
        pdf.set_line_width(0.15)
        with pdf.local_context():
            pdf.set_dash_pattern(dash=0.8, gap=0.6)
            pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + w, pdf.get_y())
        pdf.ln(1.2)

    for text in doc.banners:
        pdf.banner(text, s + 1.5)
    if doc.seller.logo:
        used = pdf.logo(doc.seller.logo, pdf.l_margin, pdf.get_y(), w, spec.logo_height, center=True)
        pdf.ln(used + 1)
    centred(doc.seller.name or "", s + 2, True)
    for text in doc.seller_lines():
        centred(text, s - 0.5)
    rule()
    centred(doc.title, s + 1.5, True)
    if doc.subtitle:
        centred(doc.subtitle, s)
    pdf.ln(0.5)
    pdf.rows(doc.info_rows(), w, s)
    buyer = doc.invoice.buyer
    if buyer.name or doc.buyer_lines():
        rule()
        pdf.font(s, True)
        pdf.multi_cell(
            w, lh, f"{t['buyer']}{t['colon']} {buyer.name or '—'}", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        pdf.font(s - 0.5)
        for text in doc.buyer_lines():
            pdf.multi_cell(w, lh, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    rule()
    for line in doc.lines:
        pdf.font(s)
        label = f"{line.reference} {line.description}".strip()
        pdf.multi_cell(w, lh, label, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        detail = f"  {line.quantity} x {line.unit_price}"
        if line.discount:
            detail += f"  -{line.discount}"
        pdf.rows([(detail, f"{line.amount} {line.tax}".rstrip())], w, s)
    rule()
    discounts = doc.discount_rows()
    if discounts:
        pdf.rows(discounts, w, s)
    block = doc.block
    if block is not None and block.totals:
        rows = [(label, doc.money(value)) for label, value in block.totals]
        pdf.rows(rows[:-1], w, s)
        last_label, last_value = rows[-1]
        pdf.rows([(last_label, f"{last_value} {doc.currency}")], w, s + 2, bold_last=True)
    else:
        pdf.font(s - 0.5)
        pdf.multi_cell(w, lh, t["proforma_totals"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if block is not None and block.tax_rows:
        pdf.ln(1)
        pdf.font(s - 0.5, True)
        pdf.multi_cell(w, lh, t["tax_breakdown"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        for row in block.tax_rows:
            values = f"{t['col_base']} {doc.money(row.base)} · {t['col_tax']} {doc.money(row.tax)}"
            pdf.rows([(row.label, values)], w, s - 0.5)
    payments = doc.payment_rows()
    if payments:
        rule()
        pdf.rows([(f"{t['payments']}{t['colon']} {label}", value) for label, value in payments], w, s)
    rule()
    if block is None:
        pdf.set_text_color(*RED)
        centred(t["proforma_banner"], s, True)
        centred(t["proforma_note"], s - 0.5)
        pdf.set_text_color(0, 0, 0)
    else:
        if block.heading:
            centred(block.heading, s, True)
        centred(f"{t['certified_by']}{t['colon']} {block.authority}", s - 0.5)
        pdf.ln(0.5)
        pdf.rows([(f"{label} :", value) for label, value in block.fields], w, s - 0.5, bold_values=True)
        if block.qr is not None:
            pdf.ln(1)
            side = pdf.qr_side(block, spec.qr_side, thermal=True)
            if pdf.will_page_break(side + 1):
                pdf.add_page()
            used = pdf.qr(block, pdf.l_margin + (w - side) / 2, pdf.get_y(), spec.qr_side, thermal=True)
            pdf.set_y(pdf.get_y() + used + 0.5)
        if block.qr_caption:
            centred(block.qr_caption, s - 1)
        for text in block.mentions:
            centred(text, s - 1)
    for extra in (doc.invoice.commercial_message, doc.invoice.notes, doc.invoice.footer):
        if extra:
            rule()
            centred(extra, s - 0.5)
    return pdf


# --- entry point -----------------------------------------------------------------------------------
def render_invoice_pdf(
    invoice: Invoice,
    certification: Certification | None = None,
    *,
    authority: str | None = None,
    seller: SellerIdentity | None = None,
    layout: Layout = "a4",
    lang: Lang = "fr",
    duplicate: bool = False,
    printed_at: datetime | None = None,
) -> bytes:
    """The invoice as a PDF.

    `certification` None prints a pro forma marked "non certifiée" (no reference, no QR);
    `authority` is then required (which authority's tax codes the lines show). `seller` (the
    tenant's profile) wins over the invoice's seller fields. `duplicate` marks a certified
    invoice's reprint "DUPLICATA"; `printed_at` is printed on a duplicate and set as the PDF's date.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    code = certification.authority if certification is not None else authority
    if not code:
        raise ValueError("a pro forma needs `authority` (whose tax codes its lines show)")
    if certification is not None and authority and authority != certification.authority:
        raise ValueError(f"the certification is {certification.authority}'s, not {authority}'s")
    doc = _prepare(invoice, certification, code, seller, lang, duplicate, printed_at)
    if layout == "a4":
        return _a4(doc)
    return _receipt(doc, RECEIPTS[layout])


__all__ = ["LAYOUTS", "Layout", "SellerIdentity", "authority_printing", "render_invoice_pdf"]
