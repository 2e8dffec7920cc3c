"""The SFEC simulator's HTTP face (Starlette), with its own request models, wrapped in the
simkit FaultInjector (latency, 5xx, timeout after recording; `POST/GET/DELETE /_sim/faults`).

Routes (spec §2, both path families):
  POST /api/invoices/certify, /api/v1/invoices, /api/v1/invoices/certify   certify (201)
  POST /api/invoices/report/api, /api/v1/invoices/report/api               report (201)
  GET  /api/invoices, /api/v1/invoices ?page&pageSize&invoice_type&date_start&date_end
  GET  /api/invoices/{id}, /api/v1/invoices/{id}    by invoice_id, identifier or number
Errors: `{"success": false, "error": {"code", "message", "field", "details": [{field, code,
message, expected?, received?}]}}` with 400 (malformed), 401, 404, 409, 422 (business rules and
totals), 500.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from fiscalgate.authorities.cg_sfec.simulator.state import MSG_INVALID, Platform, SimError
from fiscalgate.simkit.app import SimulatorApp

Money = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]

# online-report page: 1 = Entreprise, 2 = Particulier (the tcc-report page says the reverse)
RECIPIENT_CODES = {"1": "business", "2": "individual"}
PAYMENT_CODES = {"1": "bank_transfer", "2": "card", "3": "cash", "4": "mobile_money"}


class _In(BaseModel):
    # unknown fields are ignored: clients send extras (invoice_number, amount_after_discount...)
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class ItemIn(_In):
    designation: Annotated[str, Field(min_length=1)]
    classification_code: str | None = None
    type: Literal["product", "service"]
    unit_price: Money
    quantity: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    subtotal: Money
    discount_amount: Money = Decimal(0)
    discount_type: Literal["fixed", "percentage"] = "fixed"
    net_amount: Money
    tax_rate: str
    tax_amount: Money
    total_amount: Money

    @field_validator("tax_rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise ValueError("taux attendu sous forme de texte : 18, 5 ou 0")
        try:
            number = Decimal(str(value).strip())
        except ArithmeticError:
            raise ValueError("taux inconnu (18, 5 ou 0)") from None
        if number not in (18, 5, 0):
            raise ValueError("taux inconnu (18, 5 ou 0)")
        return str(int(number))


class InvoiceIn(_In):
    taxpayer_niu: Annotated[str, Field(min_length=1, max_length=20)]
    invoice_id: Annotated[str, Field(min_length=1, max_length=120)]
    invoice_type: Literal["salesInvoice", "creditNote"]
    invoice_subject: str | None = None
    invoice_due_date: str | None = None
    invoice_status: Literal["pending", "certified"] = "pending"
    reference_invoice_id: str | None = None
    # Required on the report endpoint only (seed 001 lists them among its fields; a certification
    # by a client that omits them is accepted, as on the platform).
    sciet: str | None = None
    terminal_identifier: str | None = None
    recipient_type: str
    recipient_name: Annotated[str, Field(min_length=1)]
    recipient_niu: str | None = None
    recipient_rccm: str | None = None
    recipient_address: str | None = None
    recipient_phone: str | None = None
    recipient_email: str | None = None
    is_recipient_taxable: bool
    subtotal: Money
    total_tax_t_amount: Money
    total_tax_r_amount: Money
    total_exempt_amount: Money
    total_tax_amount: Money
    discount_amount: Money
    total_line_discount_amount: Money
    additional_cent_tax: Money
    electronic_stamp_duty: Money
    total_amount: Money
    amount_due: Money
    currency: Literal["XAF", "USD"]
    payment_method: str
    payment_reference: str | None = None
    payment_date: str | None = None
    notes: str | None = None
    items: Annotated[list[ItemIn], Field(min_length=1)]

    @field_validator("recipient_type", mode="before")
    @classmethod
    def _recipient(cls, value: Any) -> str:
        text = str(value).strip() if isinstance(value, str | int) else ""
        text = RECIPIENT_CODES.get(text, text)
        if text not in ("business", "individual", "government", "foreign"):
            raise ValueError("business, individual, government, foreign (ou 1 = Entreprise, 2 = Particulier)")
        return text

    @field_validator("payment_method", mode="before")
    @classmethod
    def _payment(cls, value: Any) -> str:
        text = str(value).strip() if isinstance(value, str | int) else ""
        text = PAYMENT_CODES.get(text, text)
        if text not in ("bank_transfer", "card", "cash", "mobile_money", "cheque"):
            raise ValueError("bank_transfer, card, cash, mobile_money, cheque (ou 1 à 4)")
        return text


class ReportIn(InvoiceIn):
    sciet: Annotated[str, Field(min_length=1)]
    terminal_identifier: Annotated[str, Field(min_length=1)]
    invoice_status: Literal["certified", "pending"]
    certification_date: Annotated[str, Field(min_length=1)]
    certification_status: Literal["certified", "pending"]
    certification_signature: Annotated[str, Field(min_length=1)]
    certification_short_signature: str | None = None
    certification_qr_code: Annotated[str, Field(min_length=1)]


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


def _bad_body(exc: ValidationError) -> SimError:
    details = [
        {"field": _where(e["loc"]), "code": e["type"], "message": e["msg"].removeprefix("Value error, ")}
        for e in exc.errors()
    ]
    return SimError(400, "INVALID_DATA", MSG_INVALID, field=details[0]["field"], details=details)


@dataclass
class Simulator:
    platform: Platform
    app: SimulatorApp  # what to serve: the routes wrapped in fault injection


def create_simulator(niu: str, api_key: str) -> Simulator:
    platform = Platform(niu=niu.upper(), api_key=api_key)

    def endpoint(
        action: Callable[[Request], Awaitable[tuple[int, Any]]],
    ) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def handle(request: Request) -> JSONResponse:
            platform.journal.append(f"{request.method} {request.url.path}")
            try:
                platform.authenticate(request.headers.get("x-api-key"))
                status, body = await action(request)
            except SimError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)
            except Exception:  # the platform's own 500, never a stack trace on the wire
                return JSONResponse(
                    SimError(500, "INTERNAL_ERROR", "Erreur interne du serveur").body(), status_code=500
                )
            return JSONResponse(body, status_code=status)

        return handle

    async def read(request: Request, model: type[InvoiceIn]) -> dict[str, Any]:
        try:
            data = json.loads(await request.body(), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            raise SimError(400, "INVALID_JSON", MSG_INVALID, field="(body)") from None
        if not isinstance(data, dict):
            raise SimError(400, "INVALID_DATA", MSG_INVALID, field="(body)")
        try:
            return model.model_validate(data).model_dump()
        except ValidationError as exc:
            raise _bad_body(exc) from None

    async def certify(request: Request) -> tuple[int, Any]:
        return 201, platform.certify(await read(request, InvoiceIn))

    async def report(request: Request) -> tuple[int, Any]:
        return 201, platform.report(await read(request, ReportIn))

    async def get_one(request: Request) -> tuple[int, Any]:
        return 200, platform.get(request.path_params["invoice_id"])

    async def get_page(request: Request) -> tuple[int, Any]:
        query = request.query_params
        try:
            page = int(query.get("page", "1"))
            size = int(query.get("pageSize", query.get("page_size", "20")))
        except ValueError:
            raise SimError(400, "INVALID_DATA", MSG_INVALID, field="page") from None
        return 200, platform.list(
            page, size, query.get("invoice_type"), query.get("date_start"), query.get("date_end")
        )

    routes = []
    for prefix in ("/api", "/api/v1"):
        routes += [
            Route(f"{prefix}/invoices/certify", endpoint(certify), methods=["POST"]),
            Route(f"{prefix}/invoices/report/api", endpoint(report), methods=["POST"]),
            Route(f"{prefix}/invoices/{{invoice_id}}", endpoint(get_one), methods=["GET"]),
            Route(f"{prefix}/invoices", endpoint(get_page), methods=["GET"]),
        ]
    routes.append(Route("/api/v1/invoices", endpoint(certify), methods=["POST"]))
    return Simulator(platform, SimulatorApp(Starlette(routes=routes), platform))


def create_app(niu: str, api_key: str) -> SimulatorApp:
    return create_simulator(niu, api_key).app
