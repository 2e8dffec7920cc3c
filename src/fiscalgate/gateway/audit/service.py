"""The audit log: authority calls, settings changes, lifecycle events; listing and replay."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, insert, update
from sqlalchemy.orm import Session

from fiscalgate.gateway.api.pagination import Keyset, paginate
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.audit.schemas import AuditFilter
from fiscalgate.gateway.audit.transport import CallRecord
from fiscalgate.gateway.crypto import SecretBox
from fiscalgate.gateway.db import new_id, utcnow
from fiscalgate.gateway.errors import NotFound


def record_event(
    session: Session,
    *,
    tenant_id: str | None,
    kind: str,
    event: str,
    trigger: str,
    authority: str | None = None,
    invoice_id: str | None = None,
    environment: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        tenant_id=tenant_id,
        kind=kind,
        event=event,
        trigger=trigger,
        authority=authority,
        invoice_id=invoice_id,
        environment=environment,
        detail=detail,
        created_at=utcnow(),
    )
    session.add(entry)
    return entry


IN_FLIGHT = "in flight"

# Written by the claiming transaction (certification/claim.py), before anything is sent, so a call
# cut short by a crash still has its entry; the recording transaction completes it.
_OPEN_CALL = insert(AuditEntry).values(
    id=bindparam("id"),
    tenant_id=bindparam("tenant_id"),
    kind="authority_call",
    event=bindparam("event"),
    trigger=bindparam("trigger"),
    authority=bindparam("authority"),
    invoice_id=bindparam("invoice_id"),
    environment=bindparam("environment"),
    url=bindparam("url"),
    outcome=IN_FLIGHT,
    detail=bindparam("detail", type_=AuditEntry.detail.type),
    created_at=bindparam("now"),
)
_COMPLETE_CALL = (
    update(AuditEntry)
    .where(AuditEntry.id == bindparam("entry_id"), AuditEntry.outcome == IN_FLIGHT)
    .execution_options(synchronize_session=False)
)
_CALL_FIELDS = (
    "method",
    "url",
    "request_headers",
    "request_body",
    "response_status",
    "response_headers",
    "response_body",
    "duration_ms",
    "outcome",
    "detail",
    "sealed_request",
    "created_at",
)
_COMPLETE_WITH_CALL = _COMPLETE_CALL.values(
    {name: bindparam(f"p_{name}", type_=AuditEntry.__table__.c[name].type) for name in _CALL_FIELDS}
)
# Nothing was sent after all (FNE's reconcile has no look-up, the driver refused first...): the
# entry goes, so `authority_call` entries stay exactly the calls made.
_DROP_UNSENT = delete(AuditEntry).where(
    AuditEntry.id == bindparam("entry_id"), AuditEntry.outcome == IN_FLIGHT
)


INTERRUPTED = "interrupted"
# The healing sweep (queue/healing.py) closes the entry of a call whose process died during it:
# the log then says the call may have reached the authority and nobody saw its answer.
_CLOSE_INTERRUPTED = (
    update(AuditEntry)
    .where(
        AuditEntry.invoice_id == bindparam("b_invoice"),
        AuditEntry.kind == "authority_call",
        AuditEntry.outcome == IN_FLIGHT,
    )
    .values(outcome=INTERRUPTED)
    .execution_options(synchronize_session=False)
)


def close_interrupted(session: Session, invoice_id: str) -> int:
    """Mark the invoice's calls still `in flight` as `interrupted` (their process is dead); returns
    how many. Called in the transaction that turns the abandoned claim into `unknown`."""
    return int(session.execute(_CLOSE_INTERRUPTED, {"b_invoice": invoice_id}).rowcount or 0)  # type: ignore[attr-defined]


def open_call(
    session: Session,
    *,
    tenant_id: str,
    authority: str,
    environment: str,
    trigger: str,
    invoice_id: str,
    event: str,
    url: str | None,
    started_at: datetime,
    holder: str | None,
) -> str:
    """The entry of a call about to leave (outcome `in flight`): which invoice, to which authority
    and environment, by whom, since when. The request itself is built by the driver afterwards;
    `record_calls` completes this entry with the first request and its answer."""
    entry_id = new_id()
    session.execute(
        _OPEN_CALL,
        {
            "id": entry_id,
            "tenant_id": tenant_id,
            "event": event,
            "trigger": trigger,
            "authority": authority,
            "invoice_id": invoice_id,
            "environment": environment,
            "url": url,
            "detail": {"operation_started_at": started_at.isoformat(), "holder": holder},
            "now": started_at,
        },
    )
    return entry_id


def record_calls(
    session: Session,
    box: SecretBox,
    records: list[CallRecord],
    *,
    tenant_id: str,
    authority: str,
    environment: str,
    trigger: str,
    invoice_id: str | None,
    event: str,
    started_at: datetime,
    in_flight: str | None = None,
) -> list[AuditEntry]:
    """One entry per call. `in_flight`: the entry `open_call` wrote before the calls, completed
    with the first one (or, when nothing was sent, deleted: no call, no entry)."""
    entries = []
    for i, record in enumerate(records):
        values: dict[str, Any] = {
            "method": record.method,
            "url": record.url,
            "request_headers": record.request_headers,
            "request_body": record.request_body,
            "response_status": record.response_status,
            "response_headers": record.response_headers,
            "response_body": record.response_body,
            "duration_ms": record.duration_ms,
            "outcome": record.outcome,
            # The call's own time is `created_at`; the operation it belonged to started here.
            "detail": {**record.extra, "operation_started_at": started_at.isoformat()},
            "sealed_request": box.seal(record.exact),
            "created_at": record.at,
        }
        if i == 0 and in_flight is not None:
            params = {f"p_{name}": value for name, value in values.items()}
            session.execute(_COMPLETE_WITH_CALL, {"entry_id": in_flight, **params})
            continue
        entry = AuditEntry(
            tenant_id=tenant_id,
            kind="authority_call",
            event=event,
            trigger=trigger,
            authority=authority,
            invoice_id=invoice_id,
            environment=environment,
            **values,
        )
        session.add(entry)
        entries.append(entry)
    if not records and in_flight is not None:
        session.execute(_DROP_UNSENT, {"entry_id": in_flight})
    return entries


ORDER = Keyset(AuditEntry.created_at, AuditEntry.id)  # newest first


def _conditions(tenant_id: str, f: AuditFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [AuditEntry.tenant_id == tenant_id]
    if f.authority:  # already a code: `ci-fne` or its module `fne` were accepted (AuditFilter)
        where.append(AuditEntry.authority == f.authority)
    if f.invoice_id:
        where.append(AuditEntry.invoice_id == f.invoice_id)
    if f.kind:
        where.append(AuditEntry.kind == f.kind)
    if f.since:
        where.append(AuditEntry.created_at >= f.since)
    if f.until:
        where.append(AuditEntry.created_at < f.until)
    if f.status == "error":
        where.append((AuditEntry.response_status.is_(None)) | (AuditEntry.response_status >= 400))
    elif f.status == "ok":
        where.append(AuditEntry.response_status < 400)
    elif f.status is not None:
        where.append(AuditEntry.response_status == int(f.status))
    return where


def page_entries(
    session: Session, tenant_id: str, f: AuditFilter
) -> tuple[list[AuditEntry], int, str | None]:
    """A page of the tenant's audit log matching `f`, newest first: (entries, total, next cursor)."""
    return paginate(session, AuditEntry, _conditions(tenant_id, f), f, ORDER)


def list_entries(session: Session, tenant_id: str, f: AuditFilter) -> list[AuditEntry]:
    """The entries of one page only (the console pages with `limit` + `offset`)."""
    return page_entries(session, tenant_id, f)[0]


def get_entry(session: Session, tenant_id: str, entry_id: str) -> AuditEntry:
    entry = session.get(AuditEntry, entry_id)
    if entry is None or entry.tenant_id != tenant_id:
        raise NotFound(f"no audit entry {entry_id}", code="audit.not_found")
    return entry
