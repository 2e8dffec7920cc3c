"""`/metrics` in the Prometheus text format (prometheus-client).

Two kinds of figures:
- **counters and histograms** (certification outcomes, authority latency, retries,
  reconciliations, unknown outcomes, webhook delivery attempts): incremented once the transaction
  that records the fact has committed (`after_commit`), so a rolled-back attempt is not counted.
  The work is done by other processes than the one Prometheus scrapes (`fiscalgate worker`
  processes, the processes of `serve --processes N`), so with `PROMETHEUS_MULTIPROC_DIR` set (an
  existing directory shared by every gateway process of the machine, set before they start) each
  process writes its counters there (prometheus-client's multiprocess mode) and `/metrics` sums
  them all. Without it, `/metrics` shows the counters of the process that answers, and
  `fiscalgate_processes_uncounted` says how many live gateway processes are left out (processes on
  other machines are always left out: their counts are theirs).
- **state read from the database at scrape time** (invoices by status, stalled invoices, queue
  depth and the age of the oldest queued job, open circuit breakers, sticker balances, webhook
  deliveries by status):
  the same answer from any gateway process, whichever process did the work.

Who may read it: the administrator token, or the scrape token `FISCALGATE_METRICS_TOKEN` (so
Prometheus need not hold the admin token), as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.orm import Session

from fiscalgate.gateway.api.openapi import ErrorBody
from fiscalgate.gateway.db import UTCDateTime, utcnow
from fiscalgate.gateway.errors import Forbidden, Unauthorized
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.limits.gate import open_breakers
from fiscalgate.gateway.limits.stalls import STALL_STATUSES, stall_threshold
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.stickers.models import StickerState
from fiscalgate.gateway.webhooks.models import WebhookDelivery

METRICS_TOKEN_ENV = "FISCALGATE_METRICS_TOKEN"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The directory where every process of this machine keeps its counters, or None."""
    return os.environ.get(MULTIPROC_ENV) or None


if (_dir := multiprocess_dir()) is not None:
    # prometheus-client writes a file per process there at the first increment: it must exist.
    os.makedirs(_dir, exist_ok=True)

# --- this process's counters ------------------------------------------------------------------------
CERTIFICATIONS = Counter(
    "fiscalgate_certifications",
    "Certification attempts by outcome (certified, rejected, failed, unknown)",
    ["authority", "environment", "outcome"],
)
AUTHORITY_LATENCY = Histogram(
    "fiscalgate_authority_request_duration_seconds",
    "Duration of each HTTP request to an authority (simulators included)",
    ["authority", "environment"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
RETRIES = Counter(
    "fiscalgate_certification_retries",
    "Certification attempts after the first one of an invoice",
    ["authority", "environment"],
)
RECONCILIATIONS = Counter(
    "fiscalgate_reconciliations",
    "Reconciliations of unknown outcomes by result (certified, failed = not certified, unknown)",
    ["authority", "environment", "result"],
)
UNKNOWNS = Counter(
    "fiscalgate_unknown_outcomes",
    "Certification attempts that ended with an unknown outcome (reconcile)",
    ["authority", "environment"],
)
WEBHOOK_ATTEMPTS = Counter(
    "fiscalgate_webhook_delivery_attempts",
    "Webhook delivery attempts by result (delivered, retry = will be tried again, failed = gave up)",
    ["result"],
)
# --- after commit -----------------------------------------------------------------------------------
_PENDING = "fiscalgate_after_commit"


def after_commit(session: Session, fn: Callable[[], None]) -> None:
    """Run `fn` once the session's current transaction has committed; never if it rolls back."""
    session.info.setdefault(_PENDING, []).append(fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for fn in session.info.pop(_PENDING, ()):
        fn()


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def count_certification(
    *,
    authority: str,
    environment: str | None,
    operation: str,
    outcome: str,
    attempts: int,
    durations_ms: Iterable[float | None] = (),
) -> Callable[[], None]:
    """The counter updates for one recorded outcome (`operation` is the lifecycle event name:
    `invoice.certify`, `invoice.reconcile.confirm`...), to run after commit."""
    env = environment or "none"
    durations = [d for d in durations_ms if d is not None]

    def apply() -> None:
        for ms in durations:
            AUTHORITY_LATENCY.labels(authority, env).observe(ms / 1000)
        if operation.startswith("invoice.reconcile"):
            RECONCILIATIONS.labels(authority, env, outcome).inc()
            return
        CERTIFICATIONS.labels(authority, env, outcome).inc()
        if attempts > 1:
            RETRIES.labels(authority, env).inc()
        if outcome == "unknown":
            UNKNOWNS.labels(authority, env).inc()

    return apply


# --- state, read at scrape time ---------------------------------------------------------------------
# The queue's job table, when the queue is installed (its migration): jobs waiting (`queued`,
# including those whose retry is not due yet) and their age.
JOB_TABLE = "certification_jobs"


class DatabaseCollector(Collector):
    """Gauges read from the gateway's database each time /metrics is scraped."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._has_jobs: bool | None = None

    def collect(self) -> Iterator[Metric]:
        yield from self.gw.db.read_call(self._collect)

    def _collect(self, session: Session) -> list[Metric]:
        now = utcnow()
        out: list[Metric] = []

        invoices = GaugeMetricFamily(
            "fiscalgate_invoices", "Invoices by authority and status", labels=["authority", "status"]
        )
        for authority, status, count in session.execute(
            select(InvoiceRow.authority, InvoiceRow.status, func.count()).group_by(
                InvoiceRow.authority, InvoiceRow.status
            )
        ):
            invoices.add_metric([authority, status], count)
        out.append(invoices)

        stalled = GaugeMetricFamily(
            "fiscalgate_stalled_invoices",
            "Invoices queued, submitting or unknown for longer than FISCALGATE_STALL_AFTER",
            labels=["authority", "status"],
        )
        for authority, status, count in session.execute(
            select(InvoiceRow.authority, InvoiceRow.status, func.count())
            .where(InvoiceRow.status.in_(STALL_STATUSES), InvoiceRow.updated_at < now - stall_threshold())
            .group_by(InvoiceRow.authority, InvoiceRow.status)
        ):
            stalled.add_metric([authority, status], count)
        out.append(stalled)

        breakers = GaugeMetricFamily(
            "fiscalgate_circuit_breakers_open",
            "Circuit breakers not closed (open, or half_open: one probe call allowed)",
            labels=["authority", "environment", "phase"],
        )
        counted: dict[tuple[str, str, str], int] = {}
        for b in open_breakers(session):
            key = (b.authority, b.environment, b.phase)
            counted[key] = counted.get(key, 0) + 1
        for key, count in sorted(counted.items()):
            breakers.add_metric(list(key), count)
        out.append(breakers)

        out.append(self._uncounted(session, now))

        depth, oldest = self._queue(session)
        out.append(GaugeMetricFamily("fiscalgate_queue_depth", "Jobs waiting in the queue", value=depth))
        out.append(
            GaugeMetricFamily(
                "fiscalgate_queue_oldest_age_seconds",
                "Age of the oldest job waiting in the queue (0 when empty)",
                value=_age(now, oldest),
            )
        )

        stickers = GaugeMetricFamily(
            "fiscalgate_sticker_balance",
            "Latest sticker (or provision) balance returned by the authority",
            labels=["tenant_id", "authority", "environment", "kind"],
        )
        for state in session.scalars(select(StickerState)):
            stickers.add_metric(
                [state.tenant_id, state.authority, state.environment, state.balance_kind], state.balance
            )
        out.append(stickers)

        deliveries = GaugeMetricFamily(
            "fiscalgate_webhook_deliveries", "Webhook deliveries by status", labels=["status"]
        )
        for status, count in session.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        ):
            deliveries.add_metric([status], count)
        out.append(deliveries)
        oldest_pending = session.scalar(
            select(func.min(WebhookDelivery.created_at)).where(
                WebhookDelivery.status.in_(("pending", "delivering"))
            )
        )
        out.append(
            GaugeMetricFamily(
                "fiscalgate_webhook_oldest_pending_age_seconds",
                "Age of the oldest webhook delivery not yet delivered nor given up (0 when none)",
                value=_age(now, oldest_pending),
            )
        )
        return out

    def _uncounted(self, session: Session, now: datetime) -> Metric:
        """Live gateway processes whose counters this /metrics does not include: with the
        multiprocess directory, those of other machines; without it, every other one."""
        # imported here: the queue imports the certification steps, which import this module
        from fiscalgate.gateway.certification.claim import DEAD_AFTER
        from fiscalgate.gateway.queue.models import ProcessRow

        query = select(func.count()).where(
            ProcessRow.stopped_at.is_(None),
            ProcessRow.heartbeat_at >= now - timedelta(seconds=DEAD_AFTER),
        )
        if self.gw.process_id is not None:
            query = query.where(ProcessRow.id != self.gw.process_id)
        if multiprocess_dir() is not None:
            query = query.where(ProcessRow.host != socket.gethostname()[:255])
        return GaugeMetricFamily(
            "fiscalgate_processes_uncounted",
            "Live gateway processes (serve, worker) whose counters this /metrics leaves out "
            f"(set {MULTIPROC_ENV} on every process of a machine to include them)",
            value=int(session.scalar(query) or 0),
        )

    def _queue(self, session: Session) -> tuple[int, datetime | None]:
        """(queued jobs, oldest created_at) from the job table when it exists, else from the
        invoices waiting in status `queued`."""
        if self._has_jobs is None:
            self._has_jobs = inspect(session.get_bind()).has_table(JOB_TABLE)
        if self._has_jobs:
            row = session.execute(
                text(f"SELECT count(*), min(created_at) FROM {JOB_TABLE} WHERE state = 'queued'")
            ).one()
            return int(row[0]), _aware(row[1])
        count, oldest = session.execute(
            select(func.count(), func.min(InvoiceRow.updated_at)).where(InvoiceRow.status == "queued")
        ).one()
        return int(count), _aware(oldest)


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands back text from a raw aggregate
        value = datetime.fromisoformat(value)
    result: datetime | None = UTCDateTime().process_result_value(value, None)
    return result


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


# --- the route --------------------------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="The admin token, or FISCALGATE_METRICS_TOKEN")

router = APIRouter(tags=["operations"])


def _scrape_allowed(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    if credentials is None or not credentials.credentials:
        raise Unauthorized(
            f"send `Authorization: Bearer <admin token or {METRICS_TOKEN_ENV}>`", code="auth.missing"
        )
    token = credentials.credentials.encode()
    gw: Gateway = request.app.state.gateway
    allowed = [gw.admin_token, os.environ.get(METRICS_TOKEN_ENV) or ""]
    # compare_digest against each, always both: no early exit that times which one matched
    matches = [bool(t) and secrets.compare_digest(token, t.encode()) for t in allowed]
    if any(matches):
        return
    if token.startswith(b"fgk_"):
        raise Forbidden(
            f"/metrics is for the operator: use the admin token or {METRICS_TOKEN_ENV}",
            code="auth.metrics_token_required",
        )
    raise Unauthorized("unknown metrics token", code="auth.invalid_token")


def registry_for(request: Request) -> CollectorRegistry:
    """The app's own registry: its database gauges (the process counters are in the default one)."""
    registry: CollectorRegistry | None = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(DatabaseCollector(request.app.state.gateway))
        request.app.state.metrics_registry = registry
    return registry


def counters_registry() -> CollectorRegistry:
    """Where the counters are read: every process's files in the multiprocess directory (summed
    by prometheus-client), else this process's default registry."""
    directory = multiprocess_dir()
    if directory is None:
        return REGISTRY
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        401: {"model": ErrorBody, "description": "No token, or not the admin nor the metrics token"},
        403: {"model": ErrorBody, "description": "A tenant key: /metrics is for the operator"},
    },
)
async def metrics(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Response:
    """Prometheus metrics (admin token or FISCALGATE_METRICS_TOKEN)."""
    _scrape_allowed(request, credentials)
    database = registry_for(request)

    def render() -> bytes:
        return generate_latest(counters_registry()) + generate_latest(database)

    return Response(await anyio.to_thread.run_sync(render), media_type=CONTENT_TYPE_LATEST)
