"""Pure conversion: neutral Invoice -> FNE request, FNE response -> Certification, local validation
that mirrors the platform (the FNE totals are in totals.py).

Every rule below cites SOURCES.md; decisions where the spec is silent are listed in README.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from fiscalgate.authorities.ci_fne import regime
from fiscalgate.authorities.ci_fne.schemas import (
    CustomTax,
    RefundItem,
    RefundRequest,
    RefundResponse,
    SignItem,
    SignRequest,
    SignResponse,
)
from fiscalgate.authorities.ci_fne.totals import (
    FneTotals,
    TotalsLine,
    compute_totals,
    totals_of_request,
)
from fiscalgate.authorities.ci_fne.totals import (
    plain_number as _plain,
)
from fiscalgate.core.certification import Certification, Notice
from fiscalgate.core.errors import Problem
from fiscalgate.core.invoice import Invoice, InvoiceKind, InvoiceLine, PaymentMethod

OPTION_KEYS = ("template", "payment_method", "is_rne", "rne", "custom_taxes")
_OPT = f"authority_options.{regime.AUTHORITY}"
ONE = Decimal(1)
# A double holds 15 significant digits exactly; JSON numbers beyond that would not survive the trip.
_WIRE_DIGITS = 15


# --- choices from the neutral invoice --------------------------------------------------------------
def template_for(invoice: Invoice) -> str:
    chosen = invoice.options_for(regime.AUTHORITY).get("template")
    if isinstance(chosen, str) and chosen:
        return chosen.strip().upper()
    return regime.TEMPLATE_BY_BUYER[invoice.buyer.kind]


def vat_code_for(invoice: Invoice, line: InvoiceLine) -> str:
    """line.tax_code wins; then a seller without VAT gets TVAD; then the category's code."""
    if line.tax_code:
        return line.tax_code.strip().upper()
    if invoice.seller.regime in regime.NO_VAT_REGIME_CODE:
        return regime.NO_VAT_REGIME_CODE[invoice.seller.regime]
    return regime.CATEGORY_CODES[line.tax_category]


def _payment_method(invoice: Invoice) -> tuple[str | None, Problem | None]:
    option = invoice.options_for(regime.AUTHORITY).get("payment_method")
    if option is not None:
        if option in regime.PAYMENT_METHODS:
            return str(option), None
        return None, Problem(
            f"{_OPT}.payment_method",
            "enum",
            f"unknown FNE payment method {option!r}",
            expected=", ".join(regime.PAYMENT_METHODS),
        )
    methods = {p.method for p in invoice.payments}
    if not methods:
        return None, Problem(
            "payments",
            "required",
            "FNE requires a payment method: add a payment, or set the option payment_method",
            expected=", ".join(regime.PAYMENT_METHODS),
        )
    if len(methods) > 1:
        return None, Problem(
            "payments",
            "single_method",
            "FNE carries one payment method per invoice; the payments use several: "
            "set the option payment_method",
        )
    method = methods.pop()
    if method is PaymentMethod.OTHER:
        return None, Problem(
            "payments[0].method",
            "enum",
            "the payment method 'other' has no FNE equivalent",
            expected=", ".join(regime.PAYMENT_METHODS),
        )
    return regime.PAYMENT_BY_METHOD[method], None


def _invoice_custom_taxes(invoice: Invoice) -> tuple[list[tuple[str, Decimal]], list[Problem]]:
    raw = invoice.options_for(regime.AUTHORITY).get("custom_taxes") or []
    taxes: list[tuple[str, Decimal]] = []
    problems: list[Problem] = []
    if not isinstance(raw, list):
        return [], [Problem(f"{_OPT}.custom_taxes", "type", "custom_taxes must be a list of {name, rate}")]
    for i, entry in enumerate(raw):
        where = f"{_OPT}.custom_taxes[{i}]"
        name = entry.get("name") if isinstance(entry, Mapping) else None
        rate = entry.get("rate") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not name.strip():
            problems.append(Problem(f"{where}.name", "required", "a custom tax needs a name"))
        try:
            value = Decimal(str(rate)) if rate is not None and not isinstance(rate, bool) else None
        except ArithmeticError:
            value = None
        if value is None or not value.is_finite() or not 0 <= value <= 100:
            problems.append(
                Problem(f"{where}.rate", "required", "a custom tax needs a rate between 0 and 100 %")
            )
        elif _too_precise(value):
            problems.append(Problem(f"{where}.rate", "precision", _PRECISION))
        elif isinstance(name, str) and name.strip():
            taxes.append((name.strip(), value))
    return taxes, problems


def _line_ht_price(invoice: Invoice, line: InvoiceLine, code: str | None) -> Decimal:
    """FNE wants unit prices HT. A tax-inclusive price is divided by (1 + rate), kept to 4 decimals."""
    if not line.price_includes_tax or code is None:
        return line.unit_price
    rate = regime.VAT_RATES.get(code, Decimal(0))
    if rate == 0:
        return line.unit_price
    with localcontext() as ctx:
        ctx.prec = 60
        price = line.unit_price / (1 + rate / regime.HUNDRED)
    return _plain(price.quantize(Decimal(1).scaleb(-regime.PRICE_DECIMALS), rounding=ROUND_HALF_UP))


def _percent(value: Decimal) -> Decimal:
    quantum = Decimal(1).scaleb(-regime.PERCENT_DECIMALS)
    return _plain(value.quantize(quantum, rounding=ROUND_HALF_UP))


def _line_discount(line: InvoiceLine) -> Decimal:
    # An amount discount becomes its percentage of the line gross (FNE carries only percentages).
    with localcontext() as ctx:
        ctx.prec = 60
        return _percent(line.discount_percent)


def _too_precise(value: Decimal) -> bool:
    return len(value.normalize().as_tuple().digits) > _WIRE_DIGITS


_PRECISION = "more than 15 significant digits: the JSON number would not arrive as written"


# --- validation ------------------------------------------------------------------------------------
def validate(invoice: Invoice, *, point_of_sale: str | None, establishment: str | None) -> list[Problem]:
    """Every problem the FNE platform would reject this sale/purchase for (spec §5-§6), plus what
    FNE cannot express at all. Fields are neutral invoice paths."""
    problems: list[Problem] = []
    options = invoice.options_for(regime.AUTHORITY)
    is_sale = invoice.kind is InvoiceKind.SALE

    if invoice.kind is InvoiceKind.CREDIT_NOTE:
        return validate_credit_note(invoice)
    if invoice.currency != regime.CURRENCY:
        problems.append(
            Problem("currency", "currency", "FNE amounts are in XOF (whole francs)", expected="XOF")
        )
    for key in options:
        if key not in OPTION_KEYS:
            problems.append(
                Problem(
                    f"{_OPT}.{key}", "unknown_option", "unknown FNE option", expected=", ".join(OPTION_KEYS)
                )
            )

    template = template_for(invoice)
    if "template" in options and not isinstance(options["template"], str):
        template = repr(options["template"])
    if template not in regime.TEMPLATES:
        problems.append(
            Problem(
                f"{_OPT}.template",
                "enum",
                f"unknown FNE template {template!r}",
                expected="B2B, B2C, B2G, B2F",
            )
        )
    if is_sale and template == "B2B" and not invoice.buyer.tax_id:
        problems.append(
            Problem("buyer.tax_id", "required_for_b2b", "a B2B invoice needs the client's NCC (clientNcc)")
        )
    if invoice.foreign_currency is not None:
        if not is_sale:
            problems.append(
                Problem("foreign_currency", "not_on_purchase", "a purchase slip carries no foreign currency")
            )
        elif invoice.foreign_currency not in regime.FOREIGN_CURRENCIES:
            problems.append(
                Problem(
                    "foreign_currency",
                    "enum",
                    f"FNE does not accept the currency {invoice.foreign_currency}",
                    expected=", ".join(regime.FOREIGN_CURRENCIES),
                )
            )
    elif is_sale and template == "B2F":
        problems.append(
            Problem(
                "foreign_currency",
                "required_for_b2f",
                "a B2F invoice needs the foreign currency and its exchange rate "
                "(foreign_currency, exchange_rate)",
            )
        )

    is_rne = options.get("is_rne", False)
    if not isinstance(is_rne, bool):
        problems.append(Problem(f"{_OPT}.is_rne", "type", "is_rne must be true or false"))
    elif is_rne and not str(options.get("rne") or "").strip():
        problems.append(
            Problem(f"{_OPT}.rne", "required_if_rne", "is_rne is true: give the receipt number rne")
        )

    _, payment_problem = _payment_method(invoice)
    if payment_problem is not None:
        problems.append(payment_problem)

    # The platform requires a name, phone and email even for a walk-in B2C client (spec §6.1, §10.9).
    who = "supplier" if invoice.kind is InvoiceKind.PURCHASE else "client"
    for attr, wire in (("name", "clientCompanyName"), ("phone", "clientPhone"), ("email", "clientEmail")):
        if not getattr(invoice.buyer, attr):
            problems.append(Problem(f"buyer.{attr}", "required", f"FNE requires the {who}'s {attr} ({wire})"))
    if not (invoice.point_of_sale or point_of_sale):
        problems.append(Problem("point_of_sale", "required", "FNE requires a point of sale (pointOfSale)"))
    if not (invoice.establishment or establishment):
        problems.append(Problem("establishment", "required", "FNE requires an establishment"))

    _, custom_problems = _invoice_custom_taxes(invoice)
    problems += custom_problems
    if custom_problems == [] and options.get("custom_taxes") and not is_sale:
        problems.append(
            Problem(f"{_OPT}.custom_taxes", "not_on_purchase", "a purchase slip has no custom taxes")
        )

    for i, line in enumerate(invoice.lines):
        where = f"lines[{i}]"
        code: str | None = None
        if is_sale:
            code = vat_code_for(invoice, line)
            if code not in regime.VAT_RATES:
                problems.append(
                    Problem(
                        f"{where}.tax_code",
                        "enum",
                        f"each sale line needs exactly one FNE VAT code; {code!r} is not one",
                        expected="TVA, TVAB, TVAC, TVAD",
                    )
                )
        elif line.tax_code:
            problems.append(
                Problem(f"{where}.tax_code", "not_on_purchase", "purchase slip lines carry no VAT code")
            )
        for j, extra in enumerate(line.extra_taxes):
            if not is_sale:
                problems.append(
                    Problem(
                        f"{where}.extra_taxes[{j}]",
                        "not_on_purchase",
                        "purchase slip lines have no custom taxes",
                    )
                )
            elif extra.rate is None:
                problems.append(
                    Problem(
                        f"{where}.extra_taxes[{j}].rate",
                        "rate_required",
                        "FNE custom taxes are rates in %; a tax given as an amount cannot be sent",
                    )
                )
            elif _too_precise(extra.rate):
                problems.append(Problem(f"{where}.extra_taxes[{j}].rate", "precision", _PRECISION))
        if line.original_line is not None:
            problems.append(
                Problem(
                    f"{where}.original_line",
                    "credit_note_only",
                    "only credit-note lines point at an original line",
                )
            )
        price = _line_ht_price(invoice, line, code if code in regime.VAT_RATES else None)
        for name, value in (("quantity", line.quantity), ("unit_price", price)):
            if _too_precise(value):
                problems.append(Problem(f"{where}.{name}", "precision", _PRECISION))

    if is_sale and invoice.exchange_rate is not None and _too_precise(invoice.exchange_rate):
        problems.append(Problem("exchange_rate", "precision", _PRECISION))
    if invoice.discount is not None and invoice.discount.kind == "amount":
        gross = sum((ln.gross - ln.discount_amount for ln in invoice.lines), Decimal(0))
        if invoice.discount.value > gross:
            problems.append(
                Problem(
                    "discount.value", "too_large", "the invoice discount exceeds the total before discount"
                )
            )
    return problems


def validate_credit_note(credit: Invoice) -> list[Problem]:
    """What can be checked on a credit note before seeing the original's certification. The refund
    carries only item ids and quantities (spec §7): prices, taxes and payments are the original's."""
    problems: list[Problem] = []
    if credit.currency != regime.CURRENCY:
        problems.append(
            Problem("currency", "currency", "FNE amounts are in XOF (whole francs)", expected="XOF")
        )
    for i, line in enumerate(credit.lines):
        if _too_precise(line.quantity):
            problems.append(Problem(f"lines[{i}].quantity", "precision", _PRECISION))
    return problems


# --- request building --------------------------------------------------------------------------------
def _global_discount(invoice: Invoice) -> Decimal | None:
    if invoice.discount is None or invoice.discount.value == 0:
        return None
    if invoice.discount.kind == "percent":
        # Same 8-decimal cap as line percentages, so the wire carries exactly what our totals use.
        return _percent(invoice.discount.value) or None
    with localcontext() as ctx:
        ctx.prec = 60
        # The base is what the platform will apply the percentage to: the lines after their discounts.
        gross = sum((ln.gross - ln.discount_amount for ln in invoice.lines), Decimal(0))
        return _percent(invoice.discount.value * regime.HUNDRED / gross) if gross else None


def build_sign_request(invoice: Invoice, *, point_of_sale: str, establishment: str) -> SignRequest:
    """The sign body for a VALID invoice (run `validate` first)."""
    options = invoice.options_for(regime.AUTHORITY)
    is_sale = invoice.kind is InvoiceKind.SALE
    template = template_for(invoice)
    payment, _ = _payment_method(invoice)
    items: list[SignItem] = []
    for line in invoice.lines:
        code = vat_code_for(invoice, line) if is_sale else None
        discount = _line_discount(line)
        items.append(
            SignItem(
                taxes=[code] if code else None,  # codes checked by validate()
                custom_taxes=[
                    CustomTax(name=t.name, amount=t.rate) for t in line.extra_taxes if t.rate is not None
                ]
                or None,
                reference=line.reference,
                description=line.description,
                quantity=line.quantity,
                amount=_line_ht_price(invoice, line, code),
                discount=discount or None,
                measurement_unit=line.unit,
            )
        )
    invoice_taxes, _ = _invoice_custom_taxes(invoice)
    is_rne = bool(options.get("is_rne", False))
    foreign = invoice.foreign_currency if is_sale else None
    return SignRequest.model_validate(
        {
            "invoiceType": invoice.kind.value,
            "paymentMethod": payment,
            "template": template,
            "isRne": is_rne,
            "rne": str(options["rne"]) if is_rne else None,
            # The NCC goes only with B2B (spec §6.1); other templates have no such field to fill.
            "clientNcc": invoice.buyer.tax_id if is_sale and template == "B2B" else None,
            "clientCompanyName": invoice.buyer.name,
            "clientPhone": invoice.buyer.phone,
            "clientEmail": invoice.buyer.email,
            "clientSellerName": invoice.operator.name if invoice.operator else None,
            "pointOfSale": invoice.point_of_sale or point_of_sale,
            "establishment": invoice.establishment or establishment,
            "commercialMessage": invoice.commercial_message,
            "footer": invoice.footer,
            # The DOC's examples send "" and 0 when unused; we do the same on sales.
            "foreignCurrency": (foreign or "") if is_sale else None,
            "foreignCurrencyRate": (invoice.exchange_rate or Decimal(0))
            if is_sale and foreign
            else (0 if is_sale else None),
            "items": items,
            "customTaxes": [CustomTax(name=n, amount=r) for n, r in invoice_taxes] or None,
            "discount": _global_discount(invoice),
        }
    )


# --- responses -> Certification ----------------------------------------------------------------------
def _certified_at(text: str | None) -> datetime:
    if text:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return datetime.now(UTC)


def _stock_notices(
    warning: bool, balance_sticker: int | None, balance_funds: Decimal | None, threshold: int
) -> list[Notice]:
    notices: list[Notice] = []
    if warning or (balance_sticker is not None and balance_sticker < threshold):
        left = (
            f"{balance_sticker} sticker(s) left"
            if balance_sticker is not None
            else f"balance {balance_funds}"
        )
        notices.append(
            Notice(
                code="fne.low_sticker_stock",
                message=f"FNE sticker stock is low ({left}): buy stickers in « Gestion des stickers » "
                "before signing fails",
            )
        )
    return notices


def _balance(balance_sticker: int | None, balance_funds: Decimal | None) -> tuple[int | None, dict[str, Any]]:
    if balance_sticker is not None:
        return balance_sticker, {"balance_kind": "stickers"}
    if balance_funds is not None:
        # Accounts billed by provision get a franc balance instead of a sticker count (spec §8.6).
        return int(balance_funds), {"balance_kind": "funds", "balance_funds": str(balance_funds)}
    return None, {}


def certification_from_sign(
    response: SignResponse,
    request: SignRequest,
    *,
    raw: dict[str, Any],
    environment: str,
    warning_threshold: int,
) -> Certification:
    stored = response.invoice
    local = totals_of_request(request)
    vat = stored.vat_amount
    total_incl_vat = stored.amount
    # The API returns HT+VAT only; other taxes come from our own computation (same rule as the PDF).
    totals = {
        "total_excl_tax": total_incl_vat - vat,
        "total_tax": vat + local.other_taxes,
        "total": total_incl_vat + local.other_taxes,
        "vat": vat,
        "total_incl_vat": total_incl_vat,
        "other_taxes": local.other_taxes,
        "total_to_pay": total_incl_vat + local.other_taxes,
        "fiscal_stamp": stored.fiscal_stamp or Decimal(0),
    }
    notices = _stock_notices(
        response.warning, response.balance_sticker, response.balance_funds, warning_threshold
    )
    if (total_incl_vat, vat) != (local.total_incl_vat, local.vat):
        notices.append(
            Notice(
                code="fne.totals_differ",
                message=f"the platform's totals (TTC {total_incl_vat}, VAT {vat}) differ from ours "
                f"(TTC {local.total_incl_vat}, VAT {local.vat}); the platform's prevail",
            )
        )
    # The platform returns items in request order (spec §7): pair them by position with what we sent.
    if len(stored.items) != len(request.items) or any(
        got.description not in (None, sent.description)
        for sent, got in zip(request.items, stored.items, strict=False)
    ):
        notices.append(
            Notice(
                code="fne.items_mismatch",
                message="the platform's items do not match the lines sent one for one; check the item ids "
                "before any credit note",
            )
        )
    items = []
    for position, (sent, got) in enumerate(zip(request.items, stored.items, strict=False), start=1):
        items.append(
            {
                "id": got.id,
                "position": position,
                "reference": sent.reference,
                "description": sent.description,
                "quantity": str(sent.quantity),
                "amount": str(sent.amount),
                "discount": str(sent.discount or 0),
                "vat_code": sent.taxes[0] if sent.taxes else None,
                "custom_taxes": [{"name": t.name, "rate": str(t.amount)} for t in sent.custom_taxes or ()],
            }
        )
    balance, balance_data = _balance(response.balance_sticker, response.balance_funds)
    return Certification(
        authority=regime.AUTHORITY,
        environment=environment,
        kind=InvoiceKind(request.invoice_type),
        reference=response.reference,
        qr_content=response.token,
        verification_url=response.token,
        certified_at=_certified_at(stored.date),
        totals=totals,
        sticker_balance=balance,
        notices=notices,
        authority_data={
            "ncc": response.ncc,
            "invoice_id": stored.id,
            "token": stored.token,
            "item_ids": [it.id for it in stored.items],
            "items": items,
            "discount": str(request.discount or 0),
            "custom_taxes": [{"name": t.name, "rate": str(t.amount)} for t in request.custom_taxes or ()],
            "template": request.template,
            "invoice_type": request.invoice_type,
            **balance_data,
        },
        raw={"sign": raw},
    )


# --- credit notes (refund) -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RefundPlan:
    request: RefundRequest
    totals: FneTotals
    matched: list[dict[str, Any]]  # per credit line: the original item it refunds


class _StoredRate(BaseModel):
    name: str
    rate: Decimal


class _StoredItem(BaseModel):
    """One item as certification_from_sign stores it: what a refund needs from the original."""

    id: str = Field(min_length=1)
    position: int = Field(ge=1)
    reference: str | None = None
    description: str | None = None
    quantity: Decimal = Field(gt=0)
    amount: Decimal = Field(ge=0)
    discount: Decimal = Field(default=Decimal(0), ge=0, le=100)
    vat_code: str | None = None
    custom_taxes: list[_StoredRate] = Field(default_factory=list)


class _StoredOriginal(BaseModel):
    invoice_id: str = Field(min_length=1)
    items: list[_StoredItem] = Field(min_length=1)
    discount: Decimal = Field(default=Decimal(0), ge=0, le=100)
    custom_taxes: list[_StoredRate] = Field(default_factory=list)


def _original_items(original: Certification) -> list[dict[str, Any]] | None:
    """The original's stored items, or None when they are missing or do not read back (a certification
    JSON edited by hand, or not from a sign): better a Problem than a crash or a wrong refund."""
    try:
        _StoredOriginal.model_validate(original.authority_data)
    except ValidationError:
        return None
    return [dict(it) for it in original.authority_data["items"]]


def plan_refund(credit: Invoice, original: Certification) -> tuple[RefundPlan | None, list[Problem]]:
    """Map each credit-note line to an original item: `original_line` (1-based position) first, then
    a unique `reference`, then a unique description. Ambiguity or excess is a Problem."""
    problems: list[Problem] = []
    if credit.kind is not InvoiceKind.CREDIT_NOTE:
        problems.append(Problem("kind", "credit_note", "credit_note() takes an invoice of kind credit_note"))
    if original.authority != regime.AUTHORITY:
        problems.append(
            Problem("original", "authority", f"the original was certified by {original.authority}, not FNE")
        )
    items = _original_items(original) or []
    if not items:
        problems.append(
            Problem(
                "original",
                "refundable",
                "the original certification has no readable FNE invoice id and items "
                "(only a sign result, stored as certify returned it, can be refunded)",
            )
        )
    if (
        credit.original is not None
        and credit.original.reference
        and credit.original.reference != original.reference
    ):
        problems.append(
            Problem(
                "original.reference",
                "mismatch",
                f"the credit note names {credit.original.reference} "
                f"but the certification given is {original.reference}",
            )
        )
    if credit.currency != regime.CURRENCY:
        problems.append(Problem("currency", "currency", "FNE amounts are in XOF", expected="XOF"))
    if problems:
        return None, problems

    refund_items: list[RefundItem] = []
    matched: list[dict[str, Any]] = []
    used: dict[str, int] = {}
    for i, line in enumerate(credit.lines):
        where = f"lines[{i}]"
        candidates: list[dict[str, Any]]
        if line.original_line is not None:
            candidates = [it for it in items if it.get("position") == line.original_line]
            if not candidates:
                problems.append(
                    Problem(
                        f"{where}.original_line",
                        "not_found",
                        f"the original has no line {line.original_line}",
                    )
                )
                continue
        else:
            by_ref = [it for it in items if line.reference and it.get("reference") == line.reference]
            candidates = by_ref or [it for it in items if it.get("description") == line.description]
            if len(candidates) != 1:
                what = "matches several original lines" if candidates else "matches no original line"
                problems.append(
                    Problem(
                        f"{where}.original_line",
                        "ambiguous" if candidates else "not_found",
                        f"this line {what} by reference or description: give original_line (1-based)",
                    )
                )
                continue
        item = candidates[0]
        if item["id"] in used:
            problems.append(
                Problem(
                    f"{where}.original_line",
                    "duplicate",
                    f"line {used[item['id']] + 1} already refunds this original line",
                )
            )
            continue
        used[item["id"]] = i
        if line.quantity > Decimal(item["quantity"]):
            problems.append(
                Problem(
                    f"{where}.quantity",
                    "exceeds_original",
                    f"cannot refund {line.quantity}: the original line sold {item['quantity']}",
                )
            )
            continue
        refund_items.append(RefundItem(id=item["id"], quantity=line.quantity))
        matched.append({**item, "refund_quantity": str(line.quantity)})
    if problems:
        return None, problems
    # The refund carries no amounts: the platform re-prices from the original's items.
    lines = [
        TotalsLine(
            quantity=Decimal(m["refund_quantity"]),
            unit_price=Decimal(m["amount"]),
            discount=Decimal(m["discount"]),
            vat_code=m["vat_code"],
            custom_taxes=tuple((t["name"], Decimal(t["rate"])) for t in m["custom_taxes"]),
        )
        for m in matched
    ]
    totals = compute_totals(
        lines,
        Decimal(str(original.authority_data.get("discount", "0"))),
        [(t["name"], Decimal(t["rate"])) for t in original.authority_data.get("custom_taxes", [])],
    )
    return RefundPlan(RefundRequest(items=refund_items), totals, matched), []


def certification_from_refund(
    response: RefundResponse,
    plan: RefundPlan,
    original: Certification,
    *,
    raw: dict[str, Any],
    environment: str,
    warning_threshold: int,
) -> Certification:
    notices = _stock_notices(
        response.warning, response.balance_sticker, response.balance_funds, warning_threshold
    )
    notices.append(
        Notice(
            code="fne.refund_without_amounts",
            message="the FNE refund answer has no invoice object: totals are computed locally from the "
            "original's items, and the credit note's own FNE id is unknown",
            severity="info",
        )
    )
    balance, balance_data = _balance(response.balance_sticker, response.balance_funds)
    return Certification(
        authority=regime.AUTHORITY,
        environment=environment,
        kind=InvoiceKind.CREDIT_NOTE,
        reference=response.reference,
        qr_content=response.token,
        verification_url=response.token,
        certified_at=datetime.now(UTC),
        totals=plan.totals.as_dict(),
        sticker_balance=balance,
        notices=notices,
        authority_data={
            "ncc": response.ncc,
            "original_invoice_id": original.authority_data["invoice_id"],
            "original_reference": original.reference,
            "refunded_items": [{"id": it.id, "quantity": str(it.quantity)} for it in plan.request.items],
            **balance_data,
        },
        raw={"refund": raw},
    )
