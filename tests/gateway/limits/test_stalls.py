"""The stall detector: what is stuck in queued / submitting / unknown past the threshold, per
tenant or for all, reported once per stay in that status."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fiscalgate.core.errors import ConfigurationError
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.db import migrate, utcnow
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.limits import report_stalled, stall_threshold, stalled_invoices
from fiscalgate.gateway.runtime import Database
from fiscalgate.gateway.tenants.models import Tenant


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    if database_url.startswith("sqlite"):
        migrate(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


def _seed(db: Database, ages: dict[str, tuple[str, int]]) -> tuple[str, dict[str, str]]:
    """A tenant with one invoice per name: (status, minutes since its last change)."""

    def add(session: Session) -> tuple[str, dict[str, str]]:
        tenant = Tenant(name=f"T-{uuid.uuid4().hex[:8]}", country="CI", modules=[], created_at=utcnow())
        session.add(tenant)
        session.flush()
        ids = {}
        for name, (status, minutes) in ages.items():
            at = utcnow() - timedelta(minutes=minutes)
            row = InvoiceRow(
                tenant_id=tenant.id,
                authority="ci-fne",
                number=name,
                kind="sale",
                status=status,
                document={"number": name},
                currency="XOF",
                attempts=1,
                created_at=at,
                updated_at=at,
            )
            session.add(row)
            session.flush()
            ids[name] = row.id
        return tenant.id, ids

    return db.call(add)


def test_stalled_invoices_by_status_age_and_tenant(db: Database) -> None:
    tenant, ids = _seed(
        db,
        {
            "old-submitting": ("submitting", 30),
            "old-unknown": ("unknown", 60),
            "fresh-unknown": ("unknown", 2),
            "old-certified-like": ("failed", 90),  # failed is not a stall status
            "old-approved": ("approved", 90),
        },
    )
    other, _ = _seed(db, {"x-unknown": ("unknown", 45)})
    found = db.read_call(lambda s: stalled_invoices(s, tenant, timedelta(minutes=15)))
    assert [(f.number, f.status) for f in found] == [
        ("old-unknown", "unknown"),
        ("old-submitting", "submitting"),
    ]
    assert found[0].id == ids["old-unknown"] and found[0].age >= timedelta(minutes=60)
    every = db.read_call(lambda s: stalled_invoices(s, None, timedelta(minutes=15)))
    assert {f.tenant_id for f in every} >= {tenant, other} and len(
        [f for f in every if f.tenant_id == other]
    ) == 1
    assert db.read_call(lambda s: stalled_invoices(s, tenant, timedelta(hours=2))) == []


def test_each_stall_is_reported_once_until_the_invoice_changes(db: Database) -> None:
    tenant, ids = _seed(db, {"stuck": ("unknown", 40), "fine": ("unknown", 1)})

    def report(session: Session) -> list[str]:
        return [s.number for s in report_stalled(session, timedelta(minutes=15), tenant_id=tenant)]

    assert db.call(report) == ["stuck"]
    assert db.call(report) == []  # already reported, nothing changed since

    def events(session: Session) -> list[tuple[str | None, str | None, Any]]:
        query = select(AuditEntry.invoice_id, AuditEntry.tenant_id, AuditEntry.detail)
        rows = session.execute(query.where(AuditEntry.event == "invoice.stalled"))
        return [(r.invoice_id, r.tenant_id, r.detail) for r in rows]

    [(invoice_id, tenant_id, detail)] = db.read_call(events)
    assert invoice_id == ids["stuck"] and tenant_id == tenant
    assert detail is not None and detail["status"] == "unknown" and detail["age_seconds"] >= 2400

    # It moved after the report (say a retry claimed it) and is stuck again: a new stay, a new
    # report. Back-date both: the report 30 minutes ago, the change 20 minutes ago.
    def touch(session: Session) -> None:
        session.execute(
            update(InvoiceRow)
            .where(InvoiceRow.id == ids["stuck"])
            .values(status="submitting", updated_at=utcnow() - timedelta(minutes=20))
        )

    db.call(touch)
    assert db.call(report) == []  # the report (just now) is newer than the change: still covered
    db.call(
        lambda s: s.execute(
            update(AuditEntry)
            .where(AuditEntry.event == "invoice.stalled")
            .values(created_at=utcnow() - timedelta(minutes=30))
        )
    )
    assert db.call(report) == ["stuck"]


def test_stall_threshold_from_the_environment() -> None:
    assert stall_threshold({}) == timedelta(minutes=15)
    assert stall_threshold({"FISCALGATE_STALL_AFTER": "120"}) == timedelta(minutes=2)
    for bad in ("soon", "0"):
        with pytest.raises(ConfigurationError, match="FISCALGATE_STALL_AFTER"):
            stall_threshold({"FISCALGATE_STALL_AFTER": bad})


@pytest.mark.anyio
async def test_the_workers_run_the_stall_detector_periodically(real_app: Any) -> None:
    import anyio

    from fiscalgate.gateway.queue import run_background
    from tests.gateway.conftest import gateway, real_tenant
    from tests.gateway.gates import wait_until
    from tests.gateway.test_queue import queue_one

    _, api, _, _ = await real_tenant(real_app, "cg-sfec")
    gw = gateway(real_app)
    async with api:
        invoice = await queue_one(api, "cg-sfec")  # queued; no worker takes it (concurrency 0)
    long_ago = utcnow() - timedelta(hours=1)
    gw.db.call(
        lambda s: s.execute(
            update(InvoiceRow).where(InvoiceRow.id == invoice["id"]).values(updated_at=long_ago)
        )
    )

    def reported() -> list[AuditEntry]:
        query = select(AuditEntry).where(
            AuditEntry.invoice_id == invoice["id"], AuditEntry.event == "invoice.stalled"
        )
        return gw.db.call(lambda s: list(s.scalars(query)))

    async def seen() -> bool:
        return bool(await anyio.to_thread.run_sync(reported))

    async with run_background(
        gw, concurrency=0, heartbeat=0.2, stall_every=0.05, stall_after=timedelta(minutes=15)
    ):
        await wait_until(seen)
    events = reported()
    assert len(events) == 1 and events[0].detail["status"] == "queued"  # once per stay, not per run


def test_the_stall_check_interval_is_read_from_the_environment() -> None:
    from fiscalgate.gateway.queue.worker import DEFAULT_STALL_EVERY, stall_check_every

    assert stall_check_every({}) == DEFAULT_STALL_EVERY
    assert stall_check_every({"FISCALGATE_STALL_CHECK_EVERY": "5"}) == 5.0
    assert stall_check_every({"FISCALGATE_STALL_CHECK_EVERY": "0"}) == 0.0  # off
    for bad in ("soon", "-1", "inf"):
        with pytest.raises(ConfigurationError, match="FISCALGATE_STALL_CHECK_EVERY"):
            stall_check_every({"FISCALGATE_STALL_CHECK_EVERY": bad})
