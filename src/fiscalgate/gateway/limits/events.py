"""Where the breaker's `authority.down` / `authority.up` go.

Always to the audit log (kind `authority`, visible in `GET /v1/audit`), and to the webhook outbox
(`fiscalgate.gateway.webhooks.events.record_event`, h-outbox's stream) when that module is
installed: until it lands this is a no-op on that side. Both are written in the caller's
transaction, the one that records the outcome which moved the breaker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from fiscalgate.gateway.audit import service as audit

EventSink = Callable[[Session, str, str, dict[str, Any]], None]


def _outbox() -> EventSink | None:
    try:
        from fiscalgate.gateway.webhooks.events import record_event
    except ImportError:
        return None
    sink: EventSink = record_event
    return sink


def emit(session: Session, tenant_id: str, event_type: str, data: dict[str, Any]) -> None:
    audit.record_event(
        session,
        tenant_id=tenant_id,
        kind="authority",
        event=event_type,
        trigger="limits:breaker",
        authority=data.get("authority"),
        environment=data.get("environment"),
        detail=data,
    )
    outbox = _outbox()
    if outbox is not None:
        outbox(session, tenant_id, event_type, data)
