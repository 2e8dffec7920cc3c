"""The invoice lifecycle: create, edit, approve, certify, credit, reconcile.

    draft -> approved -> submitting -> certified | rejected | unknown | failed

Every transition is one conditional UPDATE (`... WHERE status IN (...)`) whose row count decides
whether it happened, so the database, not an `if` in memory, arbitrates between concurrent calls:
of two certify calls on one invoice exactly one moves it to `submitting`, and only that one calls
the authority. No transaction is held open during the authority call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import anyio
import anyio.to_thread
import httpx
from sqlalchemy import Select, bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from fiscalgate.authorities import descriptor
from fiscalgate.authorities.base import (
    AuthorityDriver,
    AuthoritySettings,
    Connection,
    Environment,
    Reconciliation,
)
from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import (
    AlreadyCertified,
    AuthorityError,
    ConfigurationError,
    GatewayError,
    InvoiceError,
    InvoiceRejected,
    OutcomeUnknown,
    Problem,
)
from fiscalgate.core.invoice import Invoice, InvoiceKind, parse_invoice
from fiscalgate.core.masking import mask_mapping, mask_text
from fiscalgate.gateway import chain
from fiscalgate.gateway.audit.service import record_calls, record_event
from fiscalgate.gateway.audit.transport import RecordingTransport
from fiscalgate.gateway.authorities import authority_code, available_authorities
from fiscalgate.gateway.db import new_id, utcnow
from fiscalgate.gateway.errors import (
    Conflict,
    DriverFailedAfterSending,
    InvalidRequest,
    InvoiceOperationError,
    NotFound,
)
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.schemas import (
    CreditNoteCreate,
    InvoiceCreate,
    InvoiceFilter,
    InvoiceOut,
    ReconcileRequest,
)
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.settings.models import AuthorityConfig
from fiscalgate.gateway.settings.service import load_settings, load_tenant_settings, require_available
from fiscalgate.gateway.tenants.models import Tenant
from fiscalgate.gateway.tenants.service import Caller, get_tenant
from fiscalgate.gateway.webhooks.events import record_invoice_outcome

# Where a certification attempt may start from. `failed` means nothing was certified (the authority
# was unreachable, refused our credentials, or a reconcile said "not certified"): safe to retry.
CERTIFIABLE = ("approved", "failed")
EDITABLE = ("draft", "approved", "rejected", "failed")
DELETABLE = ("draft", "approved", "rejected", "failed")
# How long a `submitting` claim may last before it counts as abandoned (its process died: kill -9,
# OOM, a deploy). Longer than any live attempt: SFEC's worst case is 300 s per try x max_attempts,
# plus backoff. Past it, reconciling turns the claim into `unknown` (never back into certifiable).
CLAIM_LEASE = timedelta(minutes=30)
STALE_DETAIL = "the process handling the call stopped: reconcile"


class DriverFailure(GatewayError):
    """The driver raised something outside the error tree (a bug): classified here, once."""

    default_code = "driver.failed"


# --- reading ------------------------------------------------------------------------------------
def _is_stale(row: InvoiceRow) -> bool:
    return row.status == "submitting" and row.updated_at < utcnow() - CLAIM_LEASE


def invoice_out(row: InvoiceRow) -> InvoiceOut:
    detail = row.status_detail
    if _is_stale(row):
        detail = f"stale: no outcome after {CLAIM_LEASE}; {STALE_DETAIL} (it may be certified)"
    return InvoiceOut(
        id=row.id,
        authority=row.authority,
        number=row.number,
        kind=row.kind,
        status=row.status,
        status_detail=detail,
        original_id=row.original_id,
        environment=row.environment,
        reference=row.reference,
        certification=row.certification,
        certified_at=row.certified_at,
        error=row.error,
        raw_response=row.raw_response,
        checkpoint=row.checkpoint,
        attempts=row.attempts,
        invoice=row.document,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def get_invoice(session: Session, tenant_id: str, invoice_id: str) -> InvoiceRow:
    row = session.get(InvoiceRow, invoice_id, populate_existing=True)
    if row is None or row.tenant_id != tenant_id:
        # Another tenant's invoice is "not found", never "forbidden": ids must not leak.
        raise NotFound(f"no invoice {invoice_id}", code="invoice.not_found")
    return row


def list_invoices(session: Session, tenant_id: str, f: InvoiceFilter) -> list[InvoiceRow]:
    query: Select[InvoiceRow] = select(InvoiceRow).where(InvoiceRow.tenant_id == tenant_id)
    if f.status:
        query = query.where(InvoiceRow.status == f.status)
    if f.authority:
        query = query.where(InvoiceRow.authority == authority_code(f.authority))
    if f.kind:
        query = query.where(InvoiceRow.kind == f.kind)
    if f.number:
        query = query.where(InvoiceRow.number == f.number)
    if f.original_id:
        query = query.where(InvoiceRow.original_id == f.original_id)
    if f.created_after:
        query = query.where(InvoiceRow.created_at >= f.created_after)
    if f.created_before:
        query = query.where(InvoiceRow.created_at < f.created_before)
    query = query.order_by(InvoiceRow.created_at.desc(), InvoiceRow.id).limit(f.limit).offset(f.offset)
    return list(session.scalars(query))


# --- creating and editing -----------------------------------------------------------------------
def _parse(data: dict[str, Any]) -> Invoice:
    try:
        return parse_invoice(data)
    except InvoiceError as exc:
        # Paths relative to the request body, where the invoice sits under "invoice".
        raise InvoiceError(
            [Problem(f"invoice.{p.field}", p.rule, p.message, p.expected) for p in exc.problems]
        ) from None


def _document(invoice: Invoice) -> dict[str, Any]:
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
    invoice = _parse(body.invoice)
    if invoice.kind is InvoiceKind.CREDIT_NOTE:
        raise InvalidRequest(
            "create a credit note with POST /v1/invoices/{original_id}/credit-notes",
            code="invoice.credit_note_via_original",
            problems=[Problem("invoice.kind", "credit_note", "credit notes are created from their original")],
        )
    authority = _pick_authority(session, gw, tenant, body.authority, invoice)
    if body.approve:
        _validate_for_approval(session, gw, tenant, authority, invoice)
    return _insert(
        session, caller, tenant_id, authority, invoice, None, "approved" if body.approve else "draft"
    )


_NUMBER_TAKEN = select(InvoiceRow.id).where(
    InvoiceRow.tenant_id == bindparam("tenant_id"),
    InvoiceRow.authority == bindparam("authority"),
    InvoiceRow.number == bindparam("number"),
)


def _insert(
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
        document=_document(invoice),
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
    _event(session, row, caller.trigger, "invoice.created", {"status": status})
    return row


def _event(session: Session, row: InvoiceRow, trigger: str, event: str, detail: dict[str, Any]) -> None:
    record_event(
        session,
        tenant_id=row.tenant_id,
        kind="lifecycle",
        event=event,
        trigger=trigger,
        authority=row.authority,
        invoice_id=row.id,
        environment=row.environment,
        detail=detail,
    )


def _refuse(row: InvoiceRow, action: str) -> InvoiceOperationError:
    """The 409 for an action the invoice's status does not allow; the body names the invoice and
    the status it is in."""
    hints = {
        "certified": "a certified invoice is final: issue a credit note to correct it",
        "submitting": "a call to the authority is in progress for it",
        "unknown": "its last certification attempt has an unknown outcome: reconcile it first",
        "draft": "approve it first",
        "rejected": "fix it (PUT) and approve it again",
    }
    hint = hints.get(row.status, "")
    if _is_stale(row):
        hint = f"its call has had no outcome for over {CLAIM_LEASE} (its process stopped?): reconcile it"
    conflict = Conflict(
        f"cannot {action} invoice {row.id} in status {row.status!r}" + (f": {hint}" if hint else ""),
        code=f"invoice.cannot_{action.replace(' ', '_')}.{row.status}",
    )
    return InvoiceOperationError(conflict, row.id, row.status)


def _transition(
    session: Session, tenant_id: str, invoice_id: str, allowed: tuple[str, ...], **values: Any
) -> bool:
    result = session.execute(
        update(InvoiceRow)
        .where(InvoiceRow.id == invoice_id, InvoiceRow.tenant_id == tenant_id, InvoiceRow.status.in_(allowed))
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


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
    invoice = _parse(data)
    if invoice.kind.value != row.kind:
        raise InvalidRequest(f"an invoice's kind cannot change ({row.kind})", code="invoice.kind_fixed")
    if invoice.number != row.number:
        raise InvalidRequest("an invoice's number cannot change", code="invoice.number_fixed")
    if not _transition(
        session, tenant_id, invoice_id, EDITABLE, document=_document(invoice), status="draft", error=None
    ):
        raise _refuse(get_invoice(session, tenant_id, invoice_id), "edit")
    row = get_invoice(session, tenant_id, invoice_id)
    _event(session, row, caller.trigger, "invoice.edited", {})
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
        raise _refuse(get_invoice(session, tenant_id, invoice_id), "delete")
    _event(session, row, caller.trigger, "invoice.deleted", {"number": row.number})


def approve_invoice(
    session: Session, gw: Gateway, caller: Caller, tenant_id: str, invoice_id: str
) -> InvoiceRow:
    row = get_invoice(session, tenant_id, invoice_id)
    if row.status != "draft":
        raise _refuse(row, "approve")
    tenant = get_tenant(session, tenant_id)
    _validate_for_approval(session, gw, tenant, row.authority, Invoice.model_validate(row.document))
    if not _transition(session, tenant_id, invoice_id, ("draft",), status="approved"):
        raise _refuse(get_invoice(session, tenant_id, invoice_id), "approve")
    row = get_invoice(session, tenant_id, invoice_id)
    _event(session, row, caller.trigger, "invoice.approved", {})
    return row


# --- credit notes -------------------------------------------------------------------------------
def _credited_so_far(session: Session, original_id: str) -> dict[int, Decimal]:
    credited: dict[int, Decimal] = {}
    rows = session.scalars(
        select(InvoiceRow).where(InvoiceRow.original_id == original_id, InvoiceRow.status != "rejected")
    )
    for row in rows:
        for line in Invoice.model_validate(row.document).lines:
            if line.original_line is not None:
                credited[line.original_line] = credited.get(line.original_line, Decimal(0)) + line.quantity
    return credited


def build_credit_note(
    original: Invoice, reference: str | None, body: CreditNoteCreate, credited: dict[int, Decimal]
) -> Invoice:
    """The neutral credit note for `body.lines` of `original` (all that is left when omitted)."""
    requested = body.lines
    wanted: list[tuple[int, Decimal | None]]
    if requested is None:
        wanted = [(i, None) for i in range(1, len(original.lines) + 1)]
    else:
        wanted = [(line.original_line, line.quantity) for line in requested]
    problems: list[Problem] = []
    lines: list[dict[str, Any]] = []
    seen: set[int] = set()
    for pos, (index, quantity) in enumerate(wanted):
        where = f"lines[{pos}]"
        if index > len(original.lines):
            problems.append(
                Problem(
                    f"{where}.original_line", "out_of_range", f"the original has {len(original.lines)} lines"
                )
            )
            continue
        if index in seen:
            problems.append(Problem(f"{where}.original_line", "duplicate", f"line {index} is listed twice"))
            continue
        seen.add(index)
        source = original.lines[index - 1]
        left = source.quantity - credited.get(index, Decimal(0))
        qty = left if quantity is None else quantity
        if left <= 0:
            if requested is not None:
                problems.append(
                    Problem(f"{where}.quantity", "already_credited", f"line {index} is fully credited")
                )
            continue
        if qty > left:
            problems.append(
                Problem(
                    f"{where}.quantity",
                    "exceeds_original",
                    f"only {left} of line {index} is left to credit",
                    expected=f"<= {left}",
                )
            )
            continue
        line = source.model_dump(mode="json", exclude_none=True)
        line["quantity"] = str(qty)
        line["original_line"] = index
        if source.discount is not None and source.discount.kind == "amount":
            # An amount discount applies to the whole line: credit its share.
            line["discount"] = {"kind": "amount", "value": str(source.discount.value * qty / source.quantity)}
        lines.append(line)
    if not lines and not problems:
        problems.append(
            Problem("lines", "nothing_to_credit", "every line of the original is already credited")
        )
    if problems:
        raise InvoiceError(problems)
    doc = original.model_dump(mode="json", exclude_none=True)
    doc.update(
        number=body.number,
        kind=InvoiceKind.CREDIT_NOTE.value,
        lines=lines,
        original={"number": original.number, **({"reference": reference} if reference else {})},
        issued_at=(body.issued_at or utcnow()).isoformat(),
        # The original's payment amounts do not apply to a part of it; keep how it was paid.
        payments=[{"method": p.method.value} for p in original.payments[:1]],
    )
    doc.pop("due_date", None)
    if original.discount is not None and original.discount.kind == "amount":
        share = sum(
            (Decimal(line["quantity"]) * Decimal(str(line["unit_price"])) for line in lines), Decimal(0)
        )
        total = sum((li.gross for li in original.lines), Decimal(0))
        doc["discount"] = {
            "kind": "amount",
            "value": str(original.discount.value * share / total) if total else "0",
        }
    if body.reason:
        doc["notes"] = body.reason
    return _parse(doc)


_LOCK_INVOICE = (
    select(InvoiceRow.id)
    .where(InvoiceRow.id == bindparam("invoice_id"), InvoiceRow.tenant_id == bindparam("p_tenant_id"))
    .with_for_update()
)


def create_credit_note(
    session: Session, caller: Caller, tenant_id: str, original_id: str, body: CreditNoteCreate
) -> InvoiceRow:
    # Lock the original first: two concurrent credit notes would otherwise both read "nothing
    # credited yet" (PostgreSQL, READ COMMITTED). SQLite's BEGIN IMMEDIATE already serialises.
    session.execute(_LOCK_INVOICE, {"invoice_id": original_id, "p_tenant_id": tenant_id})
    original = get_invoice(session, tenant_id, original_id)
    if original.kind == InvoiceKind.CREDIT_NOTE.value:
        raise Conflict("a credit note cannot itself be credited", code="credit_note.of_credit_note")
    if original.status != "certified" or original.certification is None:
        raise Conflict(
            f"only a certified invoice can be credited; invoice {original_id} is {original.status!r}",
            code="credit_note.original_not_certified",
        )
    # Refused here rather than by the platform later (the descriptor's credit-note rules).
    if descriptor(original.authority).credit_notes.one_per_invoice:
        existing = session.scalar(
            select(InvoiceRow.number).where(
                InvoiceRow.original_id == original_id, InvoiceRow.status != "rejected"
            )
        )
        if existing is not None:
            raise Conflict(
                f"{original.authority} accepts one credit note per invoice and {existing} already credits it",
                code="credit_note.one_per_invoice",
            )
    credit = build_credit_note(
        Invoice.model_validate(original.document),
        original.reference,
        body,
        _credited_so_far(session, original_id),
    )
    row = _insert(
        session,
        caller,
        tenant_id,
        original.authority,
        credit,
        original.id,
        "approved" if body.approve else "draft",
    )
    return row


# --- certification --------------------------------------------------------------------------------
# One certification attempt is three short transactions, each committed on its own:
#   1. claim + prepare: the conditional UPDATE that makes the attempt ours, then the settings it
#      will use (and the environment recorded on the row), all before anything is sent;
#   2. each checkpoint the driver asks for, before its point of no return;
#   3. finish: the outcome, the audit records of the calls and the lifecycle event.
# (It used to be five: claiming and preparing were apart, and finishing re-read the row twice.)
# The statements every certification runs, built once: constructing a SQLAlchemy statement (and
# its cache key) costs about as much as executing it. Values arrive as bound parameters.
def _claim_statement(fresh: bool) -> Any:
    # A fresh submission (from approved/failed) starts with an empty checkpoint: what an earlier,
    # settled attempt recorded (an e-MECeF uid since cancelled, say) must not steer a later
    # reconciliation. Reconciling an `unknown` invoice keeps its checkpoint: that is its input.
    return (
        update(InvoiceRow)
        .where(
            InvoiceRow.id == bindparam("invoice_id"),
            InvoiceRow.tenant_id == bindparam("p_tenant_id"),
            InvoiceRow.status.in_(bindparam("allowed", expanding=True)),
        )
        .values(
            updated_at=bindparam("now"),
            status="submitting",
            claim_token=bindparam("token"),
            attempts=InvoiceRow.attempts + 1,
            **({"checkpoint": {}} if fresh else {}),
        )
        .execution_options(synchronize_session=False)
    )


def _with_returning(stmt: Any) -> tuple[Any, Any]:
    """`stmt`, and `stmt` returning the updated row (for databases with RETURNING)."""
    return stmt, stmt.returning(InvoiceRow).execution_options(populate_existing=True)


_CLAIM_FRESH = _with_returning(_claim_statement(fresh=True))
_CLAIM_KEEP_CHECKPOINT = _with_returning(_claim_statement(fresh=False))
_SET_ENVIRONMENT = (
    update(InvoiceRow)
    .where(InvoiceRow.id == bindparam("invoice_id"))
    .values(environment=bindparam("p_environment"))
    .execution_options(synchronize_session=False)
)
_SAVE_CHECKPOINT = (
    update(InvoiceRow)
    .where(InvoiceRow.id == bindparam("invoice_id"), InvoiceRow.claim_token == bindparam("token"))
    .values(
        checkpoint=bindparam("p_checkpoint", type_=InvoiceRow.checkpoint.type), updated_at=bindparam("now")
    )
    .execution_options(synchronize_session=False)
)
_REFERENCE_HELD = select(InvoiceRow.id).where(
    InvoiceRow.tenant_id == bindparam("tenant_id"),
    InvoiceRow.authority == bindparam("authority"),
    InvoiceRow.environment == bindparam("environment"),
    InvoiceRow.reference == bindparam("reference"),
    InvoiceRow.id != bindparam("invoice_id"),
)


@dataclass
class _Call:
    driver: AuthorityDriver
    settings: AuthoritySettings
    invoice: Invoice
    original: Certification | None
    checkpoint: dict[str, Any]
    authority: str
    environment: str


@dataclass
class _Claim:
    """What the claiming transaction found and committed."""

    row: InvoiceRow  # after the claim when it is ours, else the row as it stands
    claimed: bool
    call: _Call | None = None
    # Why the claimed invoice cannot be sent (no settings, say): it becomes the attempt's outcome.
    error: Exception | None = None


def _update_returning(
    session: Session, invoice_id: str, stmt: Any, params: dict[str, Any] | None = None
) -> InvoiceRow | None:
    """Run a conditional `UPDATE invoices` and return the updated row (None when the WHERE did not
    match), fresh from the database, in one statement where the database has RETURNING. `stmt` is
    a statement or a pair from `_with_returning`."""
    plain, returning = stmt if isinstance(stmt, tuple) else _with_returning(stmt)
    if session.get_bind().dialect.update_returning:
        return session.scalars(returning, params).one_or_none()
    if session.execute(plain, params).rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(InvoiceRow, invoice_id, populate_existing=True)


class EnvironmentChanged(ConfigurationError):
    """The settings now point at another environment than the one an uncertain call went to."""

    default_code = "reconcile.environment_changed"


def _prepare(session: Session, gw: Gateway, tenant_id: str, row: InvoiceRow, reconciling: bool) -> _Call:
    """Everything the call needs; it raises before writing anything, so a failure here leaves the
    claim (committed with it) as the only change."""
    driver, settings = load_tenant_settings(session, gw, tenant_id, row.authority)
    environment = settings.environment.value
    if reconciling and row.environment is not None and row.environment != environment:
        # Only the environment the uncertain call went to can tell what became of it: asking
        # another one would read "not found" as "not certified" and allow a second certification.
        raise EnvironmentChanged(
            f"invoice {row.id} was sent to the {row.environment} environment, but the {row.authority} "
            f"settings now point at {environment}: switch them back to {row.environment} to reconcile "
            "(or resolve it by hand: record_reference or not_certified)",
        )
    original = None
    if row.original_id is not None:
        source = get_invoice(session, tenant_id, row.original_id)
        if source.certification is None:
            raise ConfigurationError(
                "the original invoice lost its certification", code="credit_note.original"
            )
        original = Certification.model_validate(source.certification)
        certified_in = source.environment or original.environment
        if certified_in != environment:
            # The original exists only where it was certified; e-MECeF and FNE drivers check this
            # too, SFEC's does not, so the gateway refuses for every authority.
            raise ConfigurationError(
                f"the original invoice {source.number} was certified in the {certified_in} environment "
                f"but the {row.authority} settings now point at {environment}: a credit note must go "
                f"to the environment of its original ({certified_in})",
                code="credit_note.original_environment",
            )
    invoice = Invoice.model_validate(row.document)
    if row.environment != environment:
        session.execute(_SET_ENVIRONMENT, {"invoice_id": row.id, "p_environment": environment})
    return _Call(driver, settings, invoice, original, dict(row.checkpoint or {}), row.authority, environment)


def _claim_and_prepare(
    session: Session, gw: Gateway, tenant_id: str, invoice_id: str, token: str, allowed: tuple[str, ...]
) -> _Claim:
    reconciling = "unknown" in allowed
    if reconciling:
        _expire_stale_claim(session, tenant_id, invoice_id)
    row = _claim(session, tenant_id, invoice_id, token, allowed)
    if row is None:
        return _Claim(get_invoice(session, tenant_id, invoice_id), claimed=False)
    try:
        return _Claim(row, claimed=True, call=_prepare(session, gw, tenant_id, row, reconciling))
    except (SQLAlchemyError, EnvironmentChanged):
        raise  # roll the claim back too: nothing happened, the row stays as it was
    except Exception as exc:
        return _Claim(row, claimed=True, error=exc)


def _connection(gw: Gateway, tenant_id: str, call: _Call) -> tuple[Connection, RecordingTransport]:
    """The connection for one call and its recorder."""
    settings = call.settings
    inner: httpx.AsyncBaseTransport
    if settings.environment == Environment.MOCK and not settings.base_url:
        inner, base_url = gw.simulator_connection(tenant_id, call.driver, settings)
    else:
        inner, base_url = gw.network_transport(), call.driver.base_url(settings)
    recorder = RecordingTransport(inner, settings.secrets())
    connection = Connection(
        base_url=base_url,
        environment=settings.environment,
        transport=recorder,
        timeout=settings.timeout_seconds,
    )
    return connection, recorder


@dataclass
class _Outcome:
    status: str
    detail: str
    certification: Certification | None = None
    error: GatewayError | None = None
    raw: Any = None
    checkpoint: dict[str, Any] | None = None


def _masked(exc: GatewayError, secrets: list[str]) -> GatewayError:
    """A copy of `exc` with every secret masked in its texts (message, authority message, problems,
    raw). A copy, because the driver may keep and raise its exception object again elsewhere."""
    if not secrets:
        return exc
    copy = type(exc).__new__(type(exc))
    copy.__dict__.update(exc.__dict__)
    copy.message = mask_text(exc.message, secrets)
    copy.args = (copy.message,)
    if isinstance(getattr(exc, "authority_message", None), str):
        copy.authority_message = mask_text(exc.authority_message, secrets)  # type: ignore[attr-defined]
    problems = getattr(exc, "problems", None)
    if problems:
        copy.problems = [  # type: ignore[attr-defined]
            Problem(
                p.field,
                p.rule,
                mask_text(p.message, secrets),
                None if p.expected is None else mask_text(p.expected, secrets),
            )
            for p in problems
        ]
    if getattr(exc, "raw", None) is not None:
        copy.raw = mask_mapping(exc.raw, secrets)  # type: ignore[attr-defined]
    return copy


def _classify(exc: BaseException, sent: bool, secrets: list[str], authority: str | None) -> _Outcome:
    """The one place an authority call's failure becomes an invoice status. Secrets the driver
    quoted anywhere in its error (h11 quotes a bad header value, say) are masked here, before the
    error is stored, audited or answered."""
    if isinstance(exc, GatewayError):
        exc = _masked(exc, secrets)
    raw = mask_mapping(getattr(exc, "raw", None), secrets)
    if isinstance(exc, InvoiceError):
        return _Outcome("rejected", "refused by our validation before sending: fix the invoice", error=exc)
    if isinstance(exc, AlreadyCertified):
        return _Outcome(
            "unknown",
            "the authority says it is already certified: reconcile to adopt its certification",
            error=exc,
            raw=raw,
        )
    if isinstance(exc, OutcomeUnknown):
        return _Outcome(
            "unknown",
            "no answer after sending: it may be certified; reconcile before anything else",
            error=exc,
            raw=raw,
            checkpoint=exc.checkpoint,
        )
    if isinstance(exc, AuthorityError):
        if isinstance(exc, InvoiceRejected):
            return _Outcome("rejected", "refused by the authority: fix the invoice", error=exc, raw=raw)
        if exc.retryable:
            return _Outcome("failed", "not certified; retryable: certify again later", error=exc, raw=raw)
        return _Outcome("failed", "not certified: fix the settings, then certify again", error=exc, raw=raw)
    if isinstance(exc, ConfigurationError):
        return _Outcome("failed", "not certified: fix the settings, then certify again", error=exc)
    text = mask_text(f"the authority driver failed: {type(exc).__name__}: {exc}", secrets)
    if sent and authority is not None:
        # A request left before the bug: the authority may have certified it. The error says
        # "reconcile" (not "fix the input"), like a timeout after sending.
        return _Outcome(
            "unknown",
            "the driver failed after sending a request: reconcile first",
            error=DriverFailedAfterSending(text, authority=authority),
        )
    return _Outcome("failed", "the driver failed before sending anything", error=DriverFailure(text))


def _reference_clash(cert: Certification, holder: str) -> dict[str, Any]:
    return {
        "status": "unknown",
        "status_detail": f"the authority answered reference {cert.reference}, already held by {holder}",
        "raw_response": cert.model_dump(mode="json"),
    }


def _finish(
    session: Session,
    gw: Gateway,
    tenant_id: str,
    invoice_id: str,
    token: str,
    outcome: _Outcome,
    recorder: RecordingTransport | None,
    trigger: str,
    event: str,
    started_at: datetime,
    call: _Call | None,
) -> InvoiceRow | None:
    """Write the attempt's outcome and its audit records; None when the claim was no longer ours
    (the audit records and a `<event>.claim_lost` event are written all the same)."""
    if call is not None and not outcome.checkpoint:
        # Both were fixed by the claiming transaction and cannot change while the claim is ours.
        authority: str = call.authority
        environment: str | None = call.environment
        stored_checkpoint = None
    else:
        current = get_invoice(session, tenant_id, invoice_id)
        authority, environment, stored_checkpoint = current.authority, current.environment, current.checkpoint
    values: dict[str, Any] = {"status": outcome.status, "status_detail": outcome.detail, "claim_token": None}
    cert = outcome.certification
    if cert is not None:
        clash = session.scalar(
            _REFERENCE_HELD,
            {
                "tenant_id": tenant_id,
                "authority": authority,
                "environment": environment,
                "reference": cert.reference,
                "invoice_id": invoice_id,
            },
        )
        if clash is not None:
            values.update(_reference_clash(cert, f"invoice {clash}"))
        else:
            total = cert.totals.get("total")
            values.update(
                reference=cert.reference,
                certification=cert.model_dump(mode="json"),
                certified_at=cert.certified_at,
                certified_total=total,
                raw_response=cert.raw or None,
                error=None,
            )
    elif outcome.error is not None:
        secrets = call.settings.secrets() if call is not None else []
        values.update(
            error=mask_mapping({**outcome.error.to_dict(), "raw": outcome.raw}, secrets),
            raw_response=outcome.raw,
        )
    if outcome.checkpoint:
        values["checkpoint"] = {**(stored_checkpoint or {}), **outcome.checkpoint}
    ours = (InvoiceRow.status == "submitting") & (InvoiceRow.claim_token == token)
    if "reference" in values:
        # A slow but alive attempt whose claim was declared abandoned (CLAIM_LEASE) still writes
        # the reference it got, unless the invoice has been claimed or certified since: the
        # authority's answer is the fact, even over a hand-made "not certified" (`failed`), which
        # would otherwise lead to a second certification.
        ours = ours | (
            InvoiceRow.status.in_(("unknown", "failed"))
            & InvoiceRow.claim_token.is_(None)
            & InvoiceRow.reference.is_(None)
        )

    def land(values: dict[str, Any]) -> InvoiceRow | None:
        return _update_returning(
            session,
            invoice_id,
            update(InvoiceRow)
            .where(InvoiceRow.id == invoice_id, ours)
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False),
        )

    try:
        with session.begin_nested():
            row = land(values)
    except IntegrityError:
        if cert is None or "reference" not in values:
            raise
        # Another invoice took this reference between our check and our write (PostgreSQL, READ
        # COMMITTED): the same answer as a clash seen by the check.
        for key in ("reference", "certification", "certified_at", "certified_total", "error"):
            values.pop(key, None)
        values.update(_reference_clash(cert, "another invoice"))
        row = land(values)
    if recorder is not None and environment is not None:
        record_calls(
            session,
            gw.box,
            recorder.records,
            tenant_id=tenant_id,
            authority=authority,
            environment=environment,
            trigger=trigger,
            invoice_id=invoice_id,
            event=event,
            started_at=started_at,
        )
    if row is not None and row.status == "certified":
        chain.append_certified(session, tenant_id, invoice_id)  # tamper evidence (issue 14)
    if row is None:
        # Our claim was declared abandoned (CLAIM_LEASE) and the invoice resolved since. The
        # outcome is not written over that, but this transaction still commits the calls' audit
        # records and says what was lost; the caller raises after the commit.
        record_event(
            session,
            tenant_id=tenant_id,
            kind="lifecycle",
            event=f"{event}.claim_lost",
            trigger=trigger,
            authority=authority,
            invoice_id=invoice_id,
            environment=environment,
            detail={
                "status": outcome.status,
                "detail": outcome.detail,
                "reference": cert.reference if cert is not None else None,
                "error": outcome.error.code if outcome.error else None,
            },
        )
        return None
    _event(
        session,
        row,
        trigger,
        event,
        {
            "status": row.status,
            "reference": row.reference,
            "error": outcome.error.code if outcome.error else None,
        },
    )
    durations = [r.duration_ms for r in recorder.records] if recorder is not None else []
    record_invoice_outcome(
        session, row, event=event, settings=call and call.settings, call_durations_ms=durations
    )
    return row


_EXPIRE_STALE_CLAIM = (
    update(InvoiceRow)
    .where(
        InvoiceRow.id == bindparam("invoice_id"),
        InvoiceRow.tenant_id == bindparam("p_tenant_id"),
        InvoiceRow.status == "submitting",
        InvoiceRow.updated_at < bindparam("cutoff"),
    )
    .values(status="unknown", claim_token=None, status_detail=STALE_DETAIL, updated_at=bindparam("now"))
    .execution_options(synchronize_session=False)
)


def _expire_stale_claim(session: Session, tenant_id: str, invoice_id: str) -> None:
    """A claim older than CLAIM_LEASE was left by a process that died: its outcome is unknown.
    Run where a human or a reconcile is about to resolve the invoice, never before a certify."""
    now = utcnow()
    session.execute(
        _EXPIRE_STALE_CLAIM,
        {"invoice_id": invoice_id, "p_tenant_id": tenant_id, "cutoff": now - CLAIM_LEASE, "now": now},
    )


def _claim(
    session: Session, tenant_id: str, invoice_id: str, token: str, allowed: tuple[str, ...]
) -> InvoiceRow | None:
    """Make the attempt ours (status in `allowed` -> submitting); the claimed row, or None."""
    return _update_returning(
        session,
        invoice_id,
        _CLAIM_KEEP_CHECKPOINT if "unknown" in allowed else _CLAIM_FRESH,
        {
            "invoice_id": invoice_id,
            "p_tenant_id": tenant_id,
            "allowed": list(allowed),
            "now": utcnow(),
            "token": token,
        },
    )


def _save_checkpoint(session: Session, invoice_id: str, token: str, checkpoint: dict[str, Any]) -> None:
    # One conditional UPDATE, no read: while the claim is ours nothing else writes the checkpoint,
    # so the caller's merged copy is the stored value (`checkpoint` is the whole new value).
    session.execute(
        _SAVE_CHECKPOINT,
        {"invoice_id": invoice_id, "token": token, "p_checkpoint": checkpoint, "now": utcnow()},
    )


async def _run_claimed(
    gw: Gateway,
    caller: Caller,
    tenant_id: str,
    invoice_id: str,
    allowed: tuple[str, ...],
    event: str,
    action: Any,
    on_error_status: str | None = None,
) -> tuple[bool, InvoiceRow]:
    """Claim the invoice (status in `allowed`) and prepare, call the authority through
    `action(call, connection, checkpoint)`, record the outcome. Returns (claimed, row): when the
    invoice was not in an `allowed` status nothing is done and the row is returned as it is."""
    token = new_id()
    started_at = utcnow()
    recorder: RecordingTransport | None = None
    secrets: list[str] = []
    claim: _Claim | None = None
    call: _Call | None = None

    def claim_unit() -> None:
        # Assigned in the worker thread once committed, so a caller cancelled meanwhile still
        # knows the claim is its own (and marks it unknown below instead of leaving it stuck).
        nonlocal claim
        claim = gw.db.call(_claim_and_prepare, gw, tenant_id, invoice_id, token, allowed)

    try:
        await anyio.to_thread.run_sync(claim_unit)
        assert claim is not None
        if not claim.claimed:
            return False, claim.row
        if claim.error is not None:
            raise claim.error
        assert claim.call is not None
        call = claim.call
        secrets = call.settings.secrets()
        connection, recorder = _connection(gw, tenant_id, call)
        saved = dict(call.checkpoint)

        async def checkpoint(data: dict[str, Any]) -> None:
            nonlocal saved
            merged = {**saved, **mask_mapping(data, secrets)}
            await gw.db.run(_save_checkpoint, invoice_id, token, merged)
            saved = merged

        outcome: _Outcome = await action(call, connection, checkpoint)
    except BaseException as exc:
        if claim is None or not claim.claimed:  # nothing was ours: nothing to record
            raise
        if not isinstance(exc, Exception):  # cancelled: mark it unknown so nobody resends blindly
            with anyio.CancelScope(shield=True):
                await gw.db.run(
                    _finish,
                    gw,
                    tenant_id,
                    invoice_id,
                    token,
                    _Outcome("unknown", "the gateway was interrupted during the call: reconcile first"),
                    recorder,
                    caller.trigger,
                    event,
                    started_at,
                    call,
                )
            raise
        outcome = _classify(
            exc, recorder.sent_anything if recorder else False, secrets, call.authority if call else None
        )
        if on_error_status is not None:
            outcome.status = on_error_status
    finished = await gw.db.run(
        _finish, gw, tenant_id, invoice_id, token, outcome, recorder, caller.trigger, event, started_at, call
    )
    if finished is None:
        current = await gw.db.read(lambda s: get_invoice(s, tenant_id, invoice_id).status)
        lost = Conflict(
            f"invoice {invoice_id} was resolved by someone else while this call ran past its lease "
            f"({CLAIM_LEASE}); this call's outcome ({outcome.status}) is in the audit log only",
            code="invoice.claim_lost",
        )
        raise InvoiceOperationError(lost, invoice_id, current)
    row = finished
    if outcome.error is not None and row.status != "certified":
        raise InvoiceOperationError(outcome.error, row.id, row.status)
    return True, row


async def certify_invoice(
    gw: Gateway, caller: Caller, tenant_id: str, invoice_id: str
) -> tuple[InvoiceRow, bool]:
    """Certify once. Returns (row, fresh): `fresh` is False when it was already certified (the
    stored certification is returned, nothing is sent)."""

    async def action(call: _Call, connection: Connection, checkpoint: Any) -> _Outcome:
        problems = call.driver.validate(call.invoice, call.settings)
        if problems:
            raise InvoiceError(problems)
        if call.original is not None:
            cert = await call.driver.credit_note(
                call.invoice, call.original, call.settings, connection, checkpoint=checkpoint
            )
        else:
            cert = await call.driver.certify(call.invoice, call.settings, connection, checkpoint=checkpoint)
        return _Outcome("certified", f"certified by {call.driver.code}", certification=cert)

    claimed, row = await _run_claimed(
        gw, caller, tenant_id, invoice_id, CERTIFIABLE, "invoice.certify", action
    )
    if not claimed:
        if row.status == "certified":
            return row, False
        raise _refuse(row, "certify")
    return row, True


# --- reconciliation -------------------------------------------------------------------------------
def _reference_taken(reference: str, holder: str) -> Conflict:
    return Conflict(f"reference {reference} is already held by {holder}", code="reference.taken")


def _resolve_by_hand(
    session: Session, caller: Caller, tenant_id: str, invoice_id: str, body: ReconcileRequest
) -> InvoiceRow:
    _expire_stale_claim(session, tenant_id, invoice_id)
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
            moved = _transition(session, tenant_id, invoice_id, ("unknown",), **values)
    except IntegrityError:
        if body.action != "record_reference":
            raise
        raise _reference_taken(body.reference or "", "another invoice") from None
    if not moved:
        raise _refuse(get_invoice(session, tenant_id, invoice_id), "reconcile")
    if body.action == "record_reference":
        chain.append_certified(session, tenant_id, invoice_id)  # tamper evidence (issue 14)
    row = get_invoice(session, tenant_id, invoice_id)
    _event(session, row, caller.trigger, f"invoice.reconcile.{body.action}", {"note": body.note})
    record_invoice_outcome(session, row, event=f"invoice.reconcile.{body.action}")
    return row


async def reconcile_invoice(
    gw: Gateway, caller: Caller, tenant_id: str, invoice_id: str, body: ReconcileRequest
) -> InvoiceRow:
    if body.action in ("record_reference", "not_certified"):
        return await gw.db.run(_resolve_by_hand, caller, tenant_id, invoice_id, body)
    decision: Literal["confirm", "cancel"] = "cancel" if body.action == "cancel" else "confirm"

    async def action(call: _Call, connection: Connection, _checkpoint: Any) -> _Outcome:
        result: Reconciliation = await call.driver.reconcile(
            call.invoice,
            call.settings,
            connection,
            call.checkpoint,
            original=call.original,
            decision=decision,
        )
        if result.status == "certified" and result.certification is not None:
            return _Outcome(
                "certified", result.detail or "certified (reconciled)", certification=result.certification
            )
        if result.status == "not_certified":
            return _Outcome(
                "failed", f"not certified (reconciled): {result.detail}; it can be certified again"
            )
        return _Outcome(
            "unknown",
            f"the authority cannot tell: {result.detail}. "
            "Check its portal, then record_reference or not_certified",
        )

    # Whatever goes wrong while reconciling, the original outcome is still unknown.
    try:
        claimed, row = await _run_claimed(
            gw,
            Caller(caller.tenant_id, f"reconcile:{caller.trigger}"),
            tenant_id,
            invoice_id,
            ("unknown",),
            f"invoice.reconcile.{decision}",
            action,
            on_error_status="unknown",
        )
    except EnvironmentChanged as exc:  # refused before claiming: the row is as it was
        raise InvoiceOperationError(exc, invoice_id, "unknown") from None
    if not claimed:
        raise _refuse(row, "reconcile")
    return row
