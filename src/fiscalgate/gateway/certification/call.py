"""Step 3 of an attempt: call the authority, through a recording connection, and turn its answer
into an `Outcome`. No transaction is open here; the only writes are the driver's checkpoints,
each committed on its own before the driver's point of no return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx
from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from fiscalgate.authorities.base import AuthorityDriver, AuthoritySettings, Connection, Environment
from fiscalgate.core.masking import mask_mapping
from fiscalgate.gateway.audit.transport import RecordingTransport
from fiscalgate.gateway.certification.claim import Attempt, Prepared
from fiscalgate.gateway.certification.outcome import Outcome
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.runtime import Database, Gateway


@dataclass(frozen=True)
class Certify:
    """Ask the authority to certify the invoice (or the credit note against its original)."""


@dataclass(frozen=True)
class Reconcile:
    """Ask the authority what became of an uncertain call, and settle it (`decision`)."""

    decision: Literal["confirm", "cancel"] = "confirm"


Request = Certify | Reconcile


def connect(
    gw: Gateway, tenant_id: str, driver: AuthorityDriver, settings: AuthoritySettings
) -> tuple[Connection, RecordingTransport]:
    """The connection for one call (the tenant's in-process simulator, or the network, checked)
    and the recorder that keeps every request and response of it for the audit log. Certification
    and the read-only tools (gateway/tools) both connect through here."""
    inner: httpx.AsyncBaseTransport
    if settings.environment == Environment.MOCK and not settings.base_url:
        inner, base_url = gw.simulator_connection(tenant_id, driver, settings)
    else:
        inner, base_url = gw.network_transport(), driver.base_url(settings)
    recorder = RecordingTransport(inner, settings.secrets())
    connection = Connection(
        base_url=base_url,
        environment=settings.environment,
        transport=recorder,
        timeout=settings.timeout_seconds,
    )
    return connection, recorder


_SAVE_CHECKPOINT = (
    update(InvoiceRow)
    .where(InvoiceRow.id == bindparam("invoice_id"), InvoiceRow.claim_token == bindparam("token"))
    .values(
        checkpoint=bindparam("p_checkpoint", type_=InvoiceRow.checkpoint.type), updated_at=bindparam("now")
    )
    .execution_options(synchronize_session=False)
)


def save_checkpoint(session: Session, invoice_id: str, token: str, checkpoint: dict[str, Any]) -> None:
    # One conditional UPDATE, no read: while the claim is ours nothing else writes the checkpoint,
    # so the caller's merged copy is the stored value (`checkpoint` is the whole new value).
    session.execute(
        _SAVE_CHECKPOINT,
        {"invoice_id": invoice_id, "token": token, "p_checkpoint": checkpoint, "now": utcnow()},
    )


class Checkpoints:
    """The driver's `checkpoint` callback: each call merges its data (masked) into what this
    attempt saved so far and commits it, only while the claim is ours."""

    def __init__(self, db: Database, attempt: Attempt, prepared: Prepared) -> None:
        self._db = db
        self._invoice_id = attempt.invoice_id
        self._token = attempt.token
        self._secrets = prepared.settings.secrets()
        self._saved = dict(prepared.checkpoint)

    async def __call__(self, data: dict[str, Any]) -> None:
        merged = {**self._saved, **mask_mapping(data, self._secrets)}
        await self._db.run(save_checkpoint, self._invoice_id, self._token, merged)
        self._saved = merged


async def call_authority(
    prepared: Prepared, connection: Connection, checkpoints: Checkpoints, request: Request
) -> Outcome:
    """Send `request`; a failure raises (the driver's error, classified by the caller)."""
    driver = prepared.driver
    if isinstance(request, Reconcile):
        result = await driver.reconcile(
            prepared.invoice,
            prepared.settings,
            connection,
            prepared.checkpoint,
            original=prepared.original,
            decision=request.decision,
        )
        if result.status == "certified" and result.certification is not None:
            return Outcome(
                "certified", result.detail or "certified (reconciled)", certification=result.certification
            )
        if result.status == "not_certified":
            return Outcome(
                "failed", f"not certified (reconciled): {result.detail}; it can be certified again"
            )
        return Outcome(
            "unknown",
            f"the authority cannot tell: {result.detail}. "
            "Check its portal, then record_reference or not_certified",
        )
    # The driver validates first (its InvoiceError is classified "rejected", nothing sent).
    if prepared.original is not None:
        cert = await driver.credit_note(
            prepared.invoice, prepared.original, prepared.settings, connection, checkpoint=checkpoints
        )
    else:
        cert = await driver.certify(prepared.invoice, prepared.settings, connection, checkpoint=checkpoints)
    return Outcome("certified", f"certified by {driver.code}", certification=cert)
