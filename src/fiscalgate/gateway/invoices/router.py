from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from fiscalgate.gateway import certification
from fiscalgate.gateway.api.auth import gateway, tenant_caller, tenant_id_of
from fiscalgate.gateway.api.pagination import Page, page_of
from fiscalgate.gateway.errors import Conflict, InvoiceOperationError, error_body, http_status_for_kind
from fiscalgate.gateway.invoices import credit_notes, editing, queries
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.schemas import (
    CreditNoteCreate,
    InvoiceCreate,
    InvoiceFilter,
    InvoiceOut,
    InvoiceUpdate,
    ReconcileRequest,
)
from fiscalgate.gateway.queue.waiting import certify_queued
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])

Wait = Annotated[
    float | None,
    Query(
        ge=0,
        le=60,
        description=(
            "Certify through the queue and wait at most this many seconds for the outcome: 0 answers "
            "at once (202, status `queued`); still in the queue after `wait`: 202 with its current "
            "status. Once the queue is done with it: 200 (201 on create) when certified, otherwise "
            "the error a synchronous certify answers (422 rejected; 502/503/429 failed, by the "
            "error's kind; 409 `invoice.unknown` when a person must reconcile). Omitted: certify "
            "synchronously."
        ),
    ),
]
QUEUED: dict[int | str, dict[str, Any]] = {
    202: {"model": InvoiceOut, "description": "Queued (or still in the queue after `wait`)"}
}


async def _certify(
    gw: Gateway, who: Caller, invoice_id: str, wait: float | None, response: Response, created: bool = False
) -> InvoiceOut | JSONResponse:
    """The certification that follows a certify / approve / create call: synchronous without
    `wait`, through the queue with it."""
    tenant_id = tenant_id_of(who)
    if wait is None:
        row, fresh = await certification.certify_invoice(gw, who, tenant_id, invoice_id)
        if row.status != "certified":  # (a failed outcome raised already: this is the safety net)
            return _not_certified(queries.invoice_out(row))
        if not fresh:
            response.headers["Fiscalgate-Already-Certified"] = "true"
        if created:
            response.status_code = 201
        return queries.invoice_out(row)
    out, settled, fresh = await certify_queued(gw, who, tenant_id, invoice_id, wait)
    if settled and out.status != "certified":  # the queue is done with it, not certified: no 2xx
        return _not_certified(out)
    headers = {} if fresh else {"Fiscalgate-Already-Certified": "true"}
    status = (201 if created else 200) if settled else 202
    return JSONResponse(out.model_dump(mode="json"), status_code=status, headers=headers)


@router.post("", status_code=201, responses=QUEUED)
async def create_invoice(
    body: InvoiceCreate,
    response: Response,
    wait: Wait = None,
    who: Caller = Depends(tenant_caller),
    gw: Gateway = Depends(gateway),
) -> InvoiceOut:
    """Create an invoice from the neutral format (every problem reported with its field path);
    with `certify: true`, approve and certify it too (see `wait`)."""
    out = await gw.db.run(
        lambda s: queries.invoice_out(editing.create_invoice(s, gw, who, tenant_id_of(who), body))
    )
    if not body.certify:
        return out
    return await _certify(gw, who, out.id, wait, response, created=True)  # type: ignore[return-value]


@router.get("")
async def list_invoices(
    f: Annotated[InvoiceFilter, Query()], who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> Page[InvoiceOut]:
    """The tenant's invoices, newest first, one page at a time (`next`: the cursor of the next)."""
    return await gw.db.read(
        lambda s: page_of(*queries.list_invoices(s, tenant_id_of(who), f), queries.invoice_out)
    )


@router.get("/{invoice_id}")
async def get_invoice(
    invoice_id: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> InvoiceOut:
    return await gw.db.read(
        lambda s: queries.invoice_out(queries.get_invoice(s, tenant_id_of(who), invoice_id))
    )


@router.put("/{invoice_id}")
async def update_invoice(
    invoice_id: str, body: InvoiceUpdate, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> InvoiceOut:
    """Replace the invoice (draft, approved, rejected or failed only); it goes back to draft."""
    return await gw.db.run(
        lambda s: queries.invoice_out(
            editing.update_invoice(s, who, tenant_id_of(who), invoice_id, body.invoice)
        )
    )


@router.delete("/{invoice_id}", status_code=204)
async def delete_invoice(
    invoice_id: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> None:
    await gw.db.run(editing.delete_invoice, who, tenant_id_of(who), invoice_id)


@router.post("/{invoice_id}/approve", responses=QUEUED)
async def approve_invoice(
    invoice_id: str,
    response: Response,
    certify: Annotated[bool, Query(description="Certify it once approved (see `wait`)")] = False,
    wait: Wait = None,
    who: Caller = Depends(tenant_caller),
    gw: Gateway = Depends(gateway),
) -> InvoiceOut:
    out = await gw.db.run(
        lambda s: queries.invoice_out(editing.approve_invoice(s, gw, who, tenant_id_of(who), invoice_id))
    )
    if not certify:
        return out
    return await _certify(gw, who, invoice_id, wait, response)  # type: ignore[return-value]


@router.post("/{invoice_id}/certify", responses=QUEUED)
async def certify_invoice(
    invoice_id: str,
    response: Response,
    wait: Wait = None,
    who: Caller = Depends(tenant_caller),
    gw: Gateway = Depends(gateway),
) -> InvoiceOut:
    """Certify with the tenant's authority settings. Certifying a certified invoice sends nothing
    and returns the stored certification (header `Fiscalgate-Already-Certified: true`)."""
    return await _certify(gw, who, invoice_id, wait, response)  # type: ignore[return-value]


@router.post("/{invoice_id}/credit-notes", status_code=201)
async def create_credit_note(
    invoice_id: str,
    body: CreditNoteCreate,
    who: Caller = Depends(tenant_caller),
    gw: Gateway = Depends(gateway),
) -> InvoiceOut:
    """A credit note against a certified invoice: full (no `lines`) or partial."""
    return await gw.db.run(
        lambda s: queries.invoice_out(
            credit_notes.create_credit_note(s, who, tenant_id_of(who), invoice_id, body)
        )
    )


@router.post("/{invoice_id}/reconcile")
async def reconcile_invoice(
    invoice_id: str,
    body: ReconcileRequest | None = None,
    who: Caller = Depends(tenant_caller),
    gw: Gateway = Depends(gateway),
) -> InvoiceOut:
    """Resolve an `unknown` invoice (see the action descriptions); no body = `confirm`."""
    request = body or ReconcileRequest()
    row = await certification.reconcile_invoice(gw, who, tenant_id_of(who), invoice_id, request)
    _refuse_unless_settled(row)
    return queries.invoice_out(row)


def _refuse_unless_settled(row: InvoiceRow) -> None:
    """A 2xx says the outcome is known: an invoice left `unknown` (an authority answer that could
    not be recorded, a reconcile that could not tell) is a 409 naming the invoice and why."""
    if row.status == "unknown":
        raise _unknown(row.id, row.status_detail)


def _not_certified(out: InvoiceOut) -> JSONResponse:
    """The queue is done with the invoice and it is not certified: the answer a synchronous certify
    gives for the same outcome (the stored error's status: 422 rejected, 502/503/429 failed...),
    409 `invoice.unknown` for an unknown one, 409 `invoice.not_certified` without a stored error."""
    if out.status == "unknown":
        failure = _unknown(out.id, out.status_detail)
        body = error_body(failure.error, invoice_id=out.id, invoice_status=out.status)
        return JSONResponse(body, status_code=body["status"])
    stored = out.error or {}
    if not stored.get("kind"):
        plain = Conflict(
            f"invoice {out.id} is {out.status}, not certified: {out.status_detail}",
            code="invoice.not_certified",
        )
        body = error_body(plain, invoice_id=out.id, invoice_status=out.status)
        return JSONResponse(body, status_code=body["status"])
    status = http_status_for_kind(stored["kind"])
    body = {
        "kind": stored["kind"],
        "code": stored.get("code"),
        "message": stored.get("message"),
        "status": status,
        "problems": stored.get("problems") or [],
        "resolution": stored.get("resolution"),
        "retryable": bool(stored.get("retryable")),
        "authority": stored.get("authority"),
        "authority_code": stored.get("authority_code"),
        "authority_message": stored.get("authority_message"),
        "authority_http_status": stored.get("http_status"),
        "invoice_id": out.id,
        "invoice_status": out.status,
    }
    return JSONResponse(body, status_code=status)


def _unknown(invoice_id: str, detail: str | None) -> InvoiceOperationError:
    return InvoiceOperationError(
        Conflict(
            f"invoice {invoice_id} is still unknown: {detail}; reconcile it (or resolve it by "
            "hand: record_reference / not_certified)",
            code="invoice.unknown",
        ),
        invoice_id,
        "unknown",
    )
