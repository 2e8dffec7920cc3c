"""The FNE simulator over HTTP: the platform's routes under /ws, the public verification page, and
control endpoints under /_sim (sticker balance, documents, drafts; faults come from simkit).

Request bodies are read as raw JSON and judged by `state.Platform`, so malformed bodies get the
platform's 400 shape (`message`, `error`, `statusCode`, `errors`) instead of a framework 422.
"""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fiscalgate.authorities.ci_fne.simulator.state import UNAUTHORIZED, Document, Platform, Reply, Taxpayer
from fiscalgate.simkit.app import SimulatorApp

DEFAULT_NCC = "9606123E"
DEFAULT_API_KEY = "Fq3ZbW8mTx2LkR7nVc4PsY9dHj6QaE1u"  # 32 alphanumerics, like the DOC's example key
DEFAULT_ESTABLISHMENTS = ("Siège Plateau",)
DEFAULT_POINTS_OF_SALE = ("Caisse 1",)


class StickerUpdate(BaseModel):
    """Body of POST /_sim/stickers."""

    balance: int = Field(ge=0)
    ncc: str | None = None  # default: every taxpayer
    warning_threshold: int | None = Field(default=None, ge=0)


class FneSimulator(SimulatorApp):
    """The ASGI app to serve: the FastAPI app wrapped in simkit's fault injector, with its platform."""

    platform: Platform

    def __init__(self, app: FastAPI, platform: Platform) -> None:
        super().__init__(app, platform)


def _reply(reply: Reply) -> JSONResponse:
    return JSONResponse(reply.body, status_code=reply.status)


_NOT_JSON = object()


async def _read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None  # an empty POST is judged like an empty object: every required field is missing
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON


def _public_base(request: Request) -> str:
    # The verification URL points at where the request came to (spec §8.7: no /ws suffix). The
    # base URL includes the ASGI root_path, so a simulator mounted under a prefix (the gateway's
    # `/mock/{tenant}/ci-fne`) hands out URLs under that prefix.
    return str(request.base_url).rstrip("/")


def _page(doc: Document) -> str:
    e = html.escape
    req = doc.request
    title = "Facture d'avoir" if doc.kind == "refund" else "Facture de vente"
    rows = "".join(
        f"<tr><td>{e(ln.description)}</td><td>{e(str(ln.quantity))}</td><td>{e(str(ln.price))}</td>"
        f"<td>{e(ln.vat or '')}</td></tr>"
        for ln in doc.lines
    )
    parent = f"<p>Facture d'origine : {e(doc.parent_reference)}</p>" if doc.parent_reference else ""
    t = doc.totals
    return (
        "<!doctype html><html lang='fr'><head><meta charset='utf-8'>"
        f"<title>FNE {e(doc.reference)}</title></head><body>"
        f"<h1>{title} Nº {e(doc.reference)}</h1>"
        f"<p>Contribuable : {e(doc.ncc)} · Date : {e(doc.created_at.isoformat())}</p>{parent}"
        f"<p>Client : {e(str(req.get('clientCompanyName') or ''))} {e(str(req.get('clientNcc') or ''))}</p>"
        "<table><tr><th>Désignation</th><th>Qté</th><th>P.U. HT</th><th>Taxe</th></tr>"
        f"{rows}</table>"
        f"<p>TOTAL HT {t['ht']}</p><p>TVA {t['vat']}</p><p>TOTAL TTC {t['ttc']}</p>"
        f"<p>AUTRES TAXES {t['other_taxes']}</p><p>TOTAL A PAYER {t['to_pay']}</p>"
        "<p>Facture certifiée par la DGI (simulateur fiscalgate)</p></body></html>"
    )


def create_app(platform: Platform) -> FneSimulator:
    api = FastAPI(title="FNE simulator (fiscalgate)", docs_url=None, redoc_url=None, openapi_url=None)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown routes and methods answer in the platform's error shape (spec §9), not FastAPI's
        # {"detail": ...}, so a client reading `message`/`statusCode` gets something it can show.
        names = {404: "Not Found", 405: "Method Not Allowed"}
        body = {
            "message": f"Cannot {request.method} {request.url.path}",
            "error": names.get(exc.status_code, "error"),
            "statusCode": exc.status_code,
            "errors": {},
        }
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    def bad_json() -> JSONResponse:
        body = {"message": "Invalid JSON body", "error": "bad_request", "statusCode": 400, "errors": {}}
        return JSONResponse(body, status_code=400)

    @api.post("/ws/external/invoices/sign")
    async def sign(request: Request) -> JSONResponse:
        taxpayer = platform.authenticate(request.headers.get("authorization"))
        if taxpayer is None:
            return JSONResponse(UNAUTHORIZED, status_code=401)
        body = await _read_json(request)
        if body is _NOT_JSON:
            return bad_json()
        return _reply(platform.sign(taxpayer, body, _public_base(request)))

    @api.post("/ws/external/invoices/{invoice_id}/refund")
    async def refund(invoice_id: str, request: Request) -> JSONResponse:
        taxpayer = platform.authenticate(request.headers.get("authorization"))
        if taxpayer is None:
            return JSONResponse(UNAUTHORIZED, status_code=401)
        body = await _read_json(request)
        if body is _NOT_JSON:
            return bad_json()
        return _reply(platform.refund(taxpayer, invoice_id, body, _public_base(request)))

    @api.get("/fr/verification/{token}", response_class=HTMLResponse)
    async def verification(token: str) -> HTMLResponse:
        doc = platform.by_token(token)
        if doc is None:
            return HTMLResponse("<!doctype html><p>Facture introuvable</p>", status_code=404)
        return HTMLResponse(_page(doc))

    @api.get("/_sim/state")
    async def state() -> JSONResponse:
        return JSONResponse(
            {
                "taxpayers": [
                    {
                        "ncc": t.ncc,
                        "stickers": t.stickers,
                        "warning_threshold": t.warning_threshold,
                        "establishments": t.establishments,
                        "points_of_sale": t.points_of_sale,
                    }
                    for t in platform.taxpayers.values()
                ],
                "documents": len(platform.documents),
                "drafts": len(platform.drafts),
            }
        )

    @api.post("/_sim/stickers")
    async def stickers(request: Request) -> JSONResponse:
        try:
            update = StickerUpdate.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
        changed = []
        for t in platform.taxpayers.values():
            if update.ncc in (None, t.ncc):
                t.stickers = update.balance
                if update.warning_threshold is not None:
                    t.warning_threshold = update.warning_threshold
                changed.append(t.ncc)
        return JSONResponse({"updated": changed, "balance": update.balance})

    @api.get("/_sim/documents/{reference}")
    async def document(reference: str) -> JSONResponse:
        doc = platform.by_reference(reference)
        if doc is None:
            return JSONResponse({"message": "unknown reference"}, status_code=404)
        return JSONResponse(platform.summary(doc))

    @api.get("/_sim/drafts")
    async def drafts() -> JSONResponse:
        return JSONResponse(
            {"drafts": [{"ncc": d.ncc, "created_at": d.created_at.isoformat()} for d in platform.drafts]}
        )

    return FneSimulator(api, platform)


def make_simulator(
    *,
    ncc: str = DEFAULT_NCC,
    api_key: str = DEFAULT_API_KEY,
    establishments: tuple[str, ...] | list[str] = DEFAULT_ESTABLISHMENTS,
    points_of_sale: tuple[str, ...] | list[str] = DEFAULT_POINTS_OF_SALE,
    stickers: int = 1000,
    warning_threshold: int = 50,
) -> FneSimulator:
    """A fresh simulator with one demo taxpayer."""
    platform = Platform()
    platform.add_taxpayer(
        Taxpayer(
            ncc=ncc,
            api_key=api_key,
            establishments=list(establishments),
            points_of_sale=list(points_of_sale),
            stickers=stickers,
            warning_threshold=warning_threshold,
        )
    )
    return create_app(platform)
