"""A claim says which process holds it and until when, and "until when" comes from the tenant's own
settings (timeout x tries), not one 30-minute constant (issue 14). Seen from the database while
the call is in flight; both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.invoices.models import InvoiceRow
from tests.gateway.conftest import gateway, real_invoice, real_tenant

pytestmark = pytest.mark.anyio


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite hands them back naive


@pytest.mark.parametrize(
    ("authority", "extra", "expected"),
    [
        # SFEC retries itself: 7 s x 2 tries x 3 requests + 60 s
        ("cg-sfec", {"timeout_seconds": 7, "max_attempts": 2}, timedelta(seconds=7 * 2 * 3 + 60)),
        # FNE has no retry setting: one try, 11 s x 3 requests + 60 s
        ("ci-fne", {"timeout_seconds": 11}, timedelta(seconds=11 * 3 + 60)),
    ],
)
async def test_a_claim_names_its_process_and_expires_after_the_tenants_own_lease(
    real_app: FastAPI, authority: str, extra: dict[str, int], expected: timedelta
) -> None:
    _, api, _, injector = await real_tenant(real_app, authority, **extra)
    injector.add("drop_before_processing", method="POST", seconds=30)  # the call hangs in flight
    gw = gateway(real_app)
    async with api:
        r = await api.post("/v1/invoices", json={"invoice": real_invoice(authority), "approve": True})
        assert r.status_code == 201, r.text
        invoice_id = r.json()["id"]

        def claim() -> InvoiceRow | None:
            return gw.db.call(
                lambda s: s.scalar(
                    select(InvoiceRow).where(InvoiceRow.id == invoice_id, InvoiceRow.status == "submitting")
                )
            )

        async with anyio.create_task_group() as tg:
            before = utcnow()
            tg.start_soon(api.post, f"/v1/invoices/{invoice_id}/certify")
            with anyio.fail_after(20):
                while (row := claim()) is None:  # noqa: ASYNC110 (the event is a row in the database)
                    await anyio.sleep(0.02)
            after = utcnow()
            tg.cancel_scope.cancel()

    assert row.claim_holder == gw.process_id  # which process holds it
    assert row.claim_expires_at is not None
    expires = _aware(row.claim_expires_at)
    assert before + expected - timedelta(seconds=1) <= expires <= after + expected + timedelta(seconds=1)
    assert expires < before + timedelta(minutes=30)  # not the old constant lease
