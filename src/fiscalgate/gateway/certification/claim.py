"""Steps 1 and 2 of an attempt, in one committed transaction: claim the invoice, then prepare
everything the call needs (driver, settings, the neutral invoice, the original of a credit note,
the environment recorded on the row), all before anything is sent.

The statements every certification runs are built once: constructing a SQLAlchemy statement (and
its cache key) costs about as much as executing it. Values arrive as bound parameters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, bindparam, or_, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from fiscalgate.authorities.base import AuthorityDriver, AuthoritySettings, Environment
from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import ConfigurationError
from fiscalgate.core.invoice import Invoice
from fiscalgate.core.masking import mask_mapping
from fiscalgate.gateway.audit.service import open_call
from fiscalgate.gateway.db import new_id, utcnow
from fiscalgate.gateway.invoices import lifecycle
from fiscalgate.gateway.invoices.lifecycle import CLAIM_LEASE, STALE_DETAIL, update_returning, with_returning
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.queries import get_invoice
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.settings.service import load_tenant_settings

# A process whose heartbeat is older than this is dead (queue/healing.py beats every few seconds).
DEAD_AFTER = float(os.environ.get("FISCALGATE_DEAD_AFTER_SECONDS") or 10.0)


@dataclass
class Prepared:
    """Everything one call to the authority needs, fixed by the claiming transaction."""

    driver: AuthorityDriver
    settings: AuthoritySettings
    invoice: Invoice
    original: Certification | None  # the original's certification, for a credit note
    checkpoint: dict[str, Any]
    authority: str
    environment: str


@dataclass
class Claim:
    """What the claiming transaction found and committed."""

    row: InvoiceRow  # after the claim when it is ours, else the row as it stands
    claimed: bool
    prepared: Prepared | None = None
    # Why the claimed invoice cannot be sent (no settings, say): it becomes the attempt's outcome.
    error: Exception | None = None


@dataclass
class Attempt:
    """One attempt on one invoice: who asked, from which statuses, under which audit event."""

    tenant_id: str
    invoice_id: str
    trigger: str
    event: str  # "invoice.certify", "invoice.reconcile.confirm"...
    allowed: tuple[str, ...]  # the statuses the claim may start from
    token: str = field(default_factory=new_id)
    holder: str | None = None  # the process making the attempt (None: no heartbeat, expiry only)
    started_at: datetime = field(default_factory=utcnow)
    # Set once the claim is committed, so a caller cancelled meanwhile still knows the claim is its
    # own (and settles it as unknown instead of leaving it stuck).
    claim: Claim | None = None
    # The audit entry written `in flight` with the claim (issue 14): the recording transaction
    # completes it with the first call; after a crash it stays, saying a call may have left.
    in_flight: str | None = None

    @property
    def reconciling(self) -> bool:
        return "unknown" in self.allowed

    @property
    def ours(self) -> bool:
        return self.claim is not None and self.claim.claimed


class EnvironmentChanged(ConfigurationError):
    """The settings now point at another environment than the one an uncertain call went to."""

    default_code = "reconcile.environment_changed"


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
            claim_holder=bindparam("holder"),
            claim_expires_at=bindparam("expires"),
            attempts=InvoiceRow.attempts + 1,
            **({"checkpoint": {}} if fresh else {}),
        )
        .execution_options(synchronize_session=False)
    )


_CLAIM_FRESH = with_returning(_claim_statement(fresh=True))
_CLAIM_KEEP_CHECKPOINT = with_returning(_claim_statement(fresh=False))
_SET_CALL = (
    update(InvoiceRow)
    .where(InvoiceRow.id == bindparam("invoice_id"))
    .values(environment=bindparam("p_environment"), claim_expires_at=bindparam("expires"))
    .execution_options(synchronize_session=False)
)
_DEAD_HOLDERS = text(
    "SELECT id FROM gateway_processes WHERE stopped_at IS NOT NULL OR heartbeat_at < :dead_before"
)
_EXPIRE_ABANDONED_CLAIM = (
    update(InvoiceRow)
    .where(
        InvoiceRow.id == bindparam("invoice_id"),
        InvoiceRow.tenant_id == bindparam("p_tenant_id"),
        InvoiceRow.status == "submitting",
        or_(
            InvoiceRow.claim_expires_at < bindparam("now"),
            InvoiceRow.claim_expires_at.is_(None) & (InvoiceRow.updated_at < bindparam("cutoff")),
            InvoiceRow.claim_holder.in_(_DEAD_HOLDERS.columns(id=String)),
        ),
    )
    .values(
        status="unknown",
        claim_token=None,
        claim_holder=None,
        status_detail=STALE_DETAIL,
        updated_at=bindparam("now"),
    )
    .execution_options(synchronize_session=False)
)


def expire_stale_claim(session: Session, tenant_id: str, invoice_id: str) -> None:
    """A claim past its expiry, or held by a dead process, was abandoned: its outcome is unknown.
    Run where a human or a reconcile is about to resolve the invoice, never before a certify."""
    now = utcnow()
    session.execute(
        _EXPIRE_ABANDONED_CLAIM,
        {
            "invoice_id": invoice_id,
            "p_tenant_id": tenant_id,
            "now": now,
            "cutoff": now - CLAIM_LEASE,
            "dead_before": now - timedelta(seconds=DEAD_AFTER),
        },
    )


def claim(
    session: Session,
    tenant_id: str,
    invoice_id: str,
    token: str,
    allowed: tuple[str, ...],
    holder: str | None = None,
) -> InvoiceRow | None:
    """Make the attempt ours (status in `allowed` -> submitting, held by `holder` until the upper
    bound `CLAIM_LEASE`, which `prepare` narrows); the claimed row, or None."""
    now = utcnow()
    return update_returning(
        session,
        invoice_id,
        _CLAIM_KEEP_CHECKPOINT if "unknown" in allowed else _CLAIM_FRESH,
        {
            "invoice_id": invoice_id,
            "p_tenant_id": tenant_id,
            "allowed": list(allowed),
            "now": now,
            "token": token,
            "holder": holder,
            "expires": now + CLAIM_LEASE,
        },
    )


def prepare(session: Session, gw: Gateway, tenant_id: str, row: InvoiceRow, reconciling: bool) -> Prepared:
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
        stored = source.certification
        if "raw" not in stored and isinstance(source.raw_response, dict):
            stored = {**stored, "raw": source.raw_response}  # stored once, beside it (record.py)
        original = Certification.model_validate(stored)
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
    # The claim's real expiry, from this tenant's timeout and attempts (and the environment).
    expires = utcnow() + lifecycle.claim_lease(settings)
    session.execute(_SET_CALL, {"invoice_id": row.id, "p_environment": environment, "expires": expires})
    return Prepared(
        driver, settings, invoice, original, dict(row.checkpoint or {}), row.authority, environment
    )


def claim_and_prepare(session: Session, gw: Gateway, attempt: Attempt) -> Claim:
    """Steps 1 and 2 in one transaction. An invoice not in an allowed status is returned as it is
    (`claimed=False`); a claimed one that cannot be sent carries the reason as `error`."""
    if attempt.reconciling:
        expire_stale_claim(session, attempt.tenant_id, attempt.invoice_id)
    row = claim(
        session, attempt.tenant_id, attempt.invoice_id, attempt.token, attempt.allowed, attempt.holder
    )
    if row is None:
        return Claim(get_invoice(session, attempt.tenant_id, attempt.invoice_id), claimed=False)
    try:
        prepared = prepare(session, gw, attempt.tenant_id, row, attempt.reconciling)
    except (SQLAlchemyError, EnvironmentChanged):
        raise  # roll the claim back too: nothing happened, the row stays as it was
    except Exception as exc:
        return Claim(row, claimed=True, error=exc)
    attempt.in_flight = open_call(
        session,
        tenant_id=attempt.tenant_id,
        authority=prepared.authority,
        environment=prepared.environment,
        trigger=attempt.trigger,
        invoice_id=attempt.invoice_id,
        event=attempt.event,
        url=_base_url(prepared),
        started_at=attempt.started_at,
        holder=attempt.holder,
    )
    return Claim(row, claimed=True, prepared=prepared)


def _base_url(prepared: Prepared) -> str | None:
    """Where the call goes, as far as it is known before the driver builds it (None: `mock`'s
    in-process simulator)."""
    settings = prepared.settings
    if settings.environment == Environment.MOCK and not settings.base_url:
        return None
    try:
        url: str = mask_mapping(prepared.driver.base_url(settings), settings.secrets())
        return url
    except Exception:  # a settings problem surfaces in the call itself, with its own error
        return None


def commit_claim(gw: Gateway, attempt: Attempt) -> None:
    """Run steps 1 and 2 in their transaction; `attempt.claim` is set only once it has committed.
    Runs in a worker thread (`anyio.to_thread`), which finishes even if its caller is cancelled."""
    attempt.claim = gw.db.call(claim_and_prepare, gw, attempt)
