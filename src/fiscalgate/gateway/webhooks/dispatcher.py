"""Sending webhook deliveries: claim, sign, POST, record, retry with backoff.

Runs as a background task in every gateway process (`fiscalgate serve`, and any worker process
that starts it). Several processes may run it on one database:
- **claim**: one transaction selects due deliveries (`pending` and due, or `delivering` whose
  lease ran out: its sender died) with `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite has one
  writer: its `BEGIN IMMEDIATE` serialises the claims), then marks them `delivering` with a claim
  token and a lease, by a conditional UPDATE that repeats the selection's condition;
- **send** outside any transaction;
- **record** the attempt and the delivery's new state in one transaction, only while the claim is
  still ours (`claim_token`), so a sender that outlived its lease cannot overwrite its successor.

A delivery is therefore sent *at least once*; the `Fiscalgate-Event-Id` header lets a receiver
drop a duplicate.

Every request carries `Fiscalgate-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret,
f"{t}.{body}")>` where body is the exact bytes sent. The README shows the receiver's check.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio
import httpx
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from fiscalgate.authorities.http import guarded_transport
from fiscalgate.core.errors import ConfigurationError
from fiscalgate.gateway.db import new_id, utcnow
from fiscalgate.gateway.metrics import WEBHOOK_ATTEMPTS, after_commit
from fiscalgate.gateway.netpolicy import UrlNotAllowed
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.webhooks.events import add_waker, remove_waker
from fiscalgate.gateway.webhooks.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from fiscalgate.gateway.webhooks.urls import check_destination

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Fiscalgate-Signature"
EVENT_ID_HEADER = "Fiscalgate-Event-Id"
USER_AGENT = "fiscalgate-webhooks/1"
EXCERPT = 500  # characters of the receiver's answer kept in the attempt log
DISPATCHER_ENV = "FISCALGATE_WEBHOOK_DISPATCHER"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be > 0, not {raw!r}")
    return value


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try. The defaults span about a day and a half: 30 s, 1 min, 2 min ... capped
    at 6 h between attempts, 16 attempts, each delay drawn at random between half and all of it
    (jitter: receivers coming back up are not hit by every gateway at once)."""

    max_attempts: int = 16
    base_delay: float = 30.0
    max_delay: float = 6 * 3600.0
    timeout: float = 10.0
    batch: int = 20  # deliveries in flight at once in one process
    poll_interval: float = 1.0  # when nothing woke the dispatcher

    @property
    def lease(self) -> float:
        """A claim older than this is taken over (its sender died): well past one request."""
        return self.timeout * 3 + 30

    @classmethod
    def from_env(cls) -> DeliveryPolicy:
        return cls(
            max_attempts=int(_env_number("FISCALGATE_WEBHOOK_MAX_ATTEMPTS", cls.max_attempts)),
            base_delay=_env_number("FISCALGATE_WEBHOOK_RETRY_BASE_SECONDS", cls.base_delay),
            max_delay=_env_number("FISCALGATE_WEBHOOK_RETRY_MAX_SECONDS", cls.max_delay),
            timeout=_env_number("FISCALGATE_WEBHOOK_TIMEOUT_SECONDS", cls.timeout),
        )

    def delay(self, attempt: int) -> float:
        """Seconds before the attempt after `attempt` failed ones (1-based)."""
        full = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(full / 2, full)


@dataclass
class _Job:
    delivery_id: str
    token: str
    url: str
    secret: str
    event_id: str
    event_type: str
    body: bytes
    number: int  # this attempt's number over the delivery's life
    round_number: int  # this attempt's number since creation or the last redelivery
    manual: bool


def _payload(event: OutboxEvent) -> bytes:
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "created_at": event.created_at.isoformat(),
            "tenant_id": event.tenant_id,
            "data": event.data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def _due(now: datetime) -> Any:
    return or_(
        and_(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now),
        and_(WebhookDelivery.status == "delivering", WebhookDelivery.lease_until < now),
    )


def _claim(session: Session, gw: Gateway, policy: DeliveryPolicy, limit: int) -> list[_Job]:
    now = utcnow()
    ids = list(
        session.scalars(
            select(WebhookDelivery.id)
            .where(_due(now))
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    token = new_id()
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids), _due(now))
        .values(status="delivering", claim_token=token, lease_until=now + timedelta(seconds=policy.lease))
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(
        select(WebhookDelivery, WebhookEndpoint, OutboxEvent)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.claim_token == token)
        .execution_options(populate_existing=True)
    ).all()
    jobs = []
    for delivery, endpoint, event in rows:
        try:
            secret = str(gw.box.open(endpoint.secret_sealed)["secret"])
        except ConfigurationError as exc:
            # The gateway's secret key changed: nothing can be signed for this endpoint. Say so on
            # the delivery (redeliver once the key is back) instead of blocking every other one.
            delivery.status, delivery.last_error = "failed", exc.message
            delivery.claim_token = delivery.lease_until = delivery.next_attempt_at = None
            log.error("webhook delivery %s: %s", delivery.id, exc.message)
            continue
        jobs.append(
            _Job(
                delivery_id=delivery.id,
                token=token,
                url=endpoint.url,
                secret=secret,
                event_id=event.id,
                event_type=event.type,
                body=_payload(event),
                number=delivery.attempts + 1,
                round_number=delivery.round_attempts + 1,
                manual=delivery.manual,
            )
        )
    return jobs


@dataclass
class _Result:
    started_at: datetime
    duration_ms: float | None = None
    status: int | None = None
    excerpt: str | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _record(session: Session, job: _Job, result: _Result, policy: DeliveryPolicy) -> str:
    """Write the attempt and the delivery's next state; the result ("delivered", "retry",
    "failed"), or "lost" when the claim is no longer ours."""
    now = utcnow()
    if result.delivered:
        outcome = "delivered"
        values: dict[str, Any] = {"status": "delivered", "delivered_at": now, "next_attempt_at": None}
    elif job.round_number >= policy.max_attempts:
        outcome = "failed"
        values = {"status": "failed", "next_attempt_at": None}
    else:
        outcome = "retry"
        delay = timedelta(seconds=policy.delay(job.round_number))
        values = {"status": "pending", "next_attempt_at": now + delay}
    moved = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == job.delivery_id, WebhookDelivery.claim_token == job.token)
        .values(
            attempts=job.number,
            round_attempts=job.round_number,
            manual=False,
            last_attempt_at=result.started_at,
            response_status=result.status,
            last_error=result.error,
            claim_token=None,
            lease_until=None,
            **values,
        )
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if moved != 1:
        return "lost"
    delivery = session.get(WebhookDelivery, job.delivery_id)
    assert delivery is not None
    session.add(
        WebhookAttempt(
            tenant_id=delivery.tenant_id,
            delivery_id=job.delivery_id,
            number=job.number,
            trigger="manual" if job.manual else "automatic",
            started_at=result.started_at,
            duration_ms=result.duration_ms,
            response_status=result.status,
            response_excerpt=result.excerpt,
            error=result.error,
        )
    )
    after_commit(session, WEBHOOK_ATTEMPTS.labels(outcome).inc)
    return outcome


def _release(session: Session, job: _Job) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == job.delivery_id, WebhookDelivery.claim_token == job.token)
        .values(status="pending", claim_token=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


class WebhookDispatcher:
    def __init__(self, gw: Gateway, policy: DeliveryPolicy | None = None) -> None:
        self.gw = gw
        self.policy = policy or DeliveryPolicy.from_env()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Thread-safe, never blocks: called after the commit of a transaction that created
        deliveries (in a database worker thread, or in the loop itself)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run_once(self, client: httpx.AsyncClient) -> int:
        """Claim and send one batch, waiting for all of it; the number of deliveries attempted."""
        jobs = await self.gw.db.run(_claim, self.gw, self.policy, self.policy.batch)
        if jobs:
            async with anyio.create_task_group() as tg:
                for job in jobs:
                    tg.start_soon(self._attempt, client, job)
        return len(jobs)

    async def _attempt(self, client: httpx.AsyncClient, job: _Job) -> None:
        try:
            result = await self._send(client, job)
        except anyio.get_cancelled_exc_class():
            # Stopping (SIGTERM, shutdown): hand the claim back so the next dispatcher sends it
            # at once rather than after the lease. The receiver may have got it: at least once.
            with anyio.CancelScope(shield=True):
                await self.gw.db.run(_release, job)
            raise
        outcome = await self.gw.db.run(_record, job, result, self.policy)
        # Never the secret, the signature or the body: the URL, the event and the answer only.
        log.info(
            "webhook %s %s (event %s, delivery %s, attempt %d) -> %s%s",
            job.event_type,
            job.url,
            job.event_id,
            job.delivery_id,
            job.number,
            result.status if result.status is not None else result.error,
            "" if outcome == "delivered" else f" [{outcome}]",
        )

    async def _send(self, client: httpx.AsyncClient, job: _Job) -> _Result:
        result = _Result(started_at=utcnow())
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature(job.secret, timestamp, job.body),
            EVENT_ID_HEADER: job.event_id,
            "Fiscalgate-Event-Type": job.event_type,
            "Fiscalgate-Delivery-Id": job.delivery_id,
            "Fiscalgate-Delivery-Attempt": str(job.number),
        }
        started = time.perf_counter()
        try:
            async with client.stream("POST", job.url, content=job.body, headers=headers) as response:
                result.status = response.status_code
                chunk = b""
                async for part in response.aiter_bytes():
                    chunk += part
                    if len(chunk) >= EXCERPT:
                        break
                result.excerpt = chunk[:EXCERPT].decode("utf-8", errors="replace") or None
            if not result.delivered:
                result.error = f"the receiver answered HTTP {result.status}"
        except UrlNotAllowed as exc:  # the host resolved to a private address: nothing was sent
            result.error = exc.message
        except Exception as exc:  # httpx errors, and anything else: an attempt that failed, said so
            result.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        result.duration_ms = (time.perf_counter() - started) * 1000
        return result

    async def run(self) -> None:
        """Until cancelled: keep up to `policy.batch` deliveries in flight, claiming more as soon as
        a slot frees or a commit wakes it up, else every poll interval. A slow receiver holds one
        slot for its timeout, not a whole round: the other deliveries keep flowing."""
        self._loop = asyncio.get_running_loop()
        add_waker(self.wake)
        in_flight = 0

        async def attempt(client: httpx.AsyncClient, job: _Job) -> None:
            nonlocal in_flight
            try:
                await self._attempt(client, job)
            except Exception:  # its claim stays until the lease: it will be tried again
                log.exception("webhook delivery %s: recording the attempt failed", job.delivery_id)
            finally:
                in_flight -= 1
                self._wake.set()

        try:
            async with (
                httpx.AsyncClient(
                    transport=guarded_transport(check_destination),
                    timeout=self.policy.timeout,
                    follow_redirects=False,
                ) as client,
                anyio.create_task_group() as tg,
            ):
                while True:
                    self._wake.clear()  # a wake arriving from here on is not lost
                    free = self.policy.batch - in_flight
                    jobs: list[_Job] = []
                    if free > 0:
                        try:
                            jobs = await self.gw.db.run(_claim, self.gw, self.policy, free)
                        except Exception:  # a database hiccup must not stop deliveries for good
                            log.exception("webhook dispatcher: claiming failed; trying again")
                    for job in jobs:
                        in_flight += 1
                        tg.start_soon(attempt, client, job)
                    if jobs and in_flight < self.policy.batch:
                        continue  # there may be more due
                    with anyio.move_on_after(self.policy.poll_interval):
                        await self._wake.wait()
        finally:
            remove_waker(self.wake)
            self._loop = None


def dispatcher_enabled() -> bool:
    return os.environ.get(DISPATCHER_ENV, "on").strip().lower() not in ("0", "off", "false", "no")


@asynccontextmanager
async def running_dispatcher(
    gw: Gateway, policy: DeliveryPolicy | None = None
) -> AsyncIterator[WebhookDispatcher]:
    """Run a dispatcher in the background for the duration of the block."""
    dispatcher = WebhookDispatcher(gw, policy)
    async with anyio.create_task_group() as tg:
        tg.start_soon(dispatcher.run)
        try:
            yield dispatcher
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def background_dispatcher(gw: Gateway) -> AsyncIterator[None]:
    """The app's lifespan hook: a dispatcher while the app runs, unless
    `FISCALGATE_WEBHOOK_DISPATCHER=off` (then another process must run one)."""
    if not dispatcher_enabled():
        yield
        return
    async with running_dispatcher(gw):
        yield
