"""The certification queue: `wait`, workers, retries by error kind, automatic reconciliation,
and crash healing (dead holders' claims, jobs and idempotency keys). Both databases."""

from __future__ import annotations

import random
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fiscalgate.core.errors import (
    AuthorityAuthError,
    AuthorityServerError,
    AuthorityUnreachable,
    ConfigurationError,
    InvoiceRejected,
    OutcomeUnknown,
    RateLimited,
)
from fiscalgate.gateway.api.models import IdempotencyRecord
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.audit.service import INTERRUPTED, open_call
from fiscalgate.gateway.certification.outcome import Outcome
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.queue import RetryPolicy, enqueue_certification, run_background
from fiscalgate.gateway.queue.healing import heal
from fiscalgate.gateway.queue.jobs import claim_job, job_state
from fiscalgate.gateway.queue.models import JobRow, ProcessRow
from fiscalgate.gateway.queue.policy import decide
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.webhooks.models import OutboxEvent
from tests.gateway.conftest import gateway, real_invoice, real_tenant

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(max_attempts=4, base_seconds=0.05, cap_seconds=0.2, reconcile_seconds=0.05)


@asynccontextmanager
async def workers(gw: Gateway, concurrency: int = 4) -> AsyncIterator[None]:
    async with run_background(gw, concurrency=concurrency, poll=0.05, policy=FAST, heartbeat=0.2):
        yield


async def settled(api: httpx.AsyncClient, invoice_id: str, deadline: float = 30.0) -> dict[str, Any]:
    """The invoice once the queue is done with it (no live job left), polled."""
    gw = gateway(api_app(api))
    with anyio.fail_after(deadline):
        while await gw.db.read(job_state, invoice_id) is not None:  # noqa: ASYNC110 (another process may settle it)
            await anyio.sleep(0.05)
    body: dict[str, Any] = (await api.get(f"/v1/invoices/{invoice_id}")).json()
    return body


def api_app(api: httpx.AsyncClient) -> FastAPI:
    app: FastAPI = api._transport.app  # type: ignore[attr-defined]
    return app


def jobs_of(gw: Gateway, invoice_id: str) -> list[JobRow]:
    return gw.db.call(lambda s: list(s.scalars(select(JobRow).where(JobRow.invoice_id == invoice_id))))


async def create(api: httpx.AsyncClient, authority: str) -> dict[str, Any]:
    r = await api.post("/v1/invoices", json={"invoice": real_invoice(authority), "approve": True})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def queue_one(api: httpx.AsyncClient, authority: str) -> dict[str, Any]:
    """An invoice created with `certify: true` and `wait=0`: queued at once."""
    body = {"invoice": real_invoice(authority), "certify": True}
    r = await api.post("/v1/invoices", json=body, params={"wait": 0})
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    queued: dict[str, Any] = r.json()
    return queued


# --- the API --------------------------------------------------------------------------------------
async def test_wait_zero_queues_and_a_worker_certifies(real_app: FastAPI) -> None:
    _, api, counter, _ = await real_tenant(real_app, "bj-emecef")
    gw = gateway(real_app)
    async with api:
        inv = await create(api, "bj-emecef")
        r = await api.post(f"/v1/invoices/{inv['id']}/certify", params={"wait": 0})
        assert r.status_code == 202 and r.json()["status"] == "queued"
        # nothing works the queue yet: it stays queued, and a synchronous certify refuses it
        again = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert again.status_code == 409 and again.json()["code"] == "invoice.cannot_certify.queued"
        async with workers(gw):
            final = await settled(api, inv["id"])
        assert final["status"] == "certified" and final["reference"]
        assert [j.state for j in jobs_of(gw, inv["id"])] == ["done"]
        # certified: a later queued certify sends nothing
        r = await api.post(f"/v1/invoices/{inv['id']}/certify", params={"wait": 5})
        assert r.status_code == 200 and r.headers["Fiscalgate-Already-Certified"] == "true"
    assert counter.count("PUT") == 1  # one confirmation at the e-MCF


async def test_create_with_certify_and_wait_answers_the_outcome(real_app: FastAPI) -> None:
    _, api, _, _ = await real_tenant(real_app, "cg-sfec")
    async with api, workers(gateway(real_app)):
        body = {"invoice": real_invoice("cg-sfec"), "certify": True}
        r = await api.post("/v1/invoices", json=body, params={"wait": 20})
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "certified"
        inv = await create(api, "cg-sfec")
        r = await api.post(f"/v1/invoices/{inv['id']}/approve", params={"certify": True})  # no wait: sync
        assert r.status_code == 409  # already approved: approving again is refused before certifying


# --- retry decisions ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "status", "expected"),
    [
        (AuthorityUnreachable("down", authority="x"), "failed", "retry"),
        (AuthorityServerError("502", authority="x"), "failed", "retry"),
        (RateLimited("429", authority="x"), "failed", "retry"),
        (AuthorityAuthError("401", authority="x"), "failed", "done"),
        (ConfigurationError("no settings"), "failed", "done"),
        (InvoiceRejected("bad", authority="x"), "rejected", "done"),
        (OutcomeUnknown("timeout", authority="x"), "unknown", "reconcile"),
    ],
)
def test_the_decision_reads_the_error_kind(error: Exception, status: str, expected: str) -> None:
    policy = RetryPolicy(max_attempts=3)
    outcome = Outcome(status, "whatever the message says", error=error)  # type: ignore[arg-type]
    assert decide(outcome, "bj-emecef", 1, policy) == expected
    # FNE cannot be asked: an unknown waits for a person; bounded attempts end loudly
    assert decide(outcome, "ci-fne", 1, policy) == ("person" if expected == "reconcile" else expected)
    last = decide(outcome, "bj-emecef", 3, policy)
    assert last == {"retry": "gave_up"}.get(expected, expected)
    # an uncertain outcome keeps its own look-ups after the certify attempts, then goes to a person
    final = decide(outcome, "bj-emecef", 3 + policy.max_reconciles, policy)
    assert final == {"retry": "gave_up", "reconcile": "person"}.get(expected, expected)


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_seconds=1, cap_seconds=10)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]:
        delays = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(timedelta(0) <= d <= timedelta(seconds=ceiling) for d in delays)
        assert max(delays) > timedelta(seconds=ceiling * 0.8)  # spread over the whole range


async def test_server_errors_are_retried_then_certified(real_app: FastAPI) -> None:
    _, api, _, injector = await real_tenant(real_app, "cg-sfec", max_attempts=1)
    injector.add("error", status=503, method="POST", times=2)
    async with api, workers(gateway(real_app)):
        inv = await queue_one(api, "cg-sfec")
        final = await settled(api, inv["id"])
    assert final["status"] == "certified" and final["attempts"] == 3


async def test_an_authority_down_for_good_ends_failed_after_bounded_attempts(real_app: FastAPI) -> None:
    _, api, _, injector = await real_tenant(real_app, "cg-sfec", max_attempts=1)
    injector.add("error", status=503, method="POST", times=-1)
    async with api, workers(gateway(real_app)):
        inv = await queue_one(api, "cg-sfec")
        final = await settled(api, inv["id"])
    assert final["status"] == "failed" and final["attempts"] == FAST.max_attempts
    assert "gave up after 4 attempts" in final["status_detail"]


async def test_a_rejection_stops_at_once(real_app: FastAPI) -> None:
    _, api, _, _ = await real_tenant(real_app, "cg-sfec")
    async with api, workers(gateway(real_app)):
        bad = real_invoice("cg-sfec", currency="XOF")  # SFEC certifies in XAF only
        r = await api.post("/v1/invoices", json={"invoice": bad, "certify": True}, params={"wait": 10})
        assert r.status_code in (201, 422), r.text
        if r.status_code == 201:
            assert r.json()["status"] in ("rejected", "failed") and r.json()["attempts"] == 1


# --- automatic reconciliation ---------------------------------------------------------------------
@pytest.mark.parametrize("authority", ["bj-emecef", "cg-sfec"])
async def test_a_lost_answer_is_reconciled_without_a_person(real_app: FastAPI, authority: str) -> None:
    # (SFEC: no retry inside the driver, so every POST below is the gateway's)
    extra: dict[str, Any] = {"max_attempts": 1} if authority == "cg-sfec" else {}
    _, api, counter, injector = await real_tenant(real_app, authority, timeout_seconds=0.5, **extra)
    # the authority records the request, the answer never comes back
    injector.add("hang_after_processing", method="POST", seconds=5)
    async with api, workers(gateway(real_app)):
        inv = await queue_one(api, authority)
        final = await settled(api, inv["id"])
    assert final["status"] == "certified", final
    assert counter.count("POST") == 1, counter.calls  # found by the reconciliation, never resent


async def test_fne_lost_answer_waits_for_a_person(real_app: FastAPI) -> None:
    _, api, counter, injector = await real_tenant(real_app, "ci-fne", timeout_seconds=0.5)
    injector.add("hang_after_processing", method="POST", seconds=5)
    gw = gateway(real_app)
    async with api, workers(gw):
        inv = await queue_one(api, "ci-fne")
        final = await settled(api, inv["id"])
    assert final["status"] == "unknown" and "a person must check" in final["status_detail"]
    assert counter.count("POST") == 1
    assert [(j.state, j.result) for j in jobs_of(gw, inv["id"])] == [("done", "unknown: waits for a person")]


# --- the claim of jobs -----------------------------------------------------------------------------
def test_concurrent_workers_never_take_the_same_job(database_url: str, real_app: FastAPI) -> None:
    gw = gateway(real_app)
    tenant_id = anyio.run(_tenant_with_queued, real_app, 40)
    taken: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def take(holder: str) -> None:
        start.wait()
        while (job := gw.db.call(claim_job, holder)) is not None:
            with lock:
                taken.append(job.id)

    threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 40 == len(set(taken))
    states = gw.db.call(
        lambda s: {j.state for j in s.scalars(select(JobRow).where(JobRow.tenant_id == tenant_id))}
    )
    assert states == {"running"}


async def _tenant_with_queued(app: FastAPI, n: int) -> str:
    tenant, api, _, _ = await real_tenant(app, "cg-sfec")
    gw = gateway(app)
    async with api:
        for _ in range(n):
            inv = await create(api, "cg-sfec")
            gw.db.call(enqueue_certification, tenant["id"], inv["id"])
    return str(tenant["id"])


# --- crash healing --------------------------------------------------------------------------------
def _dead_process(session: Session) -> None:
    long_ago = utcnow() - timedelta(minutes=1)
    session.add(
        ProcessRow(id="dead-1", kind="worker", host="h", pid=1, started_at=long_ago, heartbeat_at=long_ago)
    )
    session.flush()


def _claimed_by_the_dead(session: Session, tenant_id: str, invoice_id: str) -> None:
    """What kill -9 leaves: a running job and a `submitting` claim, both held by a process whose
    heartbeat stopped (the claim's own expiry is still an hour away)."""
    _dead_process(session)
    enqueue_certification(session, tenant_id, invoice_id)
    assert claim_job(session, "dead-1") is not None
    session.execute(
        update(InvoiceRow)
        .where(InvoiceRow.id == invoice_id)
        .values(
            status="submitting",
            claim_token="t",
            claim_holder="dead-1",
            claim_expires_at=utcnow() + timedelta(hours=1),
        )
    )


@pytest.mark.parametrize(("authority", "final"), [("cg-sfec", "certified"), ("ci-fne", "unknown")])
async def test_a_dead_process_claim_heals_in_seconds(real_app: FastAPI, authority: str, final: str) -> None:
    """A live process turns the dead one's claim into `unknown` at once (its first beat) and,
    where the authority allows, reconciles it: SFEC's look-up says "not certified" (the dead
    process never sent it), so the queue certifies it, once. FNE's waits for a person."""
    tenant, api, counter, _ = await real_tenant(real_app, authority)
    gw = gateway(real_app)
    async with api:
        inv = await create(api, authority)
        gw.db.call(_claimed_by_the_dead, tenant["id"], inv["id"])
        started = anyio.current_time()
        async with workers(gw):
            end = await settled(api, inv["id"])
        assert anyio.current_time() - started < 15
    assert end["status"] == final, end
    # the ERP is told the healed invoice is unknown (in the healing's transaction), so that one
    # left waiting for a person is never silent
    told = gw.db.call(
        lambda s: [
            e.data["status"]
            for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.created_at))
            if e.data.get("invoice_id") == inv["id"]
        ]
    )
    assert told[0] == "unknown" and told[-1] == final, told
    if authority == "ci-fne":
        assert counter.count("POST") == 0 and "no look-up" in end["status_detail"]
    else:
        assert end["reference"] and counter.count("POST") == 1


def test_the_sweep_requeues_a_dead_process_job_and_leaves_live_ones(
    database_url: str, real_app: FastAPI
) -> None:
    gw = gateway(real_app)
    tenant_id = anyio.run(_tenant_with_queued, real_app, 2)

    def scene(session: Session) -> None:
        _dead_process(session)
        session.add(
            ProcessRow(id="alive", kind="worker", host="h", pid=2, started_at=utcnow(), heartbeat_at=utcnow())
        )
        session.flush()
        assert claim_job(session, "dead-1") and claim_job(session, "alive")

    gw.db.call(scene)
    healed = gw.db.call(heal)
    assert healed.jobs_requeued == 1
    holders = gw.db.call(
        lambda s: sorted(
            (j.state, j.holder or "") for j in s.scalars(select(JobRow).where(JobRow.tenant_id == tenant_id))
        )
    )
    assert holders == [("queued", ""), ("running", "alive")]


async def test_the_sweep_marks_a_dead_process_call_interrupted_in_the_audit_log(real_app: FastAPI) -> None:
    """The entry a claim wrote `in flight` (issue 14) does not stay in flight for ever when its
    process died: the sweep that turns the claim into `unknown` marks it `interrupted`; another
    invoice's call in flight is left alone."""
    tenant, api, _, _ = await real_tenant(real_app, "ci-fne")
    gw = gateway(real_app)
    async with api:
        dead_one, live_one = await create(api, "ci-fne"), await create(api, "ci-fne")

    def scene(session: Session) -> None:
        _claimed_by_the_dead(session, tenant["id"], dead_one["id"])
        for invoice_id, holder in ((dead_one["id"], "dead-1"), (live_one["id"], "alive")):
            open_call(
                session,
                tenant_id=tenant["id"],
                authority="ci-fne",
                environment="mock",
                trigger="queue",
                invoice_id=invoice_id,
                event="invoice.certify",
                url=None,
                started_at=utcnow(),
                holder=holder,
            )

    gw.db.call(scene)
    healed = gw.db.call(heal)
    assert healed.unknown == 1

    def outcomes(session: Session) -> dict[str, str]:
        rows = session.execute(
            select(AuditEntry.invoice_id, AuditEntry.outcome).where(AuditEntry.kind == "authority_call")
        )
        return {str(i): str(o) for i, o in rows}

    assert gw.db.call(outcomes) == {dead_one["id"]: INTERRUPTED, live_one["id"]: "in flight"}


async def test_an_idempotency_key_of_a_dead_process_is_released(real_app: FastAPI) -> None:
    _, api, _, _ = await real_tenant(real_app, "cg-sfec")
    gw = gateway(real_app)
    async with api:
        body = {"invoice": real_invoice("cg-sfec"), "approve": True}
        first = await api.post("/v1/invoices", json=body, headers={"Idempotency-Key": "k-1"})
        assert first.status_code == 201

        def interrupted(session: Session) -> None:
            _dead_process(session)
            session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.key == "k-1")
                .values(response_status=None, response_body=None, holder="dead-1")
            )

        gw.db.call(interrupted)
        other = {"invoice": real_invoice("cg-sfec"), "approve": True}
        again = await api.post("/v1/invoices", json=other, headers={"Idempotency-Key": "k-1"})
        # not "in progress" for 30 minutes: the dead holder's key is taken over at once
        assert again.status_code == 201, again.text
