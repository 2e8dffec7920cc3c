"""Creating, editing, approving and deleting invoices (everything before certification)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fiscalgate.core.errors import ConfigurationError, InvoiceError, Problem
from fiscalgate.core.invoice import Invoice, InvoiceKind, parse_invoice
from fiscalgate.gateway.authorities import authority_code, available_authorities
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import Conflict, InvalidRequest, InvoiceOperationError
from fiscalgate.gateway.invoices.lifecycle import (
    DELETABLE,
    EDITABLE,
    lifecycle_event,
    refuse,
    transition,
)
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.queries import get_invoice
from fiscalgate.gateway.invoices.schemas import InvoiceCreate
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.settings.models import AuthorityConfig
from fiscalgate.gateway.settings.service import load_settings, require_available
from fiscalgate.gateway.tenants.models import Tenant
from fiscalgate.gateway.tenants.service import Caller, get_tenant


def parse_body(data: dict[str, Any]) -> Invoice:
    """The neutral invoice of a request body, problems located under `invoice.`."""
    try:
        return parse_invoice(data)
    except InvoiceError as exc:
        # Paths relative to the request body, where the invoice sits under "invoice".
        raise InvoiceError(
            [Problem(f"invoice.{p.field}", p.rule, p.message, p.expected) for p in exc.problems]
        ) from None


def document_of(invoice: Invoice) -> dict[str, Any]:
    return invoice.model_dump(mode="json", exclude_none=True)


def _pick_authority(
    session: Session, gw: Gateway, tenant: Tenant, requested: str | None, invoice: Invoice
) -> str:
    """The named authority; else the only one this invoice can go to: among the tenant's available
    authorities, those with active settings, then those that accept the invoice's currency."""
    if requested:
        code = authority_code(requested)
        require_available(tenant, code)
        return code
    available = available_authorities(tenant.country, tenant.modules)
    if len(available) == 1:
        return available[0]
    active = set(session.scalars(_ACTIVE_SETTINGS, {"tenant_id": tenant.id}))
    configured = [code for code in available if code in active]
    candidates = [code for code in configured if invoice.currency in _currencies(gw, code)]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        why = f"several fit (active settings, currency {invoice.currency}): {', '.join(candidates)}"
    elif configured:
        why = f"none with active settings accepts {invoice.currency} (configured: {', '.join(configured)})"
    elif available:
        why = f"none has active settings (available: {', '.join(available)})"
    else:
        why = "none is available"
    raise InvalidRequest(
        f"name the authority: {why}",
        code="invoice.authority_required",
        problems=[Problem("authority", "missing", f"cannot be inferred: {why}")],
    )


_ACTIVE_SETTINGS = select(AuthorityConfig.authority).where(
    AuthorityConfig.tenant_id == bindparam("tenant_id"), AuthorityConfig.active.is_(True)
)


def _currencies(gw: Gateway, code: str) -> tuple[str, ...]:
    try:
        return gw.driver(code).currencies
    except ConfigurationError:  # its package failed to load: it cannot take the invoice anyway
        return ()


def _validate_for_approval(
    session: Session, gw: Gateway, tenant: Tenant, authority: str, invoice: Invoice
) -> None:
    """The driver's own checks, run whenever an invoice becomes `approved` (by POST /approve or
    created with approve=true). Without usable settings there is nothing to check against yet:
    approving is a human decision, and missing settings surface at certify time."""
    try:
        driver, settings = load_settings(session, gw, tenant, authority)
    except ConfigurationError:
        return
    problems = driver.validate(invoice, settings)
    if problems:
        raise InvoiceError([Problem(f"invoice.{p.field}", p.rule, p.message, p.expected) for p in problems])


def create_invoice(
    session: Session, gw: Gateway, caller: Caller, tenant_id: str, body: InvoiceCreate
) -> InvoiceRow:
    tenant = get_tenant(session, tenant_id)
    invoice = parse_body(body.invoice)
    if invoice.kind is InvoiceKind.CREDIT_NOTE:
        raise InvalidRequest(
            "create a credit note with POST /v1/invoices/{original_id}/credit-notes",
            code="invoice.credit_note_via_original",
            problems=[Problem("invoice.kind", "credit_note", "credit notes are created from their original")],
        )
    authority = _pick_authority(session, gw, tenant, body.authority, invoice)
    approve = body.approve or body.certify  # certifying needs an approved invoice
    if approve:
        _validate_for_approval(session, gw, tenant, authority, invoice)
    return insert_invoice(
        session, caller, tenant_id, authority, invoice, None, "approved" if approve else "draft"
    )


_NUMBER_TAKEN = select(InvoiceRow.id).where(
    InvoiceRow.tenant_id == bindparam("tenant_id"),
    InvoiceRow.authority == bindparam("authority"),
    InvoiceRow.number == bindparam("number"),
)


def insert_invoice(
    session: Session,
    caller: Caller,
    tenant_id: str,
    authority: str,
    invoice: Invoice,
    original_id: str | None,
    status: str,
) -> InvoiceRow:
    exists = session.scalar(
        _NUMBER_TAKEN, {"tenant_id": tenant_id, "authority": authority, "number": invoice.number}
    )
    if exists is not None:
        raise Conflict(
            f"invoice number {invoice.number!r} already exists for {authority} (id {exists})",
            code="invoice.number_taken",
        )
    now = utcnow()
    row = InvoiceRow(
        tenant_id=tenant_id,
        authority=authority,
        number=invoice.number,
        kind=invoice.kind.value,
        status=status,
        document=document_of(invoice),
        currency=invoice.currency,
        original_id=original_id,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"invoice number {invoice.number!r} already exists", code="invoice.number_taken"
        ) from None
    lifecycle_event(session, row, caller.trigger, "invoice.created", {"status": status})
    return row


def update_invoice(
    session: Session, caller: Caller, tenant_id: str, invoice_id: str, data: dict[str, Any]
) -> InvoiceRow:
    row = get_invoice(session, tenant_id, invoice_id)
    if row.kind == InvoiceKind.CREDIT_NOTE.value:
        # Its lines, quantities, original and parties were derived from the original under the
        # credit-note rules; a free edit would bypass them all.
        fixed = Conflict(
            f"invoice {invoice_id} is a credit note and cannot be edited: delete it and create another "
            "from its original (POST /v1/invoices/{original_id}/credit-notes)",
            code="invoice.credit_note_fixed",
        )
        raise InvoiceOperationError(fixed, row.id, row.status)
    invoice = parse_body(data)
    if invoice.kind.value != row.kind:
        raise InvalidRequest(f"an invoice's kind cannot change ({row.kind})", code="invoice.kind_fixed")
    if invoice.number != row.number:
        raise InvalidRequest("an invoice's number cannot change", code="invoice.number_fixed")
    if not transition(
        session, tenant_id, invoice_id, EDITABLE, document=document_of(invoice), status="draft", error=None
    ):
        raise refuse(get_invoice(session, tenant_id, invoice_id), "edit")
    row = get_invoice(session, tenant_id, invoice_id)
    lifecycle_event(session, row, caller.trigger, "invoice.edited", {})
    return row


def delete_invoice(session: Session, caller: Caller, tenant_id: str, invoice_id: str) -> None:
    row = get_invoice(session, tenant_id, invoice_id)
    result = session.execute(
        delete(InvoiceRow)
        .where(
            InvoiceRow.id == invoice_id, InvoiceRow.tenant_id == tenant_id, InvoiceRow.status.in_(DELETABLE)
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise refuse(get_invoice(session, tenant_id, invoice_id), "delete")
    lifecycle_event(session, row, caller.trigger, "invoice.deleted", {"number": row.number})


def approve_invoice(
    session: Session, gw: Gateway, caller: Caller, tenant_id: str, invoice_id: str
) -> InvoiceRow:
    row = get_invoice(session, tenant_id, invoice_id)
    if row.status != "draft":
        raise refuse(row, "approve")
    tenant = get_tenant(session, tenant_id)
    _validate_for_approval(session, gw, tenant, row.authority, Invoice.model_validate(row.document))
    if not transition(session, tenant_id, invoice_id, ("draft",), status="approved"):
        raise refuse(get_invoice(session, tenant_id, invoice_id), "approve")
    row = get_invoice(session, tenant_id, invoice_id)
    lifecycle_event(session, row, caller.trigger, "invoice.approved", {})
    return row
