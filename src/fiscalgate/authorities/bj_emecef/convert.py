"""Pure conversions: neutral Invoice (+ settings) -> InvoiceRequestDataDto, the local validation that
mirrors the e-MCF, the comparison of its totals with ours, and the answer -> Certification.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fiscalgate.authorities.bj_emecef.regime import (
    AUTHORITY,
    BENIN_TZ,
    CODE_RE,
    CREDITED_TYPE,
    GROUP_RATES,
    IFU_RE,
    TOTAL_FIELDS,
    Aib,
    InvoiceType,
    PaymentType,
    TaxGroup,
    dash_code,
    parse_counters,
    parse_local_datetime,
    round_franc,
    undash_code,
)
from fiscalgate.authorities.bj_emecef.schemas import (
    ClientDto,
    InvoiceRequestDataDto,
    InvoiceResponseDataDto,
    ItemDto,
    OperatorDto,
    PaymentDto,
    SecurityElementsDto,
)
from fiscalgate.authorities.bj_emecef.settings import EmecefSettings
from fiscalgate.authorities.bj_emecef.totals import EngineLine, compute_totals, neutral_totals
from fiscalgate.core.certification import Certification, Notice
from fiscalgate.core.errors import Problem
from fiscalgate.core.invoice import (
    BuyerKind,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    PaymentMethod,
    SellerRegime,
    TaxCategory,
)

# TaxCategory's documented map; `reduced` has no Bénin equivalent (there is no reduced VAT rate).
CATEGORY_GROUPS: dict[TaxCategory, TaxGroup | None] = {
    TaxCategory.STANDARD: TaxGroup.B,
    TaxCategory.EXEMPT: TaxGroup.A,
    TaxCategory.EXEMPT_LEGAL: TaxGroup.A,
    TaxCategory.EXPORT: TaxGroup.C,
    TaxCategory.SPECIAL: TaxGroup.D,
    TaxCategory.REDUCED: None,
}

PAYMENT_TYPES: dict[PaymentMethod, PaymentType] = {
    PaymentMethod.CASH: PaymentType.ESPECES,
    PaymentMethod.TRANSFER: PaymentType.VIREMENT,
    PaymentMethod.CARD: PaymentType.CARTEBANCAIRE,
    PaymentMethod.MOBILE_MONEY: PaymentType.MOBILEMONEY,
    PaymentMethod.CHECK: PaymentType.CHEQUES,
    PaymentMethod.DEFERRED: PaymentType.CREDIT,
    PaymentMethod.OTHER: PaymentType.AUTRE,
}


# Quantities go on the wire as JSON numbers (a float once serialised): 15 significant digits is what
# a double carries exactly, so the e-MCF computes on the very quantity our engine used.
MAX_QUANTITY_DIGITS = 15


@dataclass
class _Collector:
    problems: list[Problem]

    def add(self, field: str, rule: str, message: str, expected: str | None = None) -> None:
        self.problems.append(Problem(field, rule, message, expected))


def _whole(amount: Decimal) -> bool:
    return amount == amount.to_integral_value()


def _money_text(amount: Decimal) -> str:
    return f"{amount.normalize():f}"


def line_group(line: InvoiceLine, invoice: Invoice, index: int, out: _Collector) -> TaxGroup | None:
    """The tax group of a line: `tax_code` (A–F) overrides; a TPS seller puts every line in E;
    otherwise the category decides."""
    if line.tax_code is not None:
        code = line.tax_code.strip().upper()
        if code not in TaxGroup.__members__:
            out.add(
                f"lines[{index}].tax_code",
                "emecef.tax_group",
                f"{line.tax_code!r} is not an e-MECeF tax group",
                "one of A, B, C, D, E, F",
            )
            return None
        return TaxGroup(code)
    if invoice.seller.regime is SellerRegime.TPS:
        return TaxGroup.E
    group = CATEGORY_GROUPS[line.tax_category]
    if group is None:
        out.add(
            f"lines[{index}].tax_category",
            "emecef.no_reduced_rate",
            "Bénin has no reduced VAT rate: use standard (B, 18 %), exempt (A) or a tax_code",
        )
    return group


def _ttc(amount: Decimal, includes_tax: bool, group: TaxGroup) -> Decimal:
    return amount if includes_tax else amount * (100 + GROUP_RATES[group]) / 100


def _invoice_type(invoice: Invoice, original: Certification | None, out: _Collector) -> InvoiceType | None:
    options = invoice.options_for(AUTHORITY)
    if invoice.kind is InvoiceKind.PURCHASE:
        out.add(
            "kind", "emecef.no_purchase", "e-MECeF certifies sales and credit notes only (FV, EV, FA, EA)"
        )
        return None
    credit = invoice.kind is InvoiceKind.CREDIT_NOTE
    wanted = options.get("type")
    if wanted is not None:
        text = str(wanted).strip().upper()
        if text not in InvoiceType.__members__:
            out.add(
                f"authority_options.{AUTHORITY}.type",
                "emecef.invoice_type",
                f"unknown type {wanted!r}",
                "FV, EV, FA or EA",
            )
            return None
        chosen = InvoiceType(text)
        if (chosen in CREDITED_TYPE) != credit:
            out.add(
                f"authority_options.{AUTHORITY}.type",
                "emecef.invoice_type",
                f"type {chosen} does not match a {invoice.kind.value} invoice",
                "FA or EA for a credit note, FV or EV for a sale",
            )
            return None
        return chosen
    if credit:
        original_type = original.authority_data.get("type") if original is not None else None
        if original_type == InvoiceType.EV:
            return InvoiceType.EA
        if original_type == InvoiceType.FV:
            return InvoiceType.FA
        return InvoiceType.EA if invoice.buyer.kind is BuyerKind.FOREIGN else InvoiceType.FA
    return InvoiceType.EV if invoice.buyer.kind is BuyerKind.FOREIGN else InvoiceType.FV


def _aib(invoice: Invoice, settings: EmecefSettings, out: _Collector) -> Aib | None:
    options = invoice.options_for(AUTHORITY)
    value = options.get("aib", settings.default_aib)
    if value is None or value == "":
        return None
    text = str(value).strip().upper()
    if text not in Aib.__members__:
        out.add(
            f"authority_options.{AUTHORITY}.aib",
            "emecef.aib",
            f"unknown AIB {value!r}",
            "A (1 %), B (5 %) or null",
        )
        return None
    return Aib(text)


def original_reference(invoice: Invoice, original: Certification | None) -> str | None:
    """The original's code MECeF/DGI without dashes: from its Certification, else from the invoice."""
    if original is not None:
        return undash_code(str(original.authority_data.get("code") or original.reference))
    if invoice.original is not None and invoice.original.reference:
        return undash_code(invoice.original.reference)
    return None


def net_unit_ttc(line: InvoiceLine, group: TaxGroup, percent_off: Decimal) -> Decimal:
    """The line's unit price after its discount and the invoice's percent discount, tax included,
    unrounded (what the invoice itself says the article costs)."""
    net = line.gross - line.discount_amount
    net = net - net * percent_off / 100
    return _ttc(net / line.quantity, line.price_includes_tax, group)


def _invoice_percent_off(invoice: Invoice) -> Decimal:
    discount = invoice.discount
    return discount.value if discount is not None and discount.kind == "percent" else Decimal(0)


def rounding_notice(invoice: Invoice, request: InvoiceRequestDataDto) -> Notice | None:
    """A warning when whole-franc unit prices make the certified total differ from the invoice's own
    (the API takes integer TTC unit prices, §6.2; the e-MCF's amounts prevail on the printed invoice,
    §12). None when they agree or when the request does not come line for line from the invoice."""
    if len(request.items) != len(invoice.lines):
        return None
    percent_off = _invoice_percent_off(invoice)
    exact = [
        EngineLine(
            net_unit_ttc(line, item.tax_group, percent_off),
            item.quantity,
            item.tax_group,
            Decimal(item.tax_specific or 0),
        )
        for line, item in zip(invoice.lines, request.items, strict=True)
    ]
    own = compute_totals(exact, request.aib)["total"]
    certified = expected_totals(request)["total"]
    if own == certified:
        return None
    return Notice(
        code="emecef.unit_prices_rounded",
        message=(
            f"e-MECeF takes whole-franc unit prices: the certified total is {certified} F where the "
            f"invoice's own prices give {own} F; print the certified amounts (they prevail)"
        ),
        severity="warning",
    )


# The DGI issues tokens by hand (no refresh endpoint, §11) and every call fails with 401 once one has
# expired: a month's warning leaves time to ask for the next one. Our choice; the spec says nothing.
TOKEN_WARNING = timedelta(days=30)


def token_notice(expires_at: datetime, now: datetime) -> Notice | None:
    """A warning on every certification made with a token that expires within TOKEN_WARNING."""
    if expires_at - now > TOKEN_WARNING:
        return None
    return Notice(
        code="emecef.token_expires_soon",
        message=(
            f"the e-MCF token expires on {expires_at.astimezone(BENIN_TZ):%d/%m/%Y %H:%M} (Bénin time): "
            "ask the DGI for a new one before then, every call will be refused after it"
        ),
        severity="warning",
    )


def _line_item(
    line: InvoiceLine, group: TaxGroup, percent_off: Decimal, index: int, out: _Collector
) -> ItemDto | None:
    """One item. The API wants a whole-franc TTC unit price: a price given HT is grossed up with the
    group's rate; discounts (line, then invoice %) go into the price, the undiscounted price in
    `originalPrice` and the discount in words in `priceModification`; the unit price is then
    rounded half-up to the franc (the e-MCF recomputes everything from it)."""
    where = f"lines[{index}]"
    gross_unit_ttc = _ttc(line.unit_price, line.price_includes_tax, group)
    price = round_franc(net_unit_ttc(line, group, percent_off))
    tax_specific = Decimal(0)
    ok = True
    for j, extra in enumerate(line.extra_taxes):
        if extra.amount is None:
            out.add(
                f"{where}.extra_taxes[{j}].rate",
                "emecef.specific_tax_amount",
                "e-MECeF's specific tax (taxSpecific) is an amount for the whole line; a rate cannot be sent",
                "an amount in francs",
            )
            ok = False
        elif not _whole(extra.amount):
            out.add(
                f"{where}.extra_taxes[{j}].amount", "emecef.whole_francs", "amounts are whole francs (XOF)"
            )
            ok = False
        else:
            tax_specific += extra.amount
    if len(line.quantity.normalize().as_tuple().digits) > MAX_QUANTITY_DIGITS:
        out.add(
            f"{where}.quantity",
            "emecef.quantity_precision",
            f"the quantity {line.quantity} has more than {MAX_QUANTITY_DIGITS} significant digits: it "
            "travels as a JSON number and the e-MCF would compute on a rounded value",
            f"at most {MAX_QUANTITY_DIGITS} significant digits",
        )
        ok = False
    if _ttc(line.unit_price, line.price_includes_tax, group) > 0 and price == 0:
        out.add(f"{where}.unit_price", "emecef.price_rounds_to_zero", "the unit price rounds to 0 franc")
        ok = False
    if not ok:
        return None
    modified = price != round_franc(gross_unit_ttc)
    words = []
    if line.discount is not None and line.discount.value > 0:
        if line.discount.kind == "percent":
            words.append(f"Remise {_money_text(line.discount.value)}%")
        else:
            words.append(f"Remise {_money_text(line.discount.value)}")
    if percent_off > 0:
        words.append(f"Remise globale {_money_text(percent_off)}%")
    return ItemDto(
        code=line.reference,
        name=line.description,
        price=int(price),
        quantity=line.quantity,
        tax_group=group,
        tax_specific=int(tax_specific) if tax_specific else None,
        original_price=int(round_franc(gross_unit_ttc)) if modified or words else None,
        price_modification=" + ".join(words) if words else None,
    )


def _client(invoice: Invoice, out: _Collector) -> ClientDto | None:
    buyer = invoice.buyer
    if buyer.tax_id is not None and buyer.kind is not BuyerKind.FOREIGN and not IFU_RE.match(buyer.tax_id):
        out.add("buyer.tax_id", "emecef.ifu", "a Béninese client's IFU has 13 digits", "13 digits")
        return None
    ifu = buyer.tax_id if buyer.tax_id is not None and IFU_RE.match(buyer.tax_id) else None
    contact = " / ".join(x for x in (buyer.phone, buyer.email) if x) or None
    if not any((ifu, buyer.name, contact, buyer.address)):
        return None
    return ClientDto(ifu=ifu, name=buyer.name, contact=contact, address=buyer.address)


def _payments(invoice: Invoice, total: Decimal, out: _Collector) -> list[PaymentDto]:
    """Payments by type. A payment without an amount takes the whole total (only when alone); no
    payment at all is sent as ESPECES for the total, which is what the API assumes anyway (DOC p.9)."""
    if not invoice.payments:
        return [PaymentDto(name=PaymentType.ESPECES, amount=int(total))]
    several = len(invoice.payments) > 1
    result = []
    for i, payment in enumerate(invoice.payments):
        if payment.amount is None and several:
            out.add(
                f"payments[{i}].amount",
                "emecef.payment_amount",
                "give an amount for each of several payments",
            )
            continue
        amount = total if payment.amount is None else payment.amount
        if not _whole(amount):
            out.add(f"payments[{i}].amount", "emecef.whole_francs", "amounts are whole francs (XOF)")
            continue
        result.append(PaymentDto(name=PAYMENT_TYPES[payment.method], amount=int(amount)))
    return result


def build_request(
    invoice: Invoice,
    settings: EmecefSettings,
    original: Certification | None = None,
    *,
    require_reference: bool = True,
) -> tuple[InvoiceRequestDataDto | None, list[Problem]]:
    """The request for `invoice`, or None with every problem found (the local mirror of the
    platform's checks, reported per neutral field). `require_reference=False` is for validating a
    credit note before its original's Certification is at hand (it supplies the reference later)."""
    out = _Collector([])
    if invoice.currency != "XOF":
        out.add("currency", "emecef.currency", "e-MECeF amounts are in XOF (FCFA)", "XOF")
    if invoice.seller.tax_id is not None and invoice.seller.tax_id != settings.ifu:
        out.add(
            "seller.tax_id",
            "emecef.seller_ifu",
            f"the seller's IFU differs from the e-MCF's taxpayer {settings.ifu}",
            settings.ifu,
        )
    invoice_type = _invoice_type(invoice, original, out)
    aib = _aib(invoice, settings, out)
    percent_off = _invoice_percent_off(invoice)
    discount = invoice.discount
    if discount is not None and discount.value > 0 and discount.kind != "percent":
        out.add(
            "discount",
            "emecef.invoice_discount_amount",
            "e-MECeF has no invoice discount: give it as a percentage (spread over the lines) "
            "or as line discounts",
        )
    items: list[ItemDto] = []
    for i, line in enumerate(invoice.lines):
        group = line_group(line, invoice, i, out)
        if group is None:
            continue
        item = _line_item(line, group, percent_off, i, out)
        if item is not None:
            items.append(item)
    operator_name = invoice.operator.name if invoice.operator else settings.operator_name
    if not operator_name:
        out.add(
            "operator",
            "emecef.operator",
            "e-MECeF requires the operator (cashier) name",
            "operator.name or settings operator_name",
        )
    reference = None
    if invoice_type in CREDITED_TYPE:
        reference = original_reference(invoice, original)
        if reference is None and require_reference:
            out.add(
                "original.reference",
                "emecef.original_missing",
                "a credit note needs the original's code MECeF/DGI",
            )
        elif reference is not None and not CODE_RE.match(reference):
            out.add(
                "original.reference",
                "emecef.original_code",
                f"{reference!r} is not a code MECeF/DGI (24 base32 characters, dashes aside)",
                "e.g. TEST-WZK2-KC5G-C5YW-HB23-KB7G",
            )
        if original is not None:
            given = invoice.original.reference if invoice.original else None
            if given and reference is not None and undash_code(given) != reference:
                out.add(
                    "original.reference",
                    "emecef.original_conflict",
                    f"the invoice names original {given}, "
                    f"but the original certification is {original.reference}",
                    original.reference,
                )
            if original.authority != AUTHORITY:
                out.add(
                    "original",
                    "emecef.original_authority",
                    f"the original was certified by {original.authority}",
                )
            elif original.environment != settings.environment.value:
                # Each platform knows only its own codes (error 11 otherwise).
                out.add(
                    "original",
                    "emecef.original_environment",
                    f"the original was certified in {original.environment}, this credit note goes to "
                    f"{settings.environment.value}",
                    settings.environment.value,
                )
            wanted = CREDITED_TYPE[invoice_type]
            original_type = original.authority_data.get("type")
            if original_type is not None and original_type != wanted:
                out.add(
                    "original",
                    "emecef.original_type",
                    f"a {invoice_type} credits an {wanted}, not an {original_type}",
                )
    client = _client(invoice, out)
    lines_ok = len(items) == len(invoice.lines)
    totals = compute_totals(engine_lines(items), aib)
    if (
        lines_ok
        and original is not None
        and "total" in original.totals
        and totals["total"] > original.totals["total"]
    ):
        out.add(
            "lines",
            "emecef.credit_exceeds_original",
            f"the credit note's total {totals['total']} exceeds the original's {original.totals['total']}",
        )
    # Checked even when other parts failed, so that every problem is reported at once.
    payments = _payments(invoice, totals["total"], out)
    if out.problems or invoice_type is None:
        return None, out.problems
    assert operator_name is not None
    request = InvoiceRequestDataDto(
        ifu=settings.ifu,
        aib=aib,
        type=invoice_type,
        items=items,
        client=client,
        operator=OperatorDto(
            id=(invoice.operator.id if invoice.operator and invoice.operator.id else ""), name=operator_name
        ),
        payment=payments,
        reference=reference,
    )
    return request, []


def engine_lines(items: list[ItemDto]) -> list[EngineLine]:
    return [
        EngineLine(Decimal(item.price), item.quantity, item.tax_group, Decimal(item.tax_specific or 0))
        for item in items
    ]


def expected_totals(request: InvoiceRequestDataDto) -> dict[str, Decimal]:
    """What the e-MCF must answer for this request, by our own computation (totals.compute_totals)."""
    return compute_totals(engine_lines(request.items), request.aib)


def totals_mismatches(expected: Mapping[str, Decimal], response: InvoiceResponseDataDto) -> list[Problem]:
    """Every total the e-MCF returned that differs from ours, with both values (spec §5.2: the SFE
    must compare before confirming)."""
    got = response.totals()
    return [
        Problem(
            f"totals.{name}",
            "emecef.totals_mismatch",
            f"e-MCF says {name}={got[name]}, fiscalgate computed {expected[name]}",
            expected=str(expected[name]),
        )
        for name in TOTAL_FIELDS
        if got[name] != expected[name]
    ]


def to_certification(
    *,
    request: InvoiceRequestDataDto,
    totals: Mapping[str, Decimal],
    uid: str,
    security: SecurityElementsDto,
    environment: str,
    credit: bool,
    raw: dict[str, Any],
    totals_source: str = "e-mcf",
) -> Certification:
    """The neutral result of a confirmed invoice; the e-MCF's totals prevail on the printed invoice.
    `totals_source` is "local" when the e-MCF's answer to the POST was lost (reconciliation without
    a checkpoint): the totals are then ours, computed from the very payload the e-MCF holds."""
    code = undash_code(security.code_mecef_dgi or "")
    nim = security.nim or ""
    parsed = parse_counters(security.counters or "")
    data: dict[str, Any] = {
        "uid": uid,
        "nim": nim,
        "code": code,
        "type": request.type.value,
        "ifu": request.ifu,
        "aib": request.aib.value if request.aib else None,
        "date_time": security.date_time,
        "totals_source": totals_source,
    }
    if parsed is not None:
        data["counter_type"], data["counter_total"] = parsed[0], parsed[1]
        data["invoice_number"] = f"{nim}-{parsed[1]}"
    if request.reference:
        data["original_code"] = request.reference
    all_totals = {**{k: Decimal(v) for k, v in totals.items()}, **neutral_totals(totals)}
    return Certification(
        authority=AUTHORITY,
        environment=environment,
        kind=InvoiceKind.CREDIT_NOTE if credit else InvoiceKind.SALE,
        reference=dash_code(code),
        qr_content=security.qr_code or "",
        certified_at=parse_local_datetime(security.date_time or ""),
        totals=all_totals,
        counters=security.counters,
        authority_data=data,
        raw=raw,
    )


def _number(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except ArithmeticError:
        return None


def _present(value: Any) -> Any:
    """A JSON value without its null or empty members, so that an echo's explicit nulls compare
    equal to the members we left out."""
    if isinstance(value, Mapping):
        kept = {k: _present(v) for k, v in value.items() if v not in (None, "")}
        return {k: v for k, v in kept.items() if v not in (None, {}, [])} or None
    if isinstance(value, list):
        return [_present(v) for v in value] or None
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return _number(value)
    return value


def details_match(request: InvoiceRequestDataDto, details: Mapping[str, Any]) -> bool:
    """Whether a pending request's echo (GET /api/invoice/{uid}) is this invoice's payload: same
    seller, type, AIB, reference, items (name, price, quantity, group, specific tax), and the same
    operator, client and payments. Several tills may share one e-MCF and sell the same article at
    the same moment: the parties narrow the match so that reconcile never confirms another till's
    request as ours."""
    if details.get("ifu") != request.ifu or details.get("type") != request.type.value:
        return False
    if (details.get("aib") or None) != (request.aib.value if request.aib else None):
        return False
    if (details.get("reference") or None) != request.reference:
        return False
    sent = request.wire()
    for part in ("operator", "client", "payment"):
        if _present(details.get(part)) != _present(sent.get(part)):
            return False
    items = details.get("items") or []
    if len(items) != len(request.items):
        return False
    for theirs, ours in zip(items, request.items, strict=True):
        if (
            theirs.get("name") != ours.name
            or _number(theirs.get("price")) != ours.price
            or _number(theirs.get("quantity")) != ours.quantity
            or theirs.get("taxGroup") != ours.tax_group.value
            or (_number(theirs.get("taxSpecific")) or 0) != (ours.tax_specific or 0)
        ):
            return False
    return True
