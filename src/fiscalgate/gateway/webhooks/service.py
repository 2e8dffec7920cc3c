"""Webhook endpoints and their deliveries (no HTTP here: see router.py and dispatcher.py)."""

from __future__ import annotations

import secrets

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from fiscalgate.core.errors import Problem
from fiscalgate.core.masking import mask_secret
from fiscalgate.gateway.api.pagination import Keyset, Page, PageQuery, page_of, paginate
from fiscalgate.gateway.audit.service import record_event as audit
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import Conflict, InvalidRequest, NotFound
from fiscalgate.gateway.metrics import after_commit
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller
from fiscalgate.gateway.webhooks.events import EVENT_TYPES, wake_dispatchers
from fiscalgate.gateway.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from fiscalgate.gateway.webhooks.schemas import (
    AttemptOut,
    DeliveryFilter,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)
from fiscalgate.gateway.webhooks.urls import validate_url

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _events(requested: list[str]) -> list[str]:
    problems = [
        Problem(f"events[{i}]", "unknown_event", f"unknown event {name!r}; known: {', '.join(EVENT_TYPES)}")
        for i, name in enumerate(requested)
        if name not in EVENT_TYPES
    ]
    if problems:
        raise InvalidRequest(
            "unknown event names: " + ", ".join(repr(requested[int(p.field[7:-1])]) for p in problems),
            code="webhook.unknown_event",
            problems=problems,
        )
    return list(dict.fromkeys(requested))


def webhook_out(row: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        url=row.url,
        events=list(row.events),
        secret=row.secret_masked,
        description=row.description,
        created_at=row.created_at,
    )


def create_endpoint(
    session: Session, gw: Gateway, caller: Caller, tenant_id: str, body: WebhookCreate
) -> WebhookCreated:
    url = validate_url(body.url)
    events = _events(body.events)
    secret = body.secret or new_secret()
    row = WebhookEndpoint(
        tenant_id=tenant_id,
        url=url,
        events=events,
        secret_sealed=gw.box.seal({"secret": secret}),
        secret_masked=mask_secret(secret),
        description=body.description,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit(
        session,
        tenant_id=tenant_id,
        kind="webhook",
        event="webhook.created",
        trigger=caller.trigger,
        detail={"webhook_id": row.id, "url": url, "events": events, "secret": row.secret_masked},
    )
    return WebhookCreated(**{**webhook_out(row).model_dump(), "secret": secret})


ENDPOINTS = Keyset(WebhookEndpoint.created_at, WebhookEndpoint.id, newest_first=False)  # oldest first
DELIVERIES = Keyset(WebhookDelivery.created_at, WebhookDelivery.id)  # newest first


def list_endpoints(session: Session, tenant_id: str, q: PageQuery) -> Page[WebhookOut]:
    rows = paginate(session, WebhookEndpoint, [WebhookEndpoint.tenant_id == tenant_id], q, ENDPOINTS)
    return page_of(*rows, webhook_out)


def get_endpoint(session: Session, tenant_id: str, webhook_id: str) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, webhook_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"no webhook {webhook_id}", code="webhook.not_found")
    return row


def delete_endpoint(session: Session, caller: Caller, tenant_id: str, webhook_id: str) -> None:
    """Delete the endpoint with its deliveries (pending ones are never sent)."""
    row = get_endpoint(session, tenant_id, webhook_id)
    session.delete(row)
    audit(
        session,
        tenant_id=tenant_id,
        kind="webhook",
        event="webhook.deleted",
        trigger=caller.trigger,
        detail={"webhook_id": webhook_id, "url": row.url},
    )


def _delivery_out(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        webhook_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status in ("pending", "delivering") else None,
        last_attempt_at=row.last_attempt_at,
        response_status=row.response_status,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
        attempt_log=[
            AttemptOut(
                number=a.number,
                trigger=a.trigger,
                started_at=a.started_at,
                duration_ms=a.duration_ms,
                response_status=a.response_status,
                response_excerpt=a.response_excerpt,
                error=a.error,
            )
            for a in attempts
        ],
    )


def _with_attempts(session: Session, rows: list[WebhookDelivery]) -> list[DeliveryOut]:
    log: dict[str, list[WebhookAttempt]] = {r.id: [] for r in rows}
    if rows:
        for attempt in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(log)))
            .order_by(WebhookAttempt.number)
        ):
            log[attempt.delivery_id].append(attempt)
    return [_delivery_out(r, log[r.id]) for r in rows]


def list_deliveries(
    session: Session, tenant_id: str, webhook_id: str, f: DeliveryFilter
) -> Page[DeliveryOut]:
    get_endpoint(session, tenant_id, webhook_id)
    where: list[ColumnElement[bool]] = [
        WebhookDelivery.tenant_id == tenant_id,
        WebhookDelivery.endpoint_id == webhook_id,
    ]
    if f.status:
        where.append(WebhookDelivery.status == f.status)
    rows, total, following = paginate(session, WebhookDelivery, where, f, DELIVERIES)
    return Page[DeliveryOut](items=_with_attempts(session, rows), total=total, next=following)


def get_delivery(session: Session, tenant_id: str, delivery_id: str) -> WebhookDelivery:
    row = session.get(WebhookDelivery, delivery_id, populate_existing=True)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"no webhook delivery {delivery_id}", code="webhook_delivery.not_found")
    return row


def redeliver(session: Session, caller: Caller, tenant_id: str, delivery_id: str) -> DeliveryOut:
    """Queue the delivery again now, with a fresh retry budget (whatever its status, unless it is
    being sent at this moment)."""
    row = get_delivery(session, tenant_id, delivery_id)
    now = utcnow()
    moved = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.tenant_id == tenant_id,
            WebhookDelivery.status != "delivering",
        )
        .values(status="pending", round_attempts=0, next_attempt_at=now, manual=True)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if moved != 1:
        raise Conflict(
            f"delivery {delivery_id} is being sent right now; look at it again in a moment",
            code="webhook_delivery.in_progress",
        )
    audit(
        session,
        tenant_id=tenant_id,
        kind="webhook",
        event="webhook.redeliver",
        trigger=caller.trigger,
        detail={"delivery_id": delivery_id, "webhook_id": row.endpoint_id, "previous_status": row.status},
    )
    after_commit(session, wake_dispatchers)
    row = get_delivery(session, tenant_id, delivery_id)
    return _with_attempts(session, [row])[0]
