"""Pure conversions: neutral Invoice (+ settings) -> SFEC payload; SFEC answers -> Certification;
and the local validation that mirrors the platform (every problem, with neutral field paths)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from fiscalgate.authorities.cg_sfec import regime
from fiscalgate.authorities.cg_sfec.schemas import (
    CertificationResponse,
    CertifyRequest,
    InvoiceRecord,
)
from fiscalgate.authorities.cg_sfec.settings import SfecSettings
from fiscalgate.authorities.cg_sfec.totals import (
    LineInput,
    Totals,
    build_totals,
    check_totals,
    push_down_discount,
)
from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import Problem
from fiscalgate.core.invoice import (
    BuyerKind,
    Invoice,
    InvoiceKind,
    SellerRegime,
    problems_from_validation_error,
)
from fiscalgate.core.money import round_to

AUTHORITY = regime.AUTHORITY
# A walk-in customer has no name, yet the seed marks `recipient_name` required.
ANONYMOUS_RECIPIENT = "Client particulier"
# Unit prices given tax included are turned into HT with this many decimals (spec: unit_price HT).
UNIT_PRICE_DECIMALS = 2


def options(invoice: Invoice) -> dict[str, Any]:
    return invoice.options_for(AUTHORITY)


def invoice_id(invoice: Invoice) -> str:
    """The idempotency key: `authority_options['cg-sfec'].invoice_id`, else the ERP number."""
    return str(options(invoice).get("invoice_id") or invoice.number)


def paid_amount(invoice: Invoice) -> Decimal:
    """Amounts already paid (deposits, advances, cash received), for `amount_due` (spec §5.14)."""
    return sum((p.amount for p in invoice.payments if p.amount is not None), Decimal(0))


def _line_inputs(invoice: Invoice) -> tuple[list[LineInput], list[Problem]]:
    problems: list[Problem] = []
    inputs: list[LineInput] = []
    without_vat = invoice.seller.regime is SellerRegime.TPS
    for i, line in enumerate(invoice.lines):
        rate = regime.rate_for(line.tax_category, line.tax_code, seller_without_vat=without_vat)
        if rate is None:
            problems.append(
                Problem(
                    f"lines[{i}].tax_code",
                    "tax_code",
                    f"{line.tax_code!r} is not an SFEC VAT rate; use 18, 5 or 0 (or T, R, E)",
                    expected="18 | 5 | 0",
                )
            )
            rate = regime.RATE_EXEMPT
        if line.extra_taxes:
            problems.append(
                Problem(
                    f"lines[{i}].extra_taxes",
                    "extra_taxes",
                    "SFEC carries VAT only (plus centimes additionnels); other taxes cannot be declared",
                )
            )
        price = line.unit_price
        if line.price_includes_tax:
            price = round_to(price * 100 / (100 + regime.RATES[rate]), UNIT_PRICE_DECIMALS)
        if line.discount is None:
            inputs.append(LineInput(price, line.quantity, rate))
        elif line.discount.kind == "percent":
            inputs.append(LineInput(price, line.quantity, rate, "percentage", line.discount.value))
        else:
            inputs.append(LineInput(price, line.quantity, rate, "fixed", line.discount.value))
    return inputs, problems


def compute_totals(invoice: Invoice, settings: SfecSettings) -> Totals:
    inputs, _ = _line_inputs(invoice)
    currency = invoice.currency
    if invoice.discount is not None:
        # Spec §5.13: push the invoice-level discount into the lines, send discount_amount = 0.
        base = build_totals(inputs, currency).subtotal
        amount = invoice.discount.value
        if invoice.discount.kind == "percent":
            amount = regime.round_amount(base * amount / 100, currency)
        inputs = push_down_discount(inputs, amount, currency)
    return build_totals(
        inputs, currency, paid=paid_amount(invoice), additional_cent_tax=settings.additional_cent_tax
    )


def _payment_method(invoice: Invoice) -> str | None:
    override = options(invoice).get("payment_method")
    if override is not None:
        text = str(override).strip()
        return regime.PAYMENT_NUMERIC.get(text, text)
    if not invoice.payments:
        return None
    return regime.PAYMENT_FROM_NEUTRAL.get(invoice.payments[0].method)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_payload(
    invoice: Invoice, settings: SfecSettings, *, reference_invoice_id: str | None = None
) -> dict[str, Any]:
    """The online-certification request, as JSON-ready data. Totals come from `compute_totals`."""
    totals = compute_totals(invoice, settings)
    buyer = invoice.buyer
    payment = invoice.payments[0] if invoice.payments else None
    lines = []
    for line, amounts in zip(invoice.lines, totals.lines, strict=True):
        lines.append(
            {
                "designation": line.description,
                "classification_code": options(invoice).get("classification_codes", {}).get(line.reference)
                if line.reference
                else None,
                "type": line.kind.value,
                "unit_price": amounts.unit_price,
                "quantity": amounts.quantity,
                "subtotal": amounts.subtotal,
                "discount_amount": amounts.discount_value,
                "discount_type": amounts.discount_type,
                "net_amount": amounts.net,
                "tax_rate": amounts.rate,
                "tax_amount": amounts.tax,
                "total_amount": amounts.total,
            }
        )
    reference = reference_invoice_id
    if reference is None and invoice.original is not None:
        reference = invoice.original.number or invoice.original.reference
    payload: dict[str, Any] = {
        "taxpayer_niu": settings.niu,
        "invoice_id": invoice_id(invoice),
        "invoice_type": regime.INVOICE_TYPES.get(invoice.kind, invoice.kind.value),
        "invoice_subject": invoice.subject,
        "invoice_due_date": f"{invoice.due_date.isoformat()}T00:00:00Z" if invoice.due_date else None,
        "invoice_status": "pending",  # what certifying clients send (spec §3)
        "reference_invoice_id": reference if invoice.kind is InvoiceKind.CREDIT_NOTE else None,
        "sciet": str(options(invoice).get("sciet") or invoice.establishment or settings.sciet),
        "terminal_identifier": invoice.point_of_sale or settings.terminal_identifier,
        "recipient_type": regime.RECIPIENT_KIND[buyer.kind],
        # only a walk-in individual gets the placeholder; other recipients must be named
        "recipient_name": buyer.name or (ANONYMOUS_RECIPIENT if buyer.kind is BuyerKind.INDIVIDUAL else None),
        "recipient_niu": buyer.tax_id,
        "recipient_rccm": buyer.rccm,
        "recipient_address": buyer.address,
        "recipient_phone": buyer.phone,
        "recipient_email": buyer.email,
        "is_recipient_taxable": buyer.is_taxable
        if buyer.is_taxable is not None
        else buyer.kind is BuyerKind.BUSINESS,
        **totals.header(),
        "currency": invoice.currency,
        "payment_method": _payment_method(invoice),
        "payment_reference": payment.reference if payment else None,
        "payment_date": _iso(payment.date) if payment and payment.date else None,
        "notes": invoice.notes,
        "items": lines,
    }
    return to_wire(payload)


def report_payload(
    invoice: Invoice,
    settings: SfecSettings,
    certification: Certification,
    *,
    reference_invoice_id: str | None = None,
) -> dict[str, Any]:
    """The report request (the online-report page): the invoice as certified plus its certification fields."""
    payload = build_payload(invoice, settings, reference_invoice_id=reference_invoice_id)
    data = certification.authority_data
    qr = certification.qr_image or certification.qr_content
    payload.update(
        invoice_id=str(data.get("invoice_id") or payload["invoice_id"]),
        invoice_status="certified",
        certification_date=_iso(certification.certified_at),
        certification_status="certified",
        # never a stand-in (the certification number is no signature): a certification without
        # one is refused by the local check of the report request, before anything is sent
        certification_signature=data.get("signature"),
        certification_short_signature=data.get("short_signature"),
        # "Code QR au format base64" (seed): the base64 of the image, without the data-URI prefix
        certification_qr_code=qr.split(",", 1)[1] if qr.startswith("data:") and "," in qr else qr,
    )
    return payload


def to_wire(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Decimals -> JSON numbers, keeping the field order; invalid payloads are rendered as is."""
    try:
        return CertifyRequest.model_validate(payload).model_dump(
            mode="python", by_alias=True, exclude_unset=True
        )
    except ValidationError:
        return dict(_plain(payload))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        number = value.normalize()
        return int(number) if number == number.to_integral_value() else float(number)
    return value


# --- local validation -----------------------------------------------------------------------------
# wire field -> neutral invoice field, for problems found on the payload
_NEUTRAL_FIELD = {
    "recipient_name": "buyer.name",
    "recipient_niu": "buyer.tax_id",
    "recipient_rccm": "buyer.rccm",
    "recipient_address": "buyer.address",
    "recipient_phone": "buyer.phone",
    "recipient_email": "buyer.email",
    "currency": "currency",
    "payment_method": "payments[0].method",
    "reference_invoice_id": "original",
    "invoice_type": "kind",
    "taxpayer_niu": "seller.tax_id",
    "invoice_id": "number",
}


def neutral_field(wire: str) -> str:
    if wire.startswith("items["):
        return "lines[" + wire.removeprefix("items[")
    return _NEUTRAL_FIELD.get(wire, wire)


def recipient_problems(payload: Mapping[str, Any]) -> list[Problem]:
    """Recipient rules by type (spec §3, from T-CONNECTOR citing the doc): business and government
    need name + NIU; government and foreign need phone, e-mail and address."""
    problems = []
    kind = regime.RECIPIENT_NUMERIC.get(str(payload.get("recipient_type")), payload.get("recipient_type"))
    # The seed marks recipient_name required for every recipient; only a walk-in individual is
    # sent under a placeholder name (README), the others must be named.
    needs: list[str] = ["recipient_name"]
    if kind in ("business", "government"):
        needs += ["recipient_niu"]
    if kind in ("government", "foreign"):
        needs += ["recipient_phone", "recipient_email", "recipient_address"]
    for key in needs:
        placeholder = key == "recipient_name" and payload.get(key) == ANONYMOUS_RECIPIENT
        if not payload.get(key) or (placeholder and kind != "individual"):
            problems.append(Problem(key, "recipient_required", f"required for a {kind} recipient"))
    niu = payload.get("recipient_niu")
    if niu and (len(str(niu)) > 20 or not str(niu).isalnum()):
        problems.append(Problem("recipient_niu", "niu", "a NIU is at most 20 letters and digits"))
    email = payload.get("recipient_email")
    if email and not regime.EMAIL_PATTERN.match(str(email)):
        problems.append(Problem("recipient_email", "email", "is not an e-mail address"))
    phone = payload.get("recipient_phone")
    if phone and not regime.PHONE_PATTERN.match(str(phone)):
        problems.append(Problem("recipient_phone", "phone", "is not a phone number (e.g. +242 06 123 4567)"))
    return problems


def payload_problems(
    payload: Mapping[str, Any], *, paid: Decimal | None = None, model: type[CertifyRequest] = CertifyRequest
) -> list[Problem]:
    """Everything wrong with a payload built anywhere, under wire field paths: shape (types,
    required fields, enums), credit-note reference, recipient rules and every totals mismatch."""
    # recipient rules first: they say why a field is missing better than the shape check does
    problems = recipient_problems(payload)
    named = {p.field for p in problems}
    try:
        model.model_validate(payload)
    except ValidationError as exc:
        problems += [p for p in problems_from_validation_error(exc) if p.field not in named]
    if payload.get("invoice_type") == "creditNote" and not payload.get("reference_invoice_id"):
        problems.append(
            Problem("reference_invoice_id", "credit_note_reference", "required for a creditNote (spec §3)")
        )
    # the shape check already reports missing, mistyped and negative amounts
    shaped = {p.field for p in problems}
    problems += [
        p
        for p in check_totals(payload, paid=paid)
        if not (p.field in shaped and p.rule in {"required", "type", "negative"})
    ]
    return problems


def validate(invoice: Invoice, settings: SfecSettings) -> list[Problem]:
    """Every reason SFEC would refuse this invoice, under neutral field paths."""
    problems: list[Problem] = []
    if invoice.kind not in regime.INVOICE_TYPES:
        problems.append(Problem("kind", "kind", "SFEC certifies sales invoices and credit notes only"))
    if invoice.currency not in regime.CURRENCIES:
        problems.append(Problem("currency", "currency", "SFEC accepts XAF or USD", expected="XAF | USD"))
    if invoice.seller.tax_id and invoice.seller.tax_id.upper() != settings.niu:
        problems.append(
            Problem(
                "seller.tax_id", "niu_mismatch", "differs from the NIU in the SFEC settings", settings.niu
            )
        )
    inputs, line_problems = _line_inputs(invoice)
    problems += line_problems
    if invoice.discount is not None and invoice.discount.kind == "amount":
        # pushing it into the lines would silently cap it at the subtotal (spec §5.2 clamps)
        base = build_totals(inputs, invoice.currency).subtotal
        if invoice.discount.value > base:
            problems.append(
                Problem(
                    "discount.value",
                    "discount_exceeds",
                    f"the invoice discount exceeds the subtotal after line discounts ({base})",
                    expected=f"<= {base}",
                )
            )
    method = _payment_method(invoice)
    if method is None or method not in regime.PAYMENT_METHODS:
        got = invoice.payments[0].method.value if invoice.payments else "none"
        problems.append(
            Problem(
                "payments[0].method",
                "payment_method",
                f"SFEC needs a payment method among {', '.join(regime.PAYMENT_METHODS)} (got {got}); "
                "give payments[0].method or authority_options['cg-sfec'].payment_method",
            )
        )
    # The payload checks (recipient rules, shape, totals) run even when the above found
    # something, so the caller sees every problem at once; a field already named is not repeated.
    named = {p.field for p in problems}
    payload = build_payload(invoice, settings)
    for p in payload_problems(payload, paid=paid_amount(invoice)):
        field = neutral_field(p.field)
        if field not in named:
            problems.append(Problem(field, p.rule, p.message, p.expected))
            named.add(field)
    return problems


# --- answers -> Certification -------------------------------------------------------------------
def _parse_date(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SFEC dates are UTC ("Z")


def certification_totals(payload: Mapping[str, Any]) -> dict[str, Decimal]:
    """The totals SFEC accepted (it echoes none back, so they are the payload's)."""

    def d(key: str) -> Decimal:
        return Decimal(str(payload.get(key) or 0))

    return {
        "total_excl_tax": d("subtotal") - d("discount_amount"),
        "total_tax": d("total_tax_amount") + d("additional_cent_tax") + d("electronic_stamp_duty"),
        "total": d("total_amount"),
        "vat_18": d("total_tax_t_amount"),
        "vat_5": d("total_tax_r_amount"),
        "exempt_base": d("total_exempt_amount"),
        "line_discounts": d("total_line_discount_amount"),
        "additional_cent_tax": d("additional_cent_tax"),
        "electronic_stamp_duty": d("electronic_stamp_duty"),
        "amount_due": d("amount_due"),
    }


def to_certification(
    answer: CertificationResponse,
    payload: Mapping[str, Any],
    *,
    environment: str,
    raw: dict[str, Any],
    kind: InvoiceKind,
) -> Certification:
    return Certification(
        authority=AUTHORITY,
        environment=environment,
        kind=kind,
        reference=answer.certification_number,
        # SFEC hands the QR over as an image (data URI); what it encodes is not documented, so the
        # image itself is what must be printed, and there is no text to encode ourselves.
        qr_content="",
        qr_image=answer.qr_code,
        certified_at=_parse_date(answer.certification_date),
        totals=certification_totals(payload),
        authority_data={
            "invoice_id": payload.get("invoice_id"),
            "taxpayer_niu": payload.get("taxpayer_niu"),  # the seller's NIU, a printed mention
            "identifier": answer.identifier,
            "certification_number": answer.certification_number,
            "signature": answer.signature,
            "short_signature": answer.short_signature,
            "invoice_type": payload.get("invoice_type"),
            "reference_invoice_id": payload.get("reference_invoice_id"),
            "currency": payload.get("currency"),
        },
        raw=raw,
    )


def record_mismatches(record: InvoiceRecord, payload: Mapping[str, Any]) -> list[str]:
    """Why a certified invoice found under our `invoice_id` is not this invoice (empty: it is).
    An answer that lacks the type or the total cannot be verified and is not adopted."""
    differences = []
    if record.invoice_type is None or record.total_amount is None:
        return ["the platform's record lacks invoice_type or total_amount, so it cannot be verified"]
    recipient = regime.RECIPIENT_NUMERIC.get(str(record.recipient_type), record.recipient_type)
    expected: list[tuple[str, Any, Any]] = [
        ("invoice_type", record.invoice_type, payload.get("invoice_type")),
        ("total_amount", record.total_amount, Decimal(str(payload.get("total_amount")))),
        ("currency", record.currency, payload.get("currency")),
        ("recipient_type", recipient, payload.get("recipient_type")),
        ("recipient_niu", record.recipient_niu or None, payload.get("recipient_niu") or None),
        (
            "reference_invoice_id",
            record.reference_invoice_id or None,
            payload.get("reference_invoice_id") or None,
        ),
    ]
    if record.subtotal is not None:
        expected.append(("subtotal", record.subtotal, Decimal(str(payload.get("subtotal")))))
    if record.total_tax_amount is not None:
        expected.append(
            ("total_tax_amount", record.total_tax_amount, Decimal(str(payload.get("total_tax_amount"))))
        )
    for name, theirs, ours in expected:
        if theirs is not None and theirs != ours:
            differences.append(f"{name}: certified {theirs}, this invoice {ours}")
    return differences
