"""The e-MCF's HTTP face: the real paths (spec §4), Bearer auth, business errors as HTTP 200 with
errorCode/errorDesc, ASP.NET-like 400 for a missing or malformed body. Wrapped in simkit's
FaultInjector; `/_sim/emecef` adds e-MCF-specific controls (next errors, totals skew, clock)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fiscalgate.authorities.bj_emecef.simulator.state import (
    INVOICE_TYPES,
    MESSAGES,
    PAYMENT_TYPES,
    RATES,
    BusinessError,
    Platform,
)
from fiscalgate.simkit.app import SimulatorApp


# The simulator's own reading of the request DTO (DOC p.9–10). Enum-like fields are plain strings so
# that a bad value reaches the business checks (errors 3, 6, 7, 9) rather than a 400, as the live
# server's `NA` enum member suggests (§15.4). Unknown fields are ignored, as live (§3).
class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SimItem(_Lenient):
    code: str | None = None
    name: str
    price: int
    quantity: Decimal
    taxGroup: str | None = None
    taxSpecific: int | None = None
    originalPrice: Decimal | None = None
    priceModification: str | None = None


class SimClient(_Lenient):
    ifu: str | None = None
    name: str | None = None
    contact: str | None = None
    address: str | None = None


class SimOperator(_Lenient):
    id: str | None = None
    name: str | None = None


class SimPayment(_Lenient):
    name: str | None = None
    amount: int = 0


class SimInvoiceRequest(_Lenient):
    ifu: str | None = None
    aib: str | None = None
    type: str | None = None
    items: list[SimItem] | None = None
    client: SimClient | None = None
    operator: SimOperator | None = None
    payment: list[SimPayment] | None = None
    reference: str | None = None


class SimControl(_Lenient):
    next_credit_errors: list[int] = Field(default_factory=list)
    next_submit_errors: list[int] = Field(default_factory=list)
    next_totals_skew: dict[str, int] = Field(default_factory=dict)
    advance_clock_seconds: float = 0


def _business(error: BusinessError, **extra: Any) -> JSONResponse:
    """A business refusal as the live platform answers it (HTTP 200): the error fields and nothing
    else, none of the success fields set to null (answers recorded on the DGI test platform)."""
    return JSONResponse({"errorCode": str(error.code), "errorDesc": MESSAGES[error.code], **extra})


# A page shaped like the one the portal's IIS front answers for a path it does not serve.
_NOT_FOUND_PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>404 - Fichier ou répertoire introuvable."
    "</title></head><body><div id='header'><h1>Erreur du serveur</h1></div><div id='content'>"
    "<h2>404 - Fichier ou répertoire introuvable.</h2><h3>La ressource que vous recherchez a peut-être "
    "été supprimée ou renommée ou elle est temporairement indisponible.</h3></div></body></html>"
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _bad_request(errors: dict[str, list[str]]) -> JSONResponse:
    return JSONResponse(
        {"title": "One or more validation errors occurred.", "status": 400, "errors": errors}, status_code=400
    )


class ClockOffset:
    """Lets `/_sim/emecef` move the platform's clock forward (expiry tests over a socket)."""

    def __init__(self, platform: Platform) -> None:
        self.offset = timedelta(0)
        base = platform.clock
        platform.clock = lambda: base() + self.offset


class EmecefSimulator(SimulatorApp):
    """The fault-injecting wrapper, keeping a handle on the platform for tests."""

    platform: Platform

    def __init__(self, app: FastAPI, platform: Platform) -> None:
        super().__init__(app, platform)


def create_app(platform: Platform) -> EmecefSimulator:
    """A FastAPI e-MCF over `platform`, wrapped in a FaultInjector (reachable as `.platform`)."""
    # redirect_slashes off: `POST /api/invoice/` (as several clients written for the live platform
    # call it) is served by the same route, never answered with a redirect a POST cannot follow.
    app = FastAPI(
        title="e-MCF simulator (fiscalgate)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    clock = ClockOffset(platform)

    @app.exception_handler(StarletteHTTPException)
    async def not_served(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return HTMLResponse(_NOT_FOUND_PAGE, status_code=404)
        return Response(status_code=exc.status_code, headers=exc.headers)

    def unauthorized(request: Request) -> Response | None:
        if platform.authenticate(request.headers.get("authorization")):
            return None
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.get("/api/invoice")
    @app.get("/api/invoice/")
    async def status(request: Request) -> Response:
        return unauthorized(request) or JSONResponse(platform.status())

    @app.post("/api/invoice")
    @app.post("/api/invoice/")
    async def submit(request: Request) -> Response:
        if (denied := unauthorized(request)) is not None:
            return denied
        raw = await request.body()
        if not raw.strip():
            return _bad_request({"": ["A non-empty request body is required."]})
        try:
            data = json.loads(raw, parse_float=Decimal)
            parsed = SimInvoiceRequest.model_validate(data)
        except ValueError as exc:  # JSON syntax or ValidationError (a ValueError subclass)
            detail = exc.errors() if isinstance(exc, ValidationError) else str(exc)
            return _bad_request({"$": [str(detail)[:500]]})
        body = _jsonable(parsed.model_dump(exclude_none=True))
        try:
            return JSONResponse(platform.submit(body))
        except BusinessError as error:
            return _business(error)

    async def finalise(request: Request, uid: str, action: str) -> Response:
        if (denied := unauthorized(request)) is not None:
            return denied
        try:
            return JSONResponse(platform.finalise(uid, action))
        except BusinessError as error:
            # The live platform adds refundWithAibPayment to finalisation refusals too.
            return _business(error, refundWithAibPayment=False)

    for action in ("confirm", "cancel"):

        async def route(request: Request, uid: str, _action: str = action) -> Response:
            return await finalise(request, uid, _action)

        # PUT is canonical (DOC p.4, p.15, swagger); POST is the PDF's §1.3 wording, accepted too.
        app.add_api_route(f"/api/invoice/{{uid}}/{action}", route, methods=["PUT", "POST"])

    @app.get("/api/invoice/{uid}")
    async def details(request: Request, uid: str) -> Response:
        if (denied := unauthorized(request)) is not None:
            return denied
        try:
            return JSONResponse(_jsonable(platform.details(uid)))
        except BusinessError as error:
            return _business(error)

    @app.get("/api/info/status")
    async def info_status(request: Request) -> Response:
        return unauthorized(request) or JSONResponse(platform.info())

    @app.get("/api/info/taxGroups")
    async def tax_groups(request: Request) -> Response:
        body = {k.lower(): v for k, v in RATES.items()} | {"aibA": 1, "aibB": 5}
        return unauthorized(request) or JSONResponse(body)

    @app.get("/api/info/invoiceTypes")
    async def invoice_types(request: Request) -> Response:
        body = [{"type": t, "description": d} for t, d in INVOICE_TYPES.items()]
        return unauthorized(request) or JSONResponse(body)

    @app.get("/api/info/paymentTypes")
    async def payment_types(request: Request) -> Response:
        body = [{"type": t, "description": d} for t, d in PAYMENT_TYPES]
        return unauthorized(request) or JSONResponse(body)

    @app.post("/_sim/emecef")
    async def control(request: Request) -> Response:
        try:
            spec = SimControl.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
        unknown = [c for c in spec.next_credit_errors + spec.next_submit_errors if c not in MESSAGES]
        if unknown:
            return JSONResponse({"message": f"unknown error codes {unknown}"}, status_code=400)
        platform.next_credit_errors.extend(spec.next_credit_errors)
        platform.next_submit_errors.extend(spec.next_submit_errors)
        platform.next_totals_skew.update(spec.next_totals_skew)
        clock.offset += timedelta(seconds=spec.advance_clock_seconds)
        return JSONResponse({"pending": len(platform.pending), "invoices": len(platform.invoices)})

    return EmecefSimulator(app, platform)
