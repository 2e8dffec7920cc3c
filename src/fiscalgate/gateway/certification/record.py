"""Step 4 of an attempt: record the outcome on the invoice, with the audit records of the calls
and the lifecycle event, in one transaction, only while the claim is still ours."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fiscalgate.core.certification import Certification
from fiscalgate.core.masking import mask_mapping
from fiscalgate.gateway import chain
from fiscalgate.gateway.audit.service import record_calls, record_event
from fiscalgate.gateway.audit.transport import RecordingTransport
from fiscalgate.gateway.certification.claim import Attempt, Prepared
from fiscalgate.gateway.certification.outcome import Outcome
from fiscalgate.gateway.crypto import SecretBox
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.invoices.lifecycle import lifecycle_event, update_returning
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.queries import get_invoice
from fiscalgate.gateway.webhooks.events import record_invoice_outcome

_REFERENCE_HELD = select(InvoiceRow.id).where(
    InvoiceRow.tenant_id == bindparam("tenant_id"),
    InvoiceRow.authority == bindparam("authority"),
    InvoiceRow.environment == bindparam("environment"),
    InvoiceRow.reference == bindparam("reference"),
    InvoiceRow.id != bindparam("invoice_id"),
)


class Settlement(Protocol):
    """What else changes with the outcome, in its transaction (a queue job moving on); returns the
    outcome to record (a retry is recorded as `queued`)."""

    def __call__(self, session: Session, attempt: Attempt, outcome: Outcome) -> Outcome: ...


def record_and_settle(
    session: Session,
    box: SecretBox,
    attempt: Attempt,
    outcome: Outcome,
    recorder: RecordingTransport | None,
    prepared: Prepared | None,
    settle: Settlement | None,
) -> InvoiceRow | None:
    """Step 4 with the caller's settlement, in one transaction."""
    if settle is not None:
        outcome = settle(session, attempt, outcome)
    return record_outcome(session, box, attempt, outcome, recorder, prepared)


def reference_clash(cert: Certification, holder: str) -> dict[str, Any]:
    return {
        "status": "unknown",
        "status_detail": f"the authority answered reference {cert.reference}, already held by {holder}",
        "raw_response": cert.model_dump(mode="json"),
    }


def record_outcome(
    session: Session,
    box: SecretBox,
    attempt: Attempt,
    outcome: Outcome,
    recorder: RecordingTransport | None,
    prepared: Prepared | None,
) -> InvoiceRow | None:
    """Write the attempt's outcome and its audit records; None when the claim was no longer ours
    (the audit records and a `<event>.claim_lost` event are written all the same)."""
    tenant_id, invoice_id = attempt.tenant_id, attempt.invoice_id
    if prepared is not None and not outcome.checkpoint:
        # Both were fixed by the claiming transaction and cannot change while the claim is ours.
        authority: str = prepared.authority
        environment: str | None = prepared.environment
        stored_checkpoint = None
    else:
        current = get_invoice(session, tenant_id, invoice_id)
        authority, environment, stored_checkpoint = current.authority, current.environment, current.checkpoint
    values: dict[str, Any] = {
        "status": outcome.status,
        "status_detail": outcome.detail,
        "claim_token": None,
        "claim_holder": None,
        "claim_expires_at": None,
    }
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
            values.update(reference_clash(cert, f"invoice {clash}"))
        else:
            total = cert.totals.get("total")
            values.update(
                reference=cert.reference,
                # The authority's answer is stored once, in `raw_response`; the certification's
                # `raw` is read back from there (`invoices.queries.certification_out`).
                certification=cert.model_dump(mode="json", exclude={"raw"}),
                certified_at=cert.certified_at,
                certified_total=total,
                raw_response=cert.raw or None,
                error=None,
            )
    elif outcome.error is not None:
        secrets = prepared.settings.secrets() if prepared is not None else []
        values.update(
            error=mask_mapping({**outcome.error.to_dict(), "raw": outcome.raw}, secrets),
            raw_response=outcome.raw,
        )
    if outcome.checkpoint:
        values["checkpoint"] = {**(stored_checkpoint or {}), **outcome.checkpoint}
    ours = (InvoiceRow.status == "submitting") & (InvoiceRow.claim_token == attempt.token)
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
        return update_returning(
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
        values.update(reference_clash(cert, "another invoice"))
        row = land(values)
    if (recorder is not None or attempt.in_flight is not None) and environment is not None:
        record_calls(
            session,
            box,
            recorder.records if recorder is not None else [],
            tenant_id=tenant_id,
            authority=authority,
            environment=environment,
            trigger=attempt.trigger,
            invoice_id=invoice_id,
            event=attempt.event,
            started_at=attempt.started_at,
            in_flight=attempt.in_flight,
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
            event=f"{attempt.event}.claim_lost",
            trigger=attempt.trigger,
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
    lifecycle_event(
        session,
        row,
        attempt.trigger,
        attempt.event,
        {
            "status": row.status,
            "reference": row.reference,
            "error": outcome.error.code if outcome.error else None,
        },
    )
    durations = [r.duration_ms for r in recorder.records] if recorder is not None else []
    record_invoice_outcome(
        session,
        row,
        event=attempt.event,
        settings=prepared and prepared.settings,
        call_durations_ms=durations,
    )
    return row
