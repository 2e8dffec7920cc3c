"""The walk of one attempt, from the route (or a queue worker) to the driver and back:

    1. claim     the conditional UPDATE that makes the attempt ours          } one committed
    2. prepare   settings, invoice, original, environment, before sending    } transaction
    3. call      the authority, through a recording connection (checkpoints commit on their own)
    4. record    the outcome, the calls' audit records and the lifecycle event, in one transaction

The same four steps certify an invoice, certify a credit note and reconcile an uncertain one.
"""

from __future__ import annotations

import anyio
import anyio.to_thread

from fiscalgate.gateway.audit.transport import RecordingTransport
from fiscalgate.gateway.certification.by_hand import resolve_by_hand
from fiscalgate.gateway.certification.call import (
    Certify,
    Checkpoints,
    Reconcile,
    Request,
    call_authority,
    connect,
)
from fiscalgate.gateway.certification.claim import Attempt, EnvironmentChanged, Prepared, commit_claim
from fiscalgate.gateway.certification.outcome import Outcome, classify
from fiscalgate.gateway.certification.record import Settlement, record_and_settle
from fiscalgate.gateway.errors import Conflict, InvoiceOperationError
from fiscalgate.gateway.invoices.lifecycle import CERTIFIABLE, refuse
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.queries import invoice_status
from fiscalgate.gateway.invoices.schemas import ReconcileRequest
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller

INTERRUPTED = Outcome("unknown", "the gateway was interrupted during the call: reconcile first")


async def run_attempt(
    gw: Gateway,
    attempt: Attempt,
    request: Request,
    *,
    on_error_status: str | None = None,
    settle: Settlement | None = None,
) -> tuple[bool, InvoiceRow]:
    """Claim, prepare, call, record. Returns (claimed, row): when the invoice was not in one of
    `attempt.allowed` nothing is done and the row is returned as it is. `on_error_status`
    replaces the status a failure would lead to (a failed reconcile leaves the invoice unknown);
    `settle` runs in the recording transaction (a queue worker moves its job on there)."""
    recorder: RecordingTransport | None = None
    prepared: Prepared | None = None
    try:
        await anyio.to_thread.run_sync(commit_claim, gw, attempt)  # 1 + 2
        assert attempt.claim is not None
        if not attempt.claim.claimed:
            return False, attempt.claim.row
        if attempt.claim.error is not None:
            raise attempt.claim.error
        assert attempt.claim.prepared is not None
        prepared = attempt.claim.prepared
        connection, recorder = connect(gw, attempt.tenant_id, prepared.driver, prepared.settings)
        outcome = await call_authority(
            prepared, connection, Checkpoints(gw.db, attempt, prepared), request
        )  # 3
    except BaseException as exc:
        if not attempt.ours:  # nothing was ours: nothing to record
            raise
        if not isinstance(exc, Exception):  # cancelled: mark it unknown so nobody resends blindly
            with anyio.CancelScope(shield=True):
                interrupted = Outcome(INTERRUPTED.status, INTERRUPTED.detail)
                await gw.db.run(record_and_settle, gw.box, attempt, interrupted, recorder, prepared, settle)
            raise
        secrets = prepared.settings.secrets() if prepared else []
        outcome = classify(
            exc,
            recorder.sent_anything if recorder else False,
            secrets,
            prepared.authority if prepared else None,
        )
        if on_error_status is not None:
            outcome.status = on_error_status
    row = await gw.db.run(record_and_settle, gw.box, attempt, outcome, recorder, prepared, settle)  # 4
    if row is None:
        lost = Conflict(
            f"invoice {attempt.invoice_id} was resolved by someone else while this call ran past its "
            f"claim's expiry; this call's outcome ({outcome.status}) is in the audit log only",
            code="invoice.claim_lost",
        )
        current = await gw.db.read(invoice_status, attempt.tenant_id, attempt.invoice_id)
        raise InvoiceOperationError(lost, attempt.invoice_id, current)
    if outcome.error is not None and row.status != "certified":
        raise InvoiceOperationError(outcome.error, row.id, row.status)
    return True, row


async def certify_invoice(
    gw: Gateway, caller: Caller, tenant_id: str, invoice_id: str
) -> tuple[InvoiceRow, bool]:
    """Certify once. Returns (row, fresh): `fresh` is False when it was already certified (the
    stored certification is returned, nothing is sent)."""
    attempt = Attempt(
        tenant_id, invoice_id, caller.trigger, "invoice.certify", CERTIFIABLE, holder=gw.process_id
    )
    claimed, row = await run_attempt(gw, attempt, Certify())
    if not claimed:
        if row.status == "certified":
            return row, False
        raise refuse(row, "certify")
    return row, True


async def reconcile_invoice(
    gw: Gateway, caller: Caller, tenant_id: str, invoice_id: str, body: ReconcileRequest
) -> InvoiceRow:
    if body.action in ("record_reference", "not_certified"):
        return await gw.db.run(resolve_by_hand, caller, tenant_id, invoice_id, body)
    request = Reconcile("cancel" if body.action == "cancel" else "confirm")
    trigger = f"reconcile:{caller.trigger}"
    event = f"invoice.reconcile.{request.decision}"
    attempt = Attempt(tenant_id, invoice_id, trigger, event, ("unknown",), holder=gw.process_id)
    try:
        # Whatever goes wrong while reconciling, the original outcome is still unknown.
        claimed, row = await run_attempt(gw, attempt, request, on_error_status="unknown")
    except EnvironmentChanged as exc:  # refused before claiming: the row is as it was
        raise InvoiceOperationError(exc, invoice_id, "unknown") from None
    if not claimed:
        raise refuse(row, "reconcile")
    return row
