"""The simulated FNE platform: taxpayers, documents, counters, stickers and every rule, without HTTP.

This is a second, independent reading of SOURCES.md. Amounts are exact fractions here (the client
side uses Decimal): if both sides agree on the totals it is because they read the spec the same way.
Replies are (status, body) pairs shaped like the platform's JSON, so the HTTP layer stays thin.
"""

from __future__ import annotations

import math
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from fiscalgate.simkit import snapshot

JSON = dict[str, Any]

# Annex 1 of the DOC (spec §5).
RATES = {"TVA": Fraction(18), "TVAB": Fraction(9), "TVAC": Fraction(0), "TVAD": Fraction(0)}
LABELS = {
    "TVA": "TVA normal - TVA sur HT 18,00% - A",
    "TVAB": "TVA réduite - TVA sur HT 09,00% - B",
    "TVAC": "TVA exo.conv - TVA sur HT 00,00% - C",
    "TVAD": "TVA exo.lég - Pas de TVA sur HT 00,00% - D",
}
# The platform's id of each VAT rate, as the sign answer's `items[].taxes[].vatRateId` carries it.
# TVA and TVAC: the ids in the DGI's DOC example answer. TVAB and TVAD appear in no published
# answer: the simulator gives them stable ids of its own, uuid5(NAMESPACE_URL,
# "fne-sim/vat/<code>"), which a client must not hard-code (README, "VAT rate ids").
RATE_IDS = {
    "TVA": "cdb6c5b2-5f35-407d-b5f6-c712a0792451",
    "TVAB": "fbfc41b6-1dde-5867-8d84-130322c6a673",
    "TVAC": "26b4c615-0c23-4084-803a-722e946779c8",
    "TVAD": "5ea53507-2128-5af3-95fb-91f690747f80",
}
TEMPLATES = {"B2B", "B2C", "B2G", "B2F"}
PAYMENT_METHODS = {"cash", "card", "check", "mobile-money", "transfer", "deferred"}
INVOICE_TYPES = {"sale", "purchase"}
# The DOC's response shows the currency's label, not its code ("Euro").
CURRENCY_LABELS = {
    "XOF": "Franc CFA",
    "USD": "Dollar américain",
    "EUR": "Euro",
    "JPY": "Yen",
    "CAD": "Dollar canadien",
    "GBP": "Livre sterling",
    "AUD": "Dollar australien",
    "CNH": "Yuan",
    "CHF": "Franc suisse",
    "HKD": "Dollar de Hong Kong",
    "NZD": "Dollar néo-zélandais",
}

SIGNING_ERROR: JSON = {
    "message": "Error signing invoice",
    "error": "invoice_signing_error",
    "statusCode": 500,
    "errors": {},
    "extraParams": {},
}
UNAUTHORIZED: JSON = {"message": "Invalid API Key", "error": "unauthorized", "statusCode": 401, "errors": {}}

POS_INVALID = "Point of sale is not valid"
ESTABLISHMENT_INVALID = "Establishment is invalid"


@dataclass(frozen=True)
class Reply:
    status: int
    body: JSON


@dataclass
class Taxpayer:
    ncc: str
    api_key: str
    establishments: list[str]
    points_of_sale: list[str]
    stickers: int = 1000
    warning_threshold: int = 50


@dataclass
class Line:
    id: str
    description: str
    reference: str | None
    unit: str | None
    quantity: Fraction
    price: Fraction  # HT unit price
    discount: Fraction  # %
    vat: str | None
    custom: list[tuple[str, Fraction]]
    refunded: Fraction = Fraction(0)


@dataclass
class Document:
    id: str
    token: str
    reference: str
    kind: str  # "sale", "purchase" or "refund"
    ncc: str
    created_at: datetime
    url: str
    lines: list[Line]
    discount: Fraction
    custom: list[tuple[str, Fraction]]
    totals: dict[str, int]
    request: JSON
    parent_id: str | None = None
    parent_reference: str | None = None


@dataclass
class Draft:
    """What a failed signing leaves behind in the portal (spec §8.6: unsigned "Vente" drafts)."""

    ncc: str
    created_at: datetime
    request: JSON


# --- maths -------------------------------------------------------------------------------------------
def half_up(value: Fraction) -> int:
    """Nearest franc, halves away from zero (the PDFs: 53 527.5 -> 53 528)."""
    sign = -1 if value < 0 else 1
    return sign * math.floor(abs(value) + Fraction(1, 2))


def totals_for(
    lines: list[tuple[Fraction, Line]], discount: Fraction, custom: list[tuple[str, Fraction]]
) -> dict[str, int]:
    """Totals of (quantity, line) pairs. Line HT = q x price x (1 - d%); everything then loses the
    global discount; VAT per code and custom taxes per (name, rate) are rounded once each."""
    remaining = 1 - discount / 100
    per_code: dict[str, Fraction] = {}
    per_tax: dict[tuple[str, Fraction], Fraction] = {}
    net = Fraction(0)
    for quantity, line in lines:
        base = quantity * line.price * (1 - line.discount / 100) * remaining
        net += base
        if line.vat is not None:
            per_code[line.vat] = per_code.get(line.vat, Fraction(0)) + base
        for name, rate in line.custom:
            per_tax[(name, rate)] = per_tax.get((name, rate), Fraction(0)) + base
    for name, rate in custom:
        per_tax[(name, rate)] = per_tax.get((name, rate), Fraction(0)) + net
    vat = sum((half_up(base * RATES[code] / 100) for code, base in per_code.items()), 0)
    other = sum((half_up(base * rate / 100) for (_, rate), base in per_tax.items()), 0)
    ht = half_up(net)
    return {"ht": ht, "vat": vat, "ttc": ht + vat, "other_taxes": other, "to_pay": ht + vat + other}


def uuid7(now: datetime) -> str:
    """A UUIDv7 like the platform's tokens (48-bit ms timestamp, version 7, RFC 4122 variant)."""
    millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | (0x7 << 76) | (secrets.randbits(12) << 64) | (0b10 << 62) | secrets.randbits(62)
    return str(uuid.UUID(int=value))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- request reading -----------------------------------------------------------------------------------
def _number(value: Any) -> Fraction | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    # A JSON number such as 1077.275 arrives as a float; its repr is the decimal that was written.
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


class _Errors:
    def __init__(self) -> None:
        self.fields: dict[str, dict[str, str]] = {}

    def add(self, where: str, rule: str, text: str) -> None:
        self.fields.setdefault(where, {})[rule] = text

    def text(self, body: JSON, where: str, *, required: bool = True) -> str | None:
        """A string field: missing -> required, not a string -> invalid, blank -> isNotEmpty."""
        value = body.get(where.rsplit(".", 1)[-1])
        if value is None:
            if required:
                self.add(where, "required", f"{where} is required")
            return None
        if not isinstance(value, str):
            self.add(where, "invalid", f"{where} must be a string")
            return None
        if not value.strip():
            if required:
                self.add(where, "isNotEmpty", f"{where} should not be empty")
            return None
        return value

    def percent(self, value: Any, where: str) -> Fraction:
        if value is None:
            return Fraction(0)
        number = _number(value)
        if number is None or not 0 <= number <= 100:
            self.add(where, "invalid", f"{where} must be a percentage between 0 and 100")
            return Fraction(0)
        return number


def _custom_taxes(errors: _Errors, raw: Any, where: str, allowed: bool) -> list[tuple[str, Fraction]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.add(where, "invalid", f"{where} must be an array")
        return []
    if raw and not allowed:
        errors.add(where, "invalid", f"{where} is not allowed on a purchase slip")
        return []
    taxes = []
    for j, tax in enumerate(raw):
        at = f"{where}.{j}"
        if not isinstance(tax, dict):
            errors.add(at, "invalid", f"{at} must be an object with name and amount")
            continue
        name = errors.text(tax, f"{at}.name")
        if tax.get("amount") is None:
            errors.add(f"{at}.amount", "required", f"{at}.amount is required")
            continue
        rate = _number(tax.get("amount"))
        if rate is None or not 0 <= rate <= 100:
            errors.add(f"{at}.amount", "invalid", f"{at}.amount must be a rate between 0 and 100")
        elif name is not None:
            taxes.append((name, rate))
    return taxes


# --- the platform --------------------------------------------------------------------------------------
@dataclass
class Platform:
    taxpayers: dict[str, Taxpayer] = field(default_factory=dict)  # by API key
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    documents: dict[str, Document] = field(default_factory=dict)  # by id
    drafts: list[Draft] = field(default_factory=list)
    # Uninterrupted series per taxpayer, year and series ("invoice": sales AND purchase slips, "refund").
    counters: dict[tuple[str, int, str], int] = field(default_factory=dict)

    # What a restart must not forget (simkit.snapshot); `clock` is the process's own.
    MEMORY = ("taxpayers", "documents", "drafts", "counters")

    def export_state(self) -> JSON:
        return snapshot.capture(self, self.MEMORY)

    def import_state(self, data: JSON) -> None:
        """Put a snapshot back. The taxpayers configured now (from the settings in force) keep
        their configuration (NCC, establishments, points of sale, threshold) and take their
        remembered sticker balance; remembered taxpayers no longer configured stay, so their
        documents still verify."""
        configured = dict(self.taxpayers)
        snapshot.restore(self, data, self.MEMORY, (Taxpayer, Line, Document, Draft))
        for key, taxpayer in configured.items():
            remembered = self.taxpayers.get(key)
            if remembered is not None:
                taxpayer.stickers = remembered.stickers
            self.taxpayers[key] = taxpayer

    def add_taxpayer(self, taxpayer: Taxpayer) -> Taxpayer:
        self.taxpayers[taxpayer.api_key] = taxpayer
        return taxpayer

    def authenticate(self, authorization: str | None) -> Taxpayer | None:
        scheme, _, key = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None  # a bare "Bearer" never matches, even a taxpayer set up with an empty key
        return self.taxpayers.get(key.strip())

    def by_token(self, token: str) -> Document | None:
        return next((d for d in self.documents.values() if d.token == token), None)

    def by_reference(self, reference: str) -> Document | None:
        return next((d for d in self.documents.values() if d.reference == reference), None)

    def _next(self, ncc: str, series: str, now: datetime) -> tuple[int, int]:
        year = now.year % 100
        key = (ncc, year, series)
        self.counters[key] = self.counters.get(key, 0) + 1
        return year, self.counters[key]

    @staticmethod
    def _bad_request(errors: _Errors) -> Reply:
        first = next(iter(next(iter(errors.fields.values())).values()))
        message = first if len(errors.fields) == 1 else "Validation failed"
        return Reply(
            400, {"message": message, "error": "bad_request", "statusCode": 400, "errors": errors.fields}
        )

    # -- sign ----------------------------------------------------------------------------------------
    def sign(self, taxpayer: Taxpayer, body: Any, public_base: str) -> Reply:
        data: JSON = body if isinstance(body, dict) else {}
        errors = _Errors()
        kind = errors.text(data, "invoiceType")
        if kind is not None and kind not in INVOICE_TYPES:
            errors.add("invoiceType", "invalid", "invoiceType must be one of: sale, purchase")
        sale = kind != "purchase"
        payment = errors.text(data, "paymentMethod")
        if payment is not None and payment not in PAYMENT_METHODS:
            errors.add(
                "paymentMethod",
                "invalid",
                "paymentMethod must be one of: " + ", ".join(sorted(PAYMENT_METHODS)),
            )
        template = errors.text(data, "template")
        if template is not None and template not in TEMPLATES:
            errors.add("template", "invalid", "template must be one of: B2B, B2C, B2G, B2F")
        is_rne = data.get("isRne", False)
        if not isinstance(is_rne, bool):
            errors.add("isRne", "invalid", "isRne must be a boolean")
        elif is_rne:
            errors.text(data, "rne")
        if sale and template == "B2B":
            errors.text(data, "clientNcc")
        for name in ("clientCompanyName", "clientPhone", "clientEmail"):
            errors.text(data, name)
        errors.text(data, "clientSellerName", required=False)
        pos = errors.text(data, "pointOfSale")
        if pos is not None and pos not in taxpayer.points_of_sale:
            errors.add("pointOfSale", "invalid", POS_INVALID)
        establishment = errors.text(data, "establishment")
        if establishment is not None and establishment not in taxpayer.establishments:
            errors.add("establishment", "invalid", ESTABLISHMENT_INVALID)
        currency = data.get("foreignCurrency") or ""
        if not isinstance(currency, str):
            errors.add("foreignCurrency", "invalid", "foreignCurrency must be a string")
            currency = ""
        elif currency and not sale:
            errors.add("foreignCurrency", "invalid", "foreignCurrency is not allowed on a purchase slip")
        elif currency and currency not in CURRENCY_LABELS:
            errors.add(
                "foreignCurrency", "invalid", "foreignCurrency must be one of: " + ", ".join(CURRENCY_LABELS)
            )
        elif sale and template == "B2F" and not currency:
            errors.add("foreignCurrency", "required", "foreignCurrency is required for a B2F invoice")
        raw_rate = data.get("foreignCurrencyRate")
        if isinstance(raw_rate, str) and raw_rate.strip():
            # Some clients send the rate as a string ("655.957"); a numeric string is taken as a number.
            try:
                raw_rate = float(raw_rate)
            except ValueError:
                raw_rate = True  # not a number: reported as invalid below
        rate = _number(raw_rate) if raw_rate not in (None, "") else Fraction(0)
        if rate is None or rate < 0:
            errors.add("foreignCurrencyRate", "invalid", "foreignCurrencyRate must be a positive number")
        elif currency and currency != "XOF" and rate == 0:
            errors.add(
                "foreignCurrencyRate", "required", "foreignCurrencyRate is required with foreignCurrency"
            )
        discount = errors.percent(data.get("discount"), "discount")
        custom = _custom_taxes(errors, data.get("customTaxes"), "customTaxes", sale)
        lines = self._items(errors, data.get("items"), sale)
        if errors.fields:
            return self._bad_request(errors)

        now = self.clock()
        if taxpayer.stickers <= 0:
            # No sticker: the platform answers 500 and leaves an unsigned draft (spec §8.6).
            self.drafts.append(Draft(taxpayer.ncc, now, data))
            return Reply(500, dict(SIGNING_ERROR))
        year, seq = self._next(taxpayer.ncc, "invoice", now)
        reference = f"{taxpayer.ncc}{year:02d}{seq:09d}"
        token = uuid7(now)
        doc = Document(
            id=str(uuid.uuid4()),
            token=token,
            reference=reference,
            kind=str(kind),
            ncc=taxpayer.ncc,
            created_at=now,
            url=f"{public_base}/fr/verification/{token}",
            lines=lines,
            discount=discount,
            custom=custom,
            totals=totals_for([(ln.quantity, ln) for ln in lines], discount, custom),
            request=data,
        )
        self.documents[doc.id] = doc
        taxpayer.stickers -= 1
        return Reply(
            200,
            {
                "ncc": taxpayer.ncc,
                "reference": reference,
                "token": doc.url,
                "warning": taxpayer.stickers < taxpayer.warning_threshold,
                "balance_sticker": taxpayer.stickers,
                "invoice": self._invoice_json(doc),
            },
        )

    def _items(self, errors: _Errors, raw: Any, sale: bool) -> list[Line]:
        if raw is None:
            errors.add("items", "required", "items is required")
            return []
        if not isinstance(raw, list) or not raw:
            errors.add("items", "invalid", "items must be a non-empty array")
            return []
        lines = []
        for i, item in enumerate(raw):
            at = f"items.{i}"
            if not isinstance(item, dict):
                errors.add(at, "invalid", f"{at} must be an object")
                continue
            description = errors.text(item, f"{at}.description")
            errors.text(item, f"{at}.reference", required=False)
            errors.text(item, f"{at}.measurementUnit", required=False)
            quantity = _number(item.get("quantity"))
            if item.get("quantity") is None:
                errors.add(f"{at}.quantity", "required", f"{at}.quantity is required")
            elif quantity is None or quantity <= 0:
                errors.add(f"{at}.quantity", "invalid", f"{at}.quantity must be a positive number")
            price = _number(item.get("amount"))
            if item.get("amount") is None:
                errors.add(f"{at}.amount", "required", f"{at}.amount is required")
            elif price is None or price < 0:
                errors.add(f"{at}.amount", "invalid", f"{at}.amount must be a number >= 0")
            discount = errors.percent(item.get("discount"), f"{at}.discount")
            taxes = item.get("taxes")
            vat: str | None = None
            if sale:
                if (
                    not isinstance(taxes, list)
                    or len(taxes) != 1
                    or not isinstance(taxes[0], str)
                    or taxes[0] not in RATES
                ):
                    errors.add(
                        f"{at}.taxes",
                        "invalid",
                        "Each item must have exactly one tax among: TVA, TVAB, TVAC, TVAD",
                    )
                else:
                    vat = taxes[0]
            elif taxes:
                errors.add(f"{at}.taxes", "invalid", "taxes are not allowed on a purchase slip item")
            custom = _custom_taxes(errors, item.get("customTaxes"), f"{at}.customTaxes", sale)
            if description is not None and quantity is not None and price is not None:
                lines.append(
                    Line(
                        id=str(uuid.uuid4()),
                        description=description,
                        reference=item.get("reference") or None,
                        unit=item.get("measurementUnit") or None,
                        quantity=quantity,
                        price=price,
                        discount=discount,
                        vat=vat,
                        custom=custom,
                    )
                )
        return lines

    def _invoice_json(self, doc: Document) -> JSON:
        stamp = _iso(doc.created_at)
        req = doc.request
        currency = req.get("foreignCurrency") or ""

        def number(value: Fraction) -> int | float:
            return int(value) if value.denominator == 1 else float(value)

        items = []
        for line in doc.lines:
            items.append(
                {
                    "id": line.id,
                    "quantity": number(line.quantity),
                    "reference": line.reference,
                    "description": line.description,
                    "amount": number(line.price),
                    "discount": number(line.discount),
                    "measurementUnit": line.unit,
                    "createdAt": stamp,
                    "updatedAt": stamp,
                    "taxes": [
                        {
                            "invoiceItemId": line.id,
                            "vatRateId": RATE_IDS[line.vat],
                            "amount": int(RATES[line.vat]),
                            "name": LABELS[line.vat],
                            "shortName": line.vat,
                            "createdAt": stamp,
                            "updatedAt": stamp,
                        }
                    ]
                    if line.vat
                    else [],
                    "customTaxes": [
                        {
                            "id": str(uuid.uuid4()),
                            "invoiceItemId": line.id,
                            "amount": number(rate),
                            "name": name,
                            "createdAt": stamp,
                            "updatedAt": stamp,
                        }
                        for name, rate in line.custom
                    ],
                    "invoiceId": doc.id,
                    "parentId": None,
                }
            )
        return {
            "id": doc.id,
            "parentId": None,
            "parentReference": None,
            "token": doc.token,
            "reference": doc.reference,
            "type": "invoice",
            "subtype": "normal",
            "date": stamp,
            "paymentMethod": req.get("paymentMethod"),
            "amount": doc.totals["ttc"],
            "vatAmount": doc.totals["vat"],
            "fiscalStamp": 0,
            "discount": number(doc.discount),
            "clientNcc": req.get("clientNcc"),
            "clientCompanyName": req.get("clientCompanyName"),
            "clientPhone": req.get("clientPhone"),
            "clientEmail": req.get("clientEmail"),
            "clientTerminal": None,
            "clientMerchantName": None,
            "clientRccm": None,
            "clientSellerName": req.get("clientSellerName"),
            "clientEstablishment": req.get("establishment"),
            "clientPointOfSale": req.get("pointOfSale"),
            "status": "pending" if req.get("paymentMethod") == "deferred" else "paid",
            "template": req.get("template"),
            "description": None,
            "footer": req.get("footer"),
            "commercialMessage": req.get("commercialMessage"),
            "foreignCurrency": CURRENCY_LABELS.get(currency) if currency else "",
            "foreignCurrencyRate": req.get("foreignCurrencyRate") or 0,
            "isRne": bool(req.get("isRne", False)),
            "rne": req.get("rne"),
            "source": "api",
            "createdAt": stamp,
            "updatedAt": stamp,
            "items": items,
            "customTaxes": [
                {
                    "id": str(uuid.uuid4()),
                    "invoiceId": doc.id,
                    "amount": number(rate),
                    "name": name,
                    "createdAt": stamp,
                    "updatedAt": stamp,
                }
                for name, rate in doc.custom
            ],
        }

    # -- refund --------------------------------------------------------------------------------------
    def refund(self, taxpayer: Taxpayer, invoice_id: str, body: Any, public_base: str) -> Reply:
        original = self.documents.get(invoice_id)
        # Another taxpayer's invoice answers exactly like a missing one: ids never leak across accounts.
        if original is None or original.ncc != taxpayer.ncc or original.kind == "refund":
            return Reply(
                404,
                {
                    "message": "Invoice not found",
                    "error": "not_found",
                    "statusCode": 404,
                    "errors": {"id": {"notFound": "Invoice not found"}},
                },
            )
        errors = _Errors()
        if original.kind != "sale":
            errors.add("id", "invalid", "Only a sale invoice can be refunded")
        data: JSON = body if isinstance(body, dict) else {}
        raw = data.get("items")
        wanted: dict[str, Fraction] = {}
        order: list[str] = []
        by_id = {line.id: line for line in original.lines}
        if raw is None:
            errors.add("items", "required", "items is required")
        elif not isinstance(raw, list) or not raw:
            errors.add("items", "invalid", "items must be a non-empty array")
        else:
            for i, item in enumerate(raw):
                at = f"items.{i}"
                if not isinstance(item, dict):
                    errors.add(at, "invalid", f"{at} must be an object")
                    continue
                item_id = errors.text(item, f"{at}.id")
                if item.get("quantity") is None:
                    errors.add(f"{at}.quantity", "required", f"{at}.quantity is required")
                    continue
                quantity = _number(item.get("quantity"))
                if quantity is None or quantity <= 0:
                    errors.add(f"{at}.quantity", "invalid", f"{at}.quantity must be a positive number")
                    continue
                if item_id is None:
                    continue
                line = by_id.get(item_id)
                if line is None:
                    errors.add(f"{at}.id", "notFound", "Item not found on this invoice")
                    continue
                total = wanted.get(item_id, Fraction(0)) + quantity
                left = line.quantity - line.refunded
                if total > left:
                    shown = int(left) if left.denominator == 1 else float(left)
                    errors.add(
                        f"{at}.quantity",
                        "invalid",
                        f"Quantity to refund exceeds the quantity left to refund ({shown})",
                    )
                    continue
                if item_id not in wanted:
                    order.append(item_id)
                wanted[item_id] = total
        if errors.fields:
            return self._bad_request(errors)

        now = self.clock()
        if taxpayer.stickers <= 0:
            self.drafts.append(Draft(taxpayer.ncc, now, {"refund_of": invoice_id, **data}))
            return Reply(500, dict(SIGNING_ERROR))
        for item_id, quantity in wanted.items():
            by_id[item_id].refunded += quantity
        year, seq = self._next(taxpayer.ncc, "refund", now)
        reference = f"A{taxpayer.ncc}{year:02d}{seq:08d}"
        token = uuid7(now)
        refunded = [(wanted[i], by_id[i]) for i in order]
        doc = Document(
            id=str(uuid.uuid4()),
            token=token,
            reference=reference,
            kind="refund",
            ncc=taxpayer.ncc,
            created_at=now,
            url=f"{public_base}/fr/verification/{token}",
            lines=[
                Line(
                    id=str(uuid.uuid4()),
                    description=ln.description,
                    reference=ln.reference,
                    unit=ln.unit,
                    quantity=q,
                    price=ln.price,
                    discount=ln.discount,
                    vat=ln.vat,
                    custom=ln.custom,
                )
                for q, ln in refunded
            ],
            discount=original.discount,
            custom=original.custom,
            totals=totals_for(refunded, original.discount, original.custom),
            request=data,
            parent_id=original.id,
            parent_reference=original.reference,
        )
        self.documents[doc.id] = doc
        taxpayer.stickers -= 1
        return Reply(
            201,
            {
                "ncc": taxpayer.ncc,
                "reference": reference,
                "token": doc.url,
                "warning": taxpayer.stickers < taxpayer.warning_threshold,
                "balance_sticker": taxpayer.stickers,
            },
        )

    # -- introspection for the control endpoints and tests -------------------------------------------
    def summary(self, doc: Document) -> JSON:
        return {
            "id": doc.id,
            "reference": doc.reference,
            "kind": doc.kind,
            "ncc": doc.ncc,
            "token": doc.token,
            "url": doc.url,
            "parentReference": doc.parent_reference,
            "totals": dict(doc.totals),
            "items": [
                {
                    "id": ln.id,
                    "description": ln.description,
                    "quantity": str(ln.quantity),
                    "refunded": str(ln.refunded),
                }
                for ln in doc.lines
            ],
        }
