"""Queue workers within the limits, on both databases: the circuit breaker (a dead platform defers
only its own jobs, burns no attempt, resumes by itself), the e-MECeF pending cap, the rate limit.

No wall-clock assumption: the limits read an offset clock the test moves (a cool-down of an hour
or a rate of one call an hour never elapse by themselves), and every wait is for a state of the
gateway or an event at the simulator, never a fixed time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.limits import BreakerPolicy, Limits, Phase, RateLimit, RateLimits
from fiscalgate.gateway.limits.models import PendingSlotRow
from fiscalgate.gateway.limits.pending import PendingCap
from fiscalgate.gateway.queue import RetryPolicy, run_background
from fiscalgate.gateway.queue.jobs import live_job
from fiscalgate.gateway.queue.models import JobRow
from fiscalgate.gateway.runtime import Gateway
from tests.gateway.conftest import gateway, real_tenant
from tests.gateway.gates import wait_until
from tests.gateway.test_queue import queue_one, settled

pytestmark = pytest.mark.anyio
# Many attempts allowed: if a deferral burned attempts, the counts below would show it.
PATIENT = RetryPolicy(max_attempts=20, base_seconds=0.01, cap_seconds=0.05, reconcile_seconds=0.05)


class OffsetClock:
    """The system clock plus an offset the test moves forward (never behind real time)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by


def _invoices(gw: Gateway, ids: list[str]) -> list[InvoiceRow]:
    return gw.db.call(lambda s: list(s.scalars(select(InvoiceRow).where(InvoiceRow.id.in_(ids)))))


def _jobs(gw: Gateway, ids: list[str]) -> list[JobRow]:
    return gw.db.call(lambda s: [j for i in ids if (j := live_job(s, i)) is not None])


def _events(gw: Gateway, tenant_id: str, event: str) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.tenant_id == tenant_id, AuditEntry.event == event)
    return gw.db.call(lambda s: list(s.scalars(query)))


async def test_an_open_breaker_defers_only_its_own_jobs_and_resumes_by_itself(real_app: FastAPI) -> None:
    dead_tenant, dead_api, dead, injector = await real_tenant(real_app, "cg-sfec", max_attempts=1)
    injector.add("error", status=503, method="POST", times=-1)
    _, mecef_api, _, _ = await real_tenant(real_app, "bj-emecef")
    _, sfec_api, _, _ = await real_tenant(real_app, "cg-sfec", max_attempts=1)  # same authority
    clock = OffsetClock()
    limits = Limits(breaker=BreakerPolicy(threshold=2, cooldown=timedelta(hours=1)), clock=clock)
    gw = gateway(real_app)
    async with dead_api, mecef_api, sfec_api:
        down = [(await queue_one(dead_api, "cg-sfec"))["id"] for _ in range(5)]
        async with run_background(
            gw, concurrency=1, poll=0.05, policy=PATIENT, heartbeat=0.2, limits=limits
        ) as worker:
            assert worker is not None

            async def opened() -> bool:
                state = await gw.db.read(
                    lambda s: limits.breaker_state(s, dead_tenant["id"], "cg-sfec", "mock")
                )
                return state.phase is Phase.OPEN

            await wait_until(opened)
            # The others go on while it is open: another authority, and the same one for another
            # tenant (each breaker is its own tenant x authority x environment).
            others = [
                (mecef_api, (await queue_one(mecef_api, "bj-emecef"))["id"]),
                (sfec_api, (await queue_one(sfec_api, "cg-sfec"))["id"]),
                (mecef_api, (await queue_one(mecef_api, "bj-emecef"))["id"]),
            ]
            for api, invoice_id in others:
                assert (await settled(api, invoice_id))["status"] == "certified"

            async def all_deferred() -> bool:
                jobs = await anyio.to_thread.run_sync(_jobs, gw, down)
                return len(jobs) == 5 and all(
                    j.state == "queued" and (j.result or "").startswith("deferred (breaker_open)")
                    for j in jobs
                )

            await wait_until(all_deferred)
            # Nothing was sent while open, and waiting burned no attempt.
            assert dead.count("POST") == 2
            assert sum(r.attempts for r in _invoices(gw, down)) == 2
            assert all(r.status == "queued" for r in _invoices(gw, down))
            assert worker.deferred >= 1  # one deferral moved the whole backlog of that key
            assert len(_events(gw, dead_tenant["id"], "authority.down")) == 1

        injector.clear()  # the platform is back; the cool-down ends
        clock.advance(timedelta(hours=1))
        # Several slots now: while the probe is in flight the others are deferred again (one probe
        # at a time), and only the probe's success making them ready lets them go before the
        # probe lease (5 minutes) ends.
        async with run_background(gw, concurrency=4, poll=0.05, policy=PATIENT, heartbeat=0.2, limits=limits):
            for invoice_id in down:
                assert (await settled(dead_api, invoice_id))["status"] == "certified"
    # two failures, one probe that closed it, then the four others: each invoice once more
    assert dead.count("POST") == 2 + 5
    assert sorted(r.attempts for r in _invoices(gw, down)) == [1, 1, 1, 2, 2]
    assert len(_events(gw, dead_tenant["id"], "authority.up")) == 1


class HoldFinalise:
    """Holds e-MECeF's finalisations (PUT .../confirm): the submitted requests stay pending at the
    simulator until released. Counts submissions and the most pending at once."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.release = anyio.Event()
        self.submitted = 0
        self.pending = 0
        self.most_pending = 0
        self.changed = anyio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and path.rstrip("/").endswith("/api/invoice"):
            self.submitted += 1
            self.pending += 1
            self.most_pending = max(self.most_pending, self.pending)
            self._changed()
        elif method == "PUT" and path.endswith("/confirm"):
            await self.release.wait()
            self.pending -= 1
            self._changed()
        await self.app(scope, receive, send)

    def _changed(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def until(self, condition: Any) -> None:
        with anyio.fail_after(30):
            while not condition():
                await self.changed.wait()


async def test_the_pending_cap_holds_submissions_back_and_lets_them_go_as_slots_free(
    real_app: FastAPI,
) -> None:
    tenant, api, counter, _ = await real_tenant(real_app, "bj-emecef")
    gw = gateway(real_app)
    hold = HoldFinalise(counter.app)
    counter.app = hold
    cap = PendingCap(limit=2, expiry=timedelta(minutes=2), hold=timedelta(minutes=10))
    limits = Limits(caps={"bj-emecef": cap})
    async with api:
        ids = [(await queue_one(api, "bj-emecef"))["id"] for _ in range(5)]
        async with run_background(
            gw, concurrency=4, poll=0.05, policy=PATIENT, heartbeat=0.2, limits=limits
        ) as worker:
            assert worker is not None
            await hold.until(lambda: hold.submitted == 2)

            async def held_back() -> bool:
                jobs = await anyio.to_thread.run_sync(_jobs, gw, ids)
                waiting = [j for j in jobs if (j.result or "").startswith("deferred (pending_cap)")]
                return len(waiting) == 3

            await wait_until(held_back)  # the three others wait for a slot, not sent
            assert hold.submitted == 2 and counter.count("POST") == 2
            hold.release.set()
            for invoice_id in ids:
                assert (await settled(api, invoice_id))["status"] == "certified"
    assert hold.most_pending <= 2 and hold.submitted == 5
    assert all(r.attempts == 1 for r in _invoices(gw, ids))  # waiting for a slot is not an attempt
    held = gw.db.call(lambda s: list(s.scalars(select(PendingSlotRow).filter_by(tenant_id=tenant["id"]))))
    assert held == []  # every finalised request gave its slot back


async def test_the_rate_limit_spaces_calls_without_burning_attempts(real_app: FastAPI) -> None:
    tenant, api, counter, _ = await real_tenant(real_app, "cg-sfec", max_attempts=1)
    clock = OffsetClock()
    rates = RateLimits({(tenant["id"], "cg-sfec"): RateLimit(rate=1 / 3600, burst=1)})  # one an hour
    limits = Limits(rates=rates, clock=clock)
    gw = gateway(real_app)
    async with api:
        ids = [(await queue_one(api, "cg-sfec"))["id"] for _ in range(3)]
        async with run_background(
            gw, concurrency=2, poll=0.05, policy=PATIENT, heartbeat=0.2, limits=limits
        ) as worker:
            assert worker is not None

            async def one_through() -> bool:
                rows = await anyio.to_thread.run_sync(_invoices, gw, ids)
                jobs = await anyio.to_thread.run_sync(_jobs, gw, ids)
                return [r.status for r in rows].count("certified") == 1 and all(
                    (j.result or "").startswith("deferred (rate_limited)") for j in jobs
                )

            await wait_until(one_through)
            assert counter.count("POST") == 1
            for sent in (2, 3):  # one more token per hour of the limits' clock
                clock.advance(timedelta(hours=1))
                gw.queue.wake()
                await wait_until(lambda n=sent: _async(counter.count("POST") >= n))  # type: ignore[misc]
                assert counter.count("POST") == sent
            for invoice_id in ids:
                assert (await settled(api, invoice_id))["status"] == "certified"
    assert counter.count("POST") == 3
    assert all(r.attempts == 1 for r in _invoices(gw, ids))


async def _async(value: bool) -> bool:
    return value
