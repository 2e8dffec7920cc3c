"""FNE sticker balances: the history kept with each certification, the consumption rate and the
forecast (Decimal, aware datetimes), and `stickers.low` once per crossing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.stickers.models import StickerBalance, StickerState
from fiscalgate.gateway.stickers.service import forecast, low_reason, record_balance, state_forecast
from fiscalgate.gateway.webhooks.models import OutboxEvent, WebhookDelivery
from tests.gateway.conftest import FAKE_SETTINGS, gateway, new_tenant, real_invoice, real_tenant

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_rate_and_forecast_are_exact_decimals_on_aware_datetimes() -> None:
    # 20 stickers in 10 days: 2 a day; 100 left: 50 days
    f = forecast(100, "stickers", T0, 20, (0, T0 - timedelta(days=10)), T0)
    assert (f.rate_per_day, f.days_left) == (Decimal("2.00"), Decimal("50.0"))
    assert f.runs_out_at == T0 + timedelta(days=50) and f.runs_out_at.tzinfo is not None
    # one in three days: the rate shows 0.33, the forecast uses the exact third (30 days, not 30.3)
    f = forecast(10, "stickers", T0, 1, (0, T0 - timedelta(days=3)), T0)
    assert (f.rate_per_day, f.days_left, f.runs_out_at) == (
        Decimal("0.33"),
        Decimal("30.0"),
        T0 + timedelta(days=30),
    )
    # a first busy hour counts as a day: 5 a day, not 120
    f = forecast(50, "stickers", T0, 5, (0, T0 - timedelta(hours=1)), T0)
    assert (f.rate_per_day, f.days_left) == (Decimal("5.00"), Decimal("10.0"))
    # no consumption: no forecast; no baseline (one record): no rate either
    assert forecast(50, "stickers", T0, 7, (7, T0 - timedelta(days=2)), T0).runs_out_at is None
    lone = forecast(50, "stickers", T0, 0, None, T0)
    assert (lone.rate_per_day, lone.days_left, lone.runs_out_at) == (None, None, None)
    # empty: it ran out when that balance came back
    empty = forecast(0, "stickers", T0 - timedelta(hours=3), 9, (0, T0 - timedelta(days=3)), T0)
    assert (empty.days_left, empty.runs_out_at) == (Decimal(0), T0 - timedelta(hours=3))
    assert all(isinstance(v, Decimal) for v in (f.rate_per_day, f.days_left))


def test_low_means_below_the_threshold_or_a_forecast_inside_the_warning_days() -> None:
    def at(balance: int, kind: str = "stickers", per_day: int = 1) -> Any:
        return forecast(balance, kind, T0, per_day * 14, (0, T0 - timedelta(days=14)), T0)

    assert low_reason(at(49), threshold=50, days=7) == "below_threshold"
    assert low_reason(at(50), threshold=50, days=7) is None  # 50 days left, not below 50
    assert low_reason(at(600, per_day=100), threshold=50, days=7) == "forecast"  # 6 days
    assert low_reason(at(700, per_day=100), threshold=50, days=7) is None  # exactly 7
    # a provision balance is in francs: the sticker threshold does not apply, the forecast does
    assert low_reason(at(49, kind="funds"), threshold=50, days=7) is None
    assert low_reason(at(4_000, kind="funds", per_day=1_000), threshold=50, days=7) == "forecast"


def _record(session: Session, tenant_id: str, balance: int, at: datetime, threshold: int = 50) -> Any:
    return record_balance(
        session,
        tenant_id=tenant_id,
        authority="ci-fne",
        environment="mock",
        balance=balance,
        balance_kind="stickers",
        invoice_id=None,
        threshold=threshold,
        now=at,
    )


def _low_events(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(OutboxEvent).where(OutboxEvent.type == "stickers.low").order_by(OutboxEvent.created_at)
    )
    return [r.data for r in rows]


@pytest.fixture
async def tenant(fake_app: FastAPI) -> tuple[dict[str, Any], httpx.AsyncClient]:
    return await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})


async def test_the_rate_reads_the_last_fourteen_days_and_ignores_purchases(
    fake_app: FastAPI, tenant: tuple[dict[str, Any], httpx.AsyncClient]
) -> None:
    t, api = tenant
    start = utcnow() - timedelta(days=20)

    def history(session: Session) -> Any:
        balance = 1000
        for day in range(21):
            if day == 10:
                balance += 500  # stickers bought
            _record(session, t["id"], balance, start + timedelta(days=day))
            balance -= 10
        state = session.scalars(select(StickerState)).one()
        return state, state_forecast(session, state, start + timedelta(days=20))

    state, f = await gateway(fake_app).db.run(history)
    # 10 a day, except day 10 whose record shows a rise (+500 bought, -10 used): no consumption
    # is counted there, never a negative one. Day 6 -> day 20: 13 drops of 10 in 14 days.
    assert (state.balance, state.consumed_total) == (1300, 190)
    assert (f.rate_per_day, f.days_left) == (Decimal("9.29"), Decimal("140.0"))  # 1300 / (130/14)
    assert f.runs_out_at == start + timedelta(days=160)
    async with api:
        body = (await api.get("/v1/stickers")).json()
    assert body["rate_window_days"] == 14
    (stock,) = body["stocks"]
    assert stock["authority"] == "ci-fne" and stock["environment"] == "mock"
    assert (stock["balance"], stock["balance_kind"], stock["threshold"], stock["warn_days"]) == (
        1300,
        "stickers",
        50,
        7,
    )
    assert stock["rate_per_day"] == "9.29" and stock["days_left"] == "140.0"
    runs_out = datetime.fromisoformat(stock["runs_out_at"])
    assert abs(runs_out - (start + timedelta(days=160))) < timedelta(minutes=5)
    assert stock["runs_out_on"] == runs_out.date().isoformat()
    assert stock["low"] is False


async def test_stickers_low_fires_once_per_crossing(
    fake_app: FastAPI, tenant: tuple[dict[str, Any], httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    t, api = tenant
    async with api:  # subscribed: each stickers.low becomes one delivery
        r = await api.post("/v1/webhooks", json={"url": "https://erp.example/h", "events": ["stickers.low"]})
        assert r.status_code == 201
    monkeypatch.setenv("FISCALGATE_STICKERS_WARN_DAYS", "0")  # the balance rule alone first
    gw = gateway(fake_app)
    seen: list[int] = []
    balances = [60, 55, 51, 49, 48, 47, 600, 58, 49, 30]
    for i, balance in enumerate(balances):
        await gw.db.run(_record, t["id"], balance, T0 + timedelta(hours=i))
        seen.append(len(await gw.db.read(_low_events)))
    # fires at the first 49, not at 48 or 47; re-armed by the purchase (600); fires at the next 49
    assert seen == [0, 0, 0, 1, 1, 1, 1, 1, 2, 2]
    first, second = await gw.db.read(_low_events)
    assert (first["reason"], first["balance"], first["threshold"], first["environment"]) == (
        "below_threshold",
        49,
        50,
        "mock",
    )
    assert second["balance"] == 49 and second["warn_days"] == 0
    deliveries = await gw.db.read(lambda s: list(s.scalars(select(WebhookDelivery.event_type))))
    assert deliveries == ["stickers.low", "stickers.low"]
    # the forecast rule: 100 a day; 700 left is 7 days (not inside a 7-day warning), 600 is 6
    monkeypatch.setenv("FISCALGATE_STICKERS_WARN_DAYS", "7")

    def other_env(session: Session) -> None:
        for day, balance in enumerate([1300, 1200, 1100, 1000, 900, 800, 700, 600, 500]):
            record_balance(
                session,
                tenant_id=t["id"],
                authority="ci-fne",
                environment="sandbox",
                balance=balance,
                balance_kind="stickers",
                invoice_id=None,
                threshold=50,
                now=T0 + timedelta(days=day),
            )

    await gw.db.run(other_env)
    events = await gw.db.read(_low_events)
    assert len(events) == 3  # only one more: at 600 (6 days), not again at 500
    assert (events[2]["environment"], events[2]["reason"], events[2]["balance"]) == (
        "sandbox",
        "forecast",
        600,
    )
    assert Decimal(events[2]["days_left"]) < 7 and events[2]["runs_out_at"].startswith("2026-03-1")


async def test_fne_certifications_record_the_balance_in_their_transaction(
    real_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FISCALGATE_STICKERS_WARN_DAYS", "0")  # at 1 a day, 5 left would warn too
    tenant, api, counter, _ = await real_tenant(real_app, "ci-fne", sticker_warning_threshold=5)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=counter), base_url="http://sim") as sim:
        assert (await sim.post("/_sim/stickers", json={"balance": 7})).status_code == 200
    ids = []
    async with api:
        r = await api.post("/v1/webhooks", json={"url": "https://erp.example/h", "events": ["stickers.low"]})
        assert r.status_code == 201
        for _ in range(3):
            created = await api.post(
                "/v1/invoices", json={"invoice": real_invoice("ci-fne"), "approve": True}
            )
            cert = await api.post(f"/v1/invoices/{created.json()['id']}/certify")
            assert cert.status_code == 200, cert.text
            ids.append(created.json()["id"])
        body = (await api.get("/v1/stickers")).json()
    (stock,) = body["stocks"]
    assert (stock["balance"], stock["threshold"], stock["low"]) == (4, 5, True)  # 6, 5 fine; 4 below 5
    assert stock["rate_per_day"] == "2.00"  # 2 consumed between the first and last record, a day at least
    assert stock["days_left"] == "2.0"

    def stored(session: Session) -> tuple[list[Any], list[dict[str, Any]]]:
        rows = session.scalars(select(StickerBalance).order_by(StickerBalance.recorded_at))
        return [(r.balance, r.invoice_id, r.balance_kind) for r in rows], _low_events(session)

    history, events = await gateway(real_app).db.read(stored)
    assert history == [(6, ids[0], "stickers"), (5, ids[1], "stickers"), (4, ids[2], "stickers")]
    assert [(e["balance"], e["reason"], e["threshold"]) for e in events] == [(4, "below_threshold", 5)]
    assert tenant["id"]
