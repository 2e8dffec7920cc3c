"""The simulated SFEC platform: its store and its rules, without HTTP.

A second, independent reading of SOURCES.md and the online-report page. It shares no code with the client
side (no import from fiscalgate.core or the cg_sfec client modules): its totals check is written
from the spec's rules on its own, so contract tests comparing both sides prove something.

Rules it enforces (the README lists them with their sources):
- totals (spec §5): line subtotal = unit_price x quantity; discount fixed or percentage (the
  percentage reading or the resolved-amount reading, whichever agrees with net_amount);
  net = subtotal - discount; tax = net x rate; line total = net + tax; the header fields are
  sums of the lines; centimes additionnels are 0 or 5 % of all VAT; stamp duty is 0;
  total = subtotal - discount_amount + VAT + centimes + stamp; 0 <= amount_due <= total.
  A product is compared after rounding half-up to the decimals the amount is written with
  (at least the currency's: 0 for XAF, 2 for USD); a sum must be exact.
- one invoice per invoice_id (409), credit notes need a certified sales invoice as reference,
  at most one credit note per invoice, same currency, total not above the original's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import struct
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import segno

from fiscalgate.simkit import snapshot

MSG_INVALID = "Données invalides (format incorrect, champs manquants, incohérences dans les totaux)"
MSG_AUTH = "Clé d’authentification invalide ou manquante"
MSG_DUPLICATE = "Facture déjà certifiée ou déclarée"
MSG_BUSINESS = "Erreur de validation des données métier"
MSG_NOT_FOUND = "Facture introuvable"

VAT = {"18": Decimal(18), "5": Decimal(5), "0": Decimal(0)}
CENTIMES_PERCENT = Decimal(5)
CURRENCY_PLACES = {"XAF": 0, "USD": 2}
MAX_PAGE_SIZE = 100


class SimError(Exception):
    """A refusal, rendered by the app as `{"error": {"code", "message", "field", "details"}}`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details or []

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        if self.details:
            error["details"] = self.details
        return {"success": False, "error": error}


def _places(value: Decimal) -> int:
    text = format(value.normalize(), "f")
    return len(text.split(".")[1]) if "." in text else 0


def _show(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


class TotalsAudit:
    """Recomputes every amount of a payload and notes each one that differs."""

    def __init__(self, currency: str) -> None:
        self.min_places = CURRENCY_PLACES.get(currency, 2)
        self.findings: list[dict[str, Any]] = []

    def _note(self, where: str, received: Decimal, expected: Decimal, rule: str) -> None:
        # Where the documents leave a convention open (a header subtotal gross or net of the line
        # discounts, say), a client that read them otherwise learns which field, which value and
        # which convention: `convention` says it in words (README, "Totals conventions").
        wanted, got = _show(expected), _show(received)
        self.findings.append(
            {
                "field": where,
                "code": "TOTALS_MISMATCH",
                "message": f"{where} : attendu {wanted} (convention : {rule}), reçu {got}",
                "expected": _show(expected),
                "received": _show(received),
                "convention": rule,
            }
        )

    def rounded(self, where: str, received: Decimal, exact: Decimal, rule: str) -> Decimal:
        step = Decimal(1).scaleb(-max(self.min_places, min(_places(received), 6)))
        wanted = exact.quantize(step, rounding=ROUND_HALF_UP)
        if received != wanted:
            self._note(where, received, wanted, rule)
        return wanted

    def equal(self, where: str, received: Decimal, wanted: Decimal, rule: str) -> Decimal:
        if received != wanted:
            self._note(where, received, wanted, rule)
        return wanted

    def run(self, invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
        by_rate_net = dict.fromkeys(VAT, Decimal(0))
        by_rate_tax = dict.fromkeys(VAT, Decimal(0))
        discounts = Decimal(0)
        for n, item in enumerate(invoice["items"]):
            at = f"items[{n}]"
            sub = self.rounded(
                f"{at}.subtotal",
                item["subtotal"],
                item["unit_price"] * item["quantity"],
                "prix unitaire × quantité",
            )
            given = item["discount_amount"]
            if item["discount_type"] == "percentage" and given <= 100:
                percent_net = sub - sub * given / 100
                step = Decimal(1).scaleb(-max(self.min_places, min(_places(item["net_amount"]), 6)))
                reads_as_percent = percent_net.quantize(step, rounding=ROUND_HALF_UP) == item["net_amount"]
                net_exact = (
                    percent_net if reads_as_percent or sub - given != item["net_amount"] else sub - given
                )
            else:
                net_exact = sub - given
            if net_exact < 0:
                self.findings.append(
                    {
                        "field": f"{at}.discount_amount",
                        "code": "DISCOUNT_EXCEEDS_SUBTOTAL",
                        "message": "La remise dépasse le montant HT de l'article",
                        "expected": f"<= {_show(sub)}",
                        "received": _show(given),
                    }
                )
                net_exact = Decimal(0)
            net = self.rounded(f"{at}.net_amount", item["net_amount"], net_exact, "sous-total − remise")
            tax = self.rounded(
                f"{at}.tax_amount",
                item["tax_amount"],
                net * VAT[item["tax_rate"]] / 100,
                f"net × {item['tax_rate']} %",
            )
            self.equal(f"{at}.total_amount", item["total_amount"], net + tax, "net + taxe")
            by_rate_net[item["tax_rate"]] += net
            by_rate_tax[item["tax_rate"]] += tax
            discounts += sub - net
        subtotal = self.equal(
            "subtotal",
            invoice["subtotal"],
            sum(by_rate_net.values(), Decimal(0)),
            "Σ net_amount des articles, net des remises de ligne, avant la remise globale",
        )
        vat_t = self.equal(
            "total_tax_t_amount", invoice["total_tax_t_amount"], by_rate_tax["18"], "Σ TVA 18 %"
        )
        vat_r = self.equal("total_tax_r_amount", invoice["total_tax_r_amount"], by_rate_tax["5"], "Σ TVA 5 %")
        self.equal("total_exempt_amount", invoice["total_exempt_amount"], by_rate_net["0"], "Σ net exonéré")
        vat = self.equal("total_tax_amount", invoice["total_tax_amount"], vat_t + vat_r, "TVA 18 % + TVA 5 %")
        self.equal(
            "total_line_discount_amount", invoice["total_line_discount_amount"], discounts, "Σ remises"
        )
        global_discount = invoice["discount_amount"]
        if global_discount > subtotal:
            self._note("discount_amount", global_discount, subtotal, "au plus le sous-total")
        centimes = invoice["additional_cent_tax"]
        if centimes != 0:
            centimes = self.rounded(
                "additional_cent_tax", centimes, vat * CENTIMES_PERCENT / 100, "0 ou 5 % de la TVA"
            )
        stamp = self.equal(
            "electronic_stamp_duty", invoice["electronic_stamp_duty"], Decimal(0), "0, ajouté par SFEC"
        )
        total = self.equal(
            "total_amount",
            invoice["total_amount"],
            subtotal - global_discount + vat + centimes + stamp,
            "sous-total − remise globale + TVA + centimes + timbre",
        )
        if invoice["amount_due"] > total:
            self._note("amount_due", invoice["amount_due"], total, "au plus le total")
        return self.findings


def recipient_findings(invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Who must be identified, by recipient type (spec §3)."""
    wanted = {
        "business": ("recipient_name", "recipient_niu"),
        "government": (
            "recipient_name",
            "recipient_niu",
            "recipient_phone",
            "recipient_email",
            "recipient_address",
        ),
        "foreign": ("recipient_phone", "recipient_email", "recipient_address"),
        "individual": (),
    }[invoice["recipient_type"]]
    return [
        {
            "field": name,
            "code": "REQUIRED",
            "message": f"Champ obligatoire pour un destinataire {invoice['recipient_type']}",
        }
        for name in wanted
        if not invoice.get(name)
    ]


@dataclass
class Record:
    invoice: dict[str, Any]  # as received, normalised
    identifier: str
    certification_number: str
    certification_date: str
    signature: str
    short_signature: str
    qr_code: str
    source: str  # "certify" or "report"
    reported: bool = False
    credit_note_id: str | None = None

    def view(self) -> dict[str, Any]:
        data = {k: _jsonable(v) for k, v in self.invoice.items()}
        data.update(
            # The ERP's own number, under the name the certify answer gives it: clients recover a
            # 409 by finding their invoice in a look-up or a list by this field.
            invoice_number=self.invoice["invoice_id"],
            identifier=self.identifier,
            certification_number=self.certification_number,
            certification_date=self.certification_date,
            signature=self.signature,
            short_signature=self.short_signature,
            qr_code=self.qr_code,
            status="certified",
            source=self.source,
            reported=self.reported,
            credit_note_id=self.credit_note_id,
        )
        return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


@dataclass
class Platform:
    niu: str
    api_key: str
    secret: bytes = field(default_factory=lambda: uuid.uuid4().bytes)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    records: dict[str, Record] = field(default_factory=dict)  # by invoice_id
    journal: list[str] = field(default_factory=list)  # every API request that reached the platform
    sequence: int = 0

    # What a restart must not forget (simkit.snapshot): the signing secret too, so a report of an
    # invoice certified before the restart still matches its signature. NIU and key are the
    # configuration in force; the request journal is the process's own.
    MEMORY = ("secret", "records", "sequence")

    def export_state(self) -> dict[str, Any]:
        return snapshot.capture(self, self.MEMORY)

    def import_state(self, data: dict[str, Any]) -> None:
        snapshot.restore(self, data, self.MEMORY, (Record,))

    def authenticate(self, key: str | None) -> None:
        if not key or not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise SimError(401, "UNAUTHORIZED", MSG_AUTH)

    def find(self, some_id: str) -> Record | None:
        """By invoice_id, SFEC identifier or certification number."""
        if some_id in self.records:
            return self.records[some_id]
        for record in self.records.values():
            if some_id in (record.identifier, record.certification_number):
                return record
        return None

    # --- rules --------------------------------------------------------------------------------
    def _check(self, invoice: dict[str, Any]) -> Record | None:
        """Every rule; returns the credit note's original when there is one."""
        if invoice["taxpayer_niu"] != self.niu:
            raise SimError(
                422, "TAXPAYER_MISMATCH", "Le NIU ne correspond pas à la clé API", field="taxpayer_niu"
            )
        missing = recipient_findings(invoice)
        if invoice["invoice_type"] == "creditNote" and not invoice.get("reference_invoice_id"):
            missing.append(
                {"field": "reference_invoice_id", "code": "REQUIRED", "message": "Obligatoire pour un avoir"}
            )
        if missing:
            raise SimError(400, "INVALID_DATA", MSG_INVALID, field=missing[0]["field"], details=missing)
        findings = TotalsAudit(invoice["currency"]).run(invoice)
        if findings:
            raise SimError(
                422, "TOTALS_MISMATCH", "Totaux incohérents", field=findings[0]["field"], details=findings
            )
        if invoice["invoice_type"] != "creditNote":
            return None
        original = self.find(invoice["reference_invoice_id"])
        rule = None
        if original is None:
            rule = ("REFERENCE_NOT_FOUND", "La facture de référence n'est pas certifiée")
        elif original.invoice["invoice_type"] != "salesInvoice":
            rule = ("REFERENCE_NOT_SALES_INVOICE", "Un avoir ne peut référencer qu'une facture de vente")
        elif original.credit_note_id is not None:
            rule = (
                "CREDIT_NOTE_EXISTS",
                f"Un avoir existe déjà pour cette facture ({original.credit_note_id})",
            )
        elif original.invoice["currency"] != invoice["currency"]:
            rule = ("CURRENCY_MISMATCH", "La devise de l'avoir diffère de celle de la facture")
        elif invoice["total_amount"] > original.invoice["total_amount"]:
            rule = ("CREDIT_EXCEEDS_ORIGINAL", "Le montant de l'avoir dépasse celui de la facture")
        if rule is not None:
            raise SimError(422, rule[0], rule[1], field="reference_invoice_id")
        return original

    def _issue(self, invoice: dict[str, Any], source: str) -> Record:
        self.sequence += 1
        now = self.clock().astimezone(UTC)
        date = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        number = f"SFEC-API-{now.year}-{self.sequence:010d}"
        canonical = json.dumps(_jsonable(invoice), sort_keys=True, ensure_ascii=False) + number + date
        signature = hmac.new(self.secret, canonical.encode(), hashlib.sha256).hexdigest()
        short = "-".join(signature[i : i + 4].upper() for i in range(0, 16, 4))
        identifier = str(uuid.uuid4())
        total = _show(invoice["total_amount"])
        # What the QR encodes is not documented: the simulator's own choice (README).
        text = f"SFEC|{self.niu}|{number}|{date}|{total} {invoice['currency']}|{short}"
        # A fixed mask: still a valid, scannable QR, but segno skips scoring all eight masks
        # (10 ms -> 3 ms of CPU per certification, which shows in gateway benchmarks in mock); the
        # PNG is drawn here from the module matrix (segno's writer: ~1.5 ms more).
        qr = png_data_uri(segno.make(text, error="m", mask=0).matrix)
        return Record(invoice, identifier, number, date, signature, short, qr, source)

    # --- operations ---------------------------------------------------------------------------
    def certify(self, invoice: dict[str, Any]) -> dict[str, Any]:
        if invoice["invoice_id"] in self.records:
            raise SimError(409, "ALREADY_CERTIFIED", MSG_DUPLICATE, field="invoice_id")
        original = self._check(invoice)
        record = self._issue(invoice, "certify")
        self.records[invoice["invoice_id"]] = record
        if original is not None:
            original.credit_note_id = invoice["invoice_id"]
        return {
            "success": True,
            "certification_number": record.certification_number,
            "invoice_number": invoice["invoice_id"],
            "identifier": record.identifier,
            "certification_date": record.certification_date,
            "signature": record.signature,
            "short_signature": record.short_signature,
            "qr_code": record.qr_code,
            "status": "certified",
        }

    def report(self, invoice: dict[str, Any]) -> dict[str, Any]:
        """Archive an invoice already certified (the online-report page). One certified here is archived when
        its signature matches; one certified elsewhere (a TCC, say) is recorded as reported."""
        known = self.records.get(invoice["invoice_id"])
        if known is not None:
            if known.reported or known.source == "report":
                raise SimError(409, "ALREADY_REPORTED", MSG_DUPLICATE, field="invoice_id")
            if invoice["certification_signature"] != known.signature:
                raise SimError(
                    422,
                    "SIGNATURE_MISMATCH",
                    "La signature ne correspond pas à la facture certifiée",
                    field="certification_signature",
                )
            findings = TotalsAudit(invoice["currency"]).run(invoice)
            if findings:
                raise SimError(
                    422, "TOTALS_MISMATCH", "Totaux incohérents", field=findings[0]["field"], details=findings
                )
            known.reported = True
            record = known
        else:
            original = self._check(invoice)
            record = self._issue(invoice, "report")
            record.reported = True
            self.records[invoice["invoice_id"]] = record
            if original is not None:
                original.credit_note_id = invoice["invoice_id"]
        return {
            "sfec_certification_number": record.certification_number,
            "invoice_number": invoice["invoice_id"],
            "certification_date": record.certification_date,
            "sfec_identifier": record.identifier,
            "sfec_qr_code": record.qr_code,
        }

    def get(self, some_id: str) -> dict[str, Any]:
        record = self.find(some_id)
        if record is None:
            raise SimError(404, "NOT_FOUND", MSG_NOT_FOUND, field="invoice_id")
        return record.view()

    def list(
        self,
        page: int = 1,
        page_size: int = 20,
        invoice_type: str | None = None,
        date_start: str | None = None,
        date_end: str | None = None,
    ) -> dict[str, Any]:
        if page < 1 or page_size < 1:
            raise SimError(400, "INVALID_DATA", MSG_INVALID, field="pageSize" if page >= 1 else "page")
        # A size above the maximum is served with the maximum, not refused (the answer's pageSize
        # says what was applied).
        page_size = min(page_size, MAX_PAGE_SIZE)
        chosen = [
            r
            for r in self.records.values()
            if (invoice_type is None or r.invoice["invoice_type"] == invoice_type)
            and (date_start is None or r.certification_date[:10] >= date_start[:10])
            and (date_end is None or r.certification_date[:10] <= date_end[:10])
        ]
        start = (page - 1) * page_size
        return {
            "invoices": [r.view() for r in chosen[start : start + page_size]],
            "page": page,
            "pageSize": page_size,
            "totalPages": max(1, math.ceil(len(chosen) / page_size)),
            "total": len(chosen),
        }


def png_data_uri(matrix: Any, scale: int = 3, border: int = 4) -> str:
    """A QR module matrix (rows of 0/1, 1 dark) as a 1-bit greyscale PNG data URI, each module
    `scale` pixels, with a quiet zone of `border` modules."""
    width = (len(matrix[0]) + 2 * border) * scale
    pad = -width % 8
    light = "1" * (border * scale)
    blank = bytes([0]) + int("1" * width + "0" * pad, 2).to_bytes((width + pad) // 8, "big")
    rows = [blank] * (border * scale)
    for modules in matrix:
        bits = light + "".join("0" * scale if m else "1" * scale for m in modules) + light + "0" * pad
        line = bytes([0]) + int(bits, 2).to_bytes((width + pad) // 8, "big")
        rows += [line] * scale
    rows += [blank] * (border * scale)
    raw = b"".join(rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
    png += chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode()
