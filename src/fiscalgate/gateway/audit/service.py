"""The audit log: authority calls, settings changes, lifecycle events; listing and replay."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from fiscalgate.gateway.api.pagination import Keyset, paginate
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.audit.schemas import AuditFilter
from fiscalgate.gateway.audit.transport import CallRecord
from fiscalgate.gateway.crypto import SecretBox
from fiscalgate.gateway.db import utcnow
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
) -> list[AuditEntry]:
    entries = []
    for record in records:
        entry = AuditEntry(
            tenant_id=tenant_id,
            kind="authority_call",
            event=event,
            trigger=trigger,
            authority=authority,
            invoice_id=invoice_id,
            environment=environment,
            method=record.method,
            url=record.url,
            request_headers=record.request_headers,
            request_body=record.request_body,
            response_status=record.response_status,
            response_headers=record.response_headers,
            response_body=record.response_body,
            duration_ms=record.duration_ms,
            outcome=record.outcome,
            # The call's own time is `created_at`; the operation it belonged to started here.
            detail={**record.extra, "operation_started_at": started_at.isoformat()},
            sealed_request=box.seal(record.exact),
            created_at=record.at,
        )
        session.add(entry)
        entries.append(entry)
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
