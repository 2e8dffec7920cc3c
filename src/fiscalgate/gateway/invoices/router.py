from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from fiscalgate.gateway.api.auth import gateway, tenant_caller, tenant_id_of
from fiscalgate.gateway.errors import Conflict, InvoiceOperationError
from fiscalgate.gateway.invoices import service
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.schemas import (
    CreditNoteCreate,
    InvoiceCreate,
    InvoiceFilter,
    InvoiceOut,
    InvoiceUpdate,
    ReconcileRequest,
)
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])


@router.post("", status_code=201)
async def create_invoice(
    body: InvoiceCreate, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> InvoiceOut:
    """Create an invoice from the neutral format (every problem reported with its field path)."""
    return await gw.db.run(
        lambda s: service.invoice_out(service.create_invoice(s, gw, who, tenant_id_of(who), body))
    )


@router.get("")
async def list_invoices(
    f: Annotated[InvoiceFilter, Query()], who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> list[InvoiceOut]:
    return await gw.db.read(
        lambda s: [service.invoice_out(r) for r in service.list_invoices(s, tenant_id_of(who), f)]
    )


@router.get("/{invoice_id}")
async def get_invoice(
    invoice_id: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> InvoiceOut:
    return await gw.db.read(
        lambda s: service.invoice_out(service.get_invoice(s, tenant_id_of(who), invoice_id))
    )


@router.put("/{invoice_id}")
async def update_invoice(
    invoice_id: str, body: InvoiceUpdate, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> InvoiceOut:
    """Replace the invoice (draft, approved, rejected or failed only); it goes back to draft."""
    return await gw.db.run(
        lambda s: service.invoice_out(
            service.update_invoice(s, who, tenant_id_of(who), invoice_id, body.invoice)
        )
    )


@router.delete("/{invoice_id}", status_code=204)
async def delete_invoice(
    invoice_id: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> None:
    await gw.db.run(service.delete_invoice, who, tenant_id_of(who), invoice_id)


@router.post("/{invoice_id}/approve")
async def approve_invoice(
    invoice_id: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> InvoiceOut:
    return await gw.db.run(
        lambda s: service.invoice_out(service.approve_invoice(s, gw, who, tenant_id_of(who), invoice_id))
    )


@router.post("/{invoice_id}/certify")
async def certify_invoice(
    invoice_id: str, response: Response, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> InvoiceOut:
    """Certify with the tenant's authority settings. Certifying a certified invoice sends nothing
    and returns the stored certification (header `Fiscalgate-Already-Certified: true`)."""
    row, fresh = await service.certify_invoice(gw, who, tenant_id_of(who), invoice_id)
    _refuse_unless_settled(row)
    if not fresh:
        response.headers["Fiscalgate-Already-Certified"] = "true"
    return service.invoice_out(row)


@router.post("/{invoice_id}/credit-notes", status_code=201)
async def create_credit_note(
    invoice_id: str,
    body: CreditNoteCreate,
    who: Caller = Depends(tenant_caller),
    gw: Gateway = Depends(gateway),
) -> InvoiceOut:
    """A credit note against a certified invoice: full (no `lines`) or partial."""
    return await gw.db.run(
        lambda s: service.invoice_out(service.create_credit_note(s, who, tenant_id_of(who), invoice_id, body))
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
    row = await service.reconcile_invoice(gw, who, tenant_id_of(who), invoice_id, request)
    _refuse_unless_settled(row)
    return service.invoice_out(row)


def _refuse_unless_settled(row: InvoiceRow) -> None:
    """A 2xx says the outcome is known: an invoice left `unknown` (an authority answer that could
    not be recorded, a reconcile that could not tell) is a 409 naming the invoice and why."""
    if row.status == "unknown":
        raise InvoiceOperationError(
            Conflict(
                f"invoice {row.id} is still unknown: {row.status_detail}; reconcile it (or resolve it by "
                "hand: record_reference / not_certified)",
                code="invoice.unknown",
            ),
            row.id,
            row.status,
        )
