"""Reconciliation by hand: a person checked the authority's portal and says what they saw."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import Problem
from fiscalgate.core.invoice import InvoiceKind
from fiscalgate.gateway import chain
from fiscalgate.gateway.certification.claim import expire_stale_claim
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import Conflict, InvalidRequest
from fiscalgate.gateway.invoices.lifecycle import lifecycle_event, refuse, transition
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.queries import get_invoice
from fiscalgate.gateway.invoices.schemas import ReconcileRequest
from fiscalgate.gateway.tenants.service import Caller
from fiscalgate.gateway.webhooks.events import record_invoice_outcome


def _reference_taken(reference: str, holder: str) -> Conflict:
    return Conflict(f"reference {reference} is already held by {holder}", code="reference.taken")


def resolve_by_hand(
    session: Session, caller: Caller, tenant_id: str, invoice_id: str, body: ReconcileRequest
) -> InvoiceRow:
    expire_stale_claim(session, tenant_id, invoice_id)
    row = get_invoice(session, tenant_id, invoice_id)
    if body.action == "not_certified":
        values: dict[str, Any] = {
            "status": "failed",
            "status_detail": f"declared not certified by {caller.trigger}"
            + (f": {body.note}" if body.note else ""),
            "error": None,
        }
    else:
        if not body.reference:
            raise InvalidRequest(
                "record_reference needs the reference read on the authority's portal",
                code="reconcile.reference_required",
                problems=[Problem("reference", "missing", "required for record_reference")],
            )
        cert = Certification(
            authority=row.authority,
            environment=row.environment or "unknown",
            kind=InvoiceKind(row.kind),
            reference=body.reference,
            qr_content=body.qr_content or body.verification_url or body.reference,
            verification_url=body.verification_url,
            certified_at=body.certified_at or utcnow(),
            totals=body.totals,
            authority_data={"recorded_by_hand": True, "recorded_by": caller.trigger, "note": body.note},
        )
        clash = session.scalar(
            select(InvoiceRow.id).where(
                InvoiceRow.tenant_id == tenant_id,
                InvoiceRow.authority == row.authority,
                InvoiceRow.environment == row.environment,
                InvoiceRow.reference == body.reference,
            )
        )
        if clash is not None:
            raise _reference_taken(body.reference, f"invoice {clash}")
        values = {
            "status": "certified",
            "status_detail": f"reference recorded by hand by {caller.trigger}",
            "reference": cert.reference,
            "certification": cert.model_dump(mode="json"),
            "certified_at": cert.certified_at,
            "certified_total": cert.totals.get("total"),
            "error": None,
        }
    try:
        # The check above can race another record_reference on PostgreSQL (READ COMMITTED); the
        # unique constraint then decides, inside a savepoint so the answer is a clean 409.
        with session.begin_nested():
            moved = transition(session, tenant_id, invoice_id, ("unknown",), **values)
    except IntegrityError:
        if body.action != "record_reference":
            raise
        raise _reference_taken(body.reference or "", "another invoice") from None
    if not moved:
        raise refuse(get_invoice(session, tenant_id, invoice_id), "reconcile")
    if body.action == "record_reference":
        chain.append_certified(session, tenant_id, invoice_id)  # tamper evidence (issue 14)
    row = get_invoice(session, tenant_id, invoice_id)
    lifecycle_event(session, row, caller.trigger, f"invoice.reconcile.{body.action}", {"note": body.note})
    record_invoice_outcome(session, row, event=f"invoice.reconcile.{body.action}")
    return row
