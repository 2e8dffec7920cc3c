"""Bulk submission: up to 1,000 neutral invoices in one call, each answered on its own.

Each invoice is created by the same code as `POST /v1/invoices` (validation, authority inference,
the driver's checks when approving, the per-tenant number rule), inside a savepoint of the
batch's one transaction: a refused invoice leaves nothing behind and never sinks the others, and
the batch, its items, its invoices (and their queue jobs) commit together or not at all.

Resubmitting the same batch is safe without any key: the invoice number is unique per tenant x
authority (`uq_invoice_number`), so an item whose number already exists with the *same content*
is answered `accepted` with the existing invoice (`existing: true`; approved and queued again if
the batch asks for it and the invoice is still `draft` / `approved` / `failed`), and one whose
number exists with *different* content is refused (`invoice.number_taken`). An `Idempotency-Key`
on the POST additionally replays the first answer as it was.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from fiscalgate.core.errors import GatewayError, Problem
from fiscalgate.core.invoice import parse_invoice
from fiscalgate.gateway.api.pagination import Keyset, Page, PageQuery, paginate
from fiscalgate.gateway.authorities import authority_code
from fiscalgate.gateway.batches.models import BatchItemRow, BatchRow
from fiscalgate.gateway.batches.queueing import enqueue
from fiscalgate.gateway.batches.schemas import (
    BatchCounts,
    BatchCreate,
    BatchInvoice,
    BatchItemOut,
    BatchOut,
    BatchSummary,
)
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import Conflict, InvalidRequest, InvoiceOperationError, NotFound
from fiscalgate.gateway.invoices import editing as invoices
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.schemas import InvoiceCreate
from fiscalgate.gateway.queue.models import JobRow
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller, get_tenant

FINAL = frozenset({"certified", "rejected"})
NEEDS_PERSON = frozenset({"unknown", "failed"})
REQUEUEABLE = ("approved", "failed")


def _error(exc: GatewayError) -> dict[str, Any]:
    problems = getattr(exc, "problems", None) or []
    return {
        "kind": type(exc).__name__,
        "code": exc.code,
        "message": exc.message,
        "problems": [p.to_dict() for p in problems],
    }


def _validation_problems(exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors():
        field = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in err.get("loc", ()))
        out.append(Problem(field.replace(".[", "[") or "(item)", str(err.get("type")), str(err.get("msg"))))
    return out


def _same_invoice(session: Session, tenant_id: str, spec: BatchInvoice) -> InvoiceRow | None:
    """The stored invoice this item repeats (same number, authority if named, and content)."""
    document = parse_invoice(spec.invoice).model_dump(mode="json", exclude_none=True)
    query = select(InvoiceRow).where(
        InvoiceRow.tenant_id == tenant_id, InvoiceRow.number == document["number"]
    )
    if spec.authority:
        query = query.where(InvoiceRow.authority == authority_code(spec.authority))
    return next((row for row in session.scalars(query) if row.document == document), None)


def _item(batch: BatchRow, position: int, outcome: str, **values: Any) -> BatchItemRow:
    return BatchItemRow(
        batch_id=batch.id, tenant_id=batch.tenant_id, position=position, outcome=outcome, **values
    )


def _submit_one(
    session: Session,
    gw: Gateway,
    caller: Caller,
    batch: BatchRow,
    position: int,
    raw: Any,
    to_certify: list[str],
) -> BatchItemRow:
    tenant_id = batch.tenant_id
    number = raw.get("invoice", {}).get("number") if isinstance(raw, dict) else None
    number = number if isinstance(number, str) else None
    try:
        spec = BatchInvoice.model_validate(raw)
    except ValidationError as exc:
        problems = _validation_problems(exc)
        error = InvalidRequest("invalid batch item: " + "; ".join(map(str, problems[:3])), problems=problems)
        return _item(batch, position, "refused", number=number, error=_error(error))
    create = InvoiceCreate(authority=spec.authority, invoice=spec.invoice, approve=batch.approve)
    try:
        with session.begin_nested():
            row = invoices.create_invoice(session, gw, caller, tenant_id, create)
    except Conflict as exc:
        if exc.code != "invoice.number_taken":
            return _item(batch, position, "refused", number=number, error=_error(exc))
        existing = _same_invoice(session, tenant_id, spec)
        if existing is None:
            return _item(batch, position, "refused", number=number, error=_error(exc))
        return _repeat(session, gw, caller, batch, position, existing, to_certify)
    except GatewayError as exc:
        return _item(batch, position, "refused", number=number, error=_error(exc))
    if batch.certify:
        to_certify.append(row.id)
    return _item(
        batch,
        position,
        "accepted",
        number=row.number,
        authority=row.authority,
        invoice_id=row.id,
        queued=batch.certify,
    )


def _repeat(
    session: Session,
    gw: Gateway,
    caller: Caller,
    batch: BatchRow,
    position: int,
    row: InvoiceRow,
    to_certify: list[str],
) -> BatchItemRow:
    """An item that repeats a stored invoice: bring it as far as this batch asks, never further."""
    status = row.status
    if batch.approve and status == "draft":
        try:
            with session.begin_nested():
                status = invoices.approve_invoice(session, gw, caller, batch.tenant_id, row.id).status
        except (GatewayError, InvoiceOperationError) as exc:
            error = exc.error if isinstance(exc, InvoiceOperationError) else exc
            return _item(
                batch,
                position,
                "refused",
                number=row.number,
                authority=row.authority,
                invoice_id=row.id,
                existing=True,
                error=_error(error),
                note="already submitted as a draft; approving it failed",
            )
    queued = batch.certify and status in REQUEUEABLE
    if queued:
        to_certify.append(row.id)
    note = f"already submitted (status {status})" + ("; queued for certification again" if queued else "")
    return _item(
        batch,
        position,
        "accepted",
        number=row.number,
        authority=row.authority,
        invoice_id=row.id,
        existing=True,
        queued=queued,
        note=note,
    )


def submit_batch(
    session: Session, gw: Gateway, caller: Caller, tenant_id: str, body: BatchCreate
) -> BatchOut:
    """Create every invoice it can and queue the accepted ones for certification (when asked);
    returns the batch as it stands."""
    if body.certify and not body.approve:
        raise InvalidRequest(
            "certify needs approve: only approved invoices can be certified",
            code="batch.certify_needs_approve",
            problems=[Problem("approve", "required", "must be true when certify is true")],
        )
    get_tenant(session, tenant_id)
    batch = BatchRow(
        tenant_id=tenant_id,
        approve=body.approve,
        certify=body.certify,
        total=len(body.invoices),
        accepted=0,
        refused=0,
        trigger=caller.trigger,
        created_at=utcnow(),
    )
    session.add(batch)
    session.flush()
    to_certify: list[str] = []
    items = [
        _submit_one(session, gw, caller, batch, position, raw, to_certify)
        for position, raw in enumerate(body.invoices)
    ]
    session.add_all(items)
    batch.accepted = sum(1 for i in items if i.outcome == "accepted")
    batch.refused = len(items) - batch.accepted
    enqueue(session, tenant_id, dict.fromkeys(to_certify))
    session.flush()
    return batch_out(session, tenant_id, batch.id)


# Whether the queue still owes the invoice something (an `unknown` being reconciled automatically
# is in progress, not waiting for a person).
_LIVE_JOB = (
    exists()
    .where(JobRow.invoice_id == BatchItemRow.invoice_id, JobRow.state != "done")
    .correlate(BatchItemRow)
    .label("live_job")
)
_ITEMS = (
    select(
        BatchItemRow,
        InvoiceRow.status,
        InvoiceRow.status_detail,
        InvoiceRow.reference,
        InvoiceRow.error,
    )
    .add_columns(_LIVE_JOB)
    .outerjoin(InvoiceRow, InvoiceRow.id == BatchItemRow.invoice_id)
    .order_by(BatchItemRow.position)
)


def batch_out(session: Session, tenant_id: str, batch_id: str) -> BatchOut:
    batch = session.get(BatchRow, batch_id)
    if batch is None or batch.tenant_id != tenant_id:
        raise NotFound(f"no batch {batch_id}", code="batch.not_found")
    rows = session.execute(_ITEMS.where(BatchItemRow.batch_id == batch_id)).all()
    items: list[BatchItemOut] = []
    counts = dict.fromkeys(
        ("certified", "rejected", "failed", "unknown", "in_progress", "waiting", "final"), 0
    )
    for item, status, detail, reference, inv_error, live in rows:
        error = item.error
        if item.outcome == "accepted" and status is not None:
            error = error or inv_error
            if status in counts:
                counts[status] += 1
            if not batch.certify or status in FINAL:
                counts["final"] += 1
            elif live:
                counts["in_progress"] += 1  # queued, retried or being reconciled by the queue
            elif status in NEEDS_PERSON:
                counts["waiting"] += 1
            else:
                counts["in_progress"] += 1
        items.append(
            BatchItemOut(
                position=item.position,
                outcome=item.outcome,
                authority=item.authority,
                number=item.number,
                invoice_id=item.invoice_id,
                existing=item.existing,
                status=status,
                status_detail=detail,
                reference=reference,
                error=error,
                note=item.note,
            )
        )
    return BatchOut(
        id=batch.id,
        status="in_progress" if counts["in_progress"] else "done",
        approve=batch.approve,
        certify=batch.certify,
        created_at=batch.created_at,
        counts=BatchCounts(
            total=batch.total,
            accepted=batch.accepted,
            refused=batch.refused,
            certified=counts["certified"],
            rejected=counts["rejected"],
            failed=counts["failed"],
            unknown=counts["unknown"],
            in_progress=counts["in_progress"],
            waiting_for_person=counts["waiting"],
            final=counts["final"],
        ),
        items=items,
    )


ORDER = Keyset(BatchRow.created_at, BatchRow.id)  # newest first


def page_batches(session: Session, tenant_id: str, q: PageQuery) -> Page[BatchSummary]:
    """A page of the tenant's batches, newest first, each with its counts (items: `batch_out`)."""
    rows, total, following = paginate(session, BatchRow, [BatchRow.tenant_id == tenant_id], q, ORDER)
    items = [BatchSummary(**batch_out(session, tenant_id, b.id).model_dump(exclude={"items"})) for b in rows]
    return Page[BatchSummary](items=items, total=total, next=following)
