"""Lock order of the queue on PostgreSQL: deferring the other jobs of a key never waits for a job
row another transaction holds. It used to: a worker whose claim was deferred (holding the breaker
row) waited for a job another worker had just claimed, while that worker waited for the breaker
row: PostgreSQL broke the deadlock by rolling one back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.limits import Deferred, Limits
from fiscalgate.gateway.queue.admission import defer, target_of
from fiscalgate.gateway.queue.jobs import claim_job
from fiscalgate.gateway.queue.models import JobRow
from tests.gateway.conftest import gateway
from tests.gateway.test_worker_process import (  # noqa: F401 (fixtures)
    app,
    pg_url,
    queue_invoices,
    secret,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def test_deferring_a_key_skips_the_jobs_another_transaction_holds(app: FastAPI) -> None:  # noqa: F811
    await queue_invoices(app, "http://127.0.0.1:9", 3)  # three queued jobs, nothing works them
    gw = gateway(app)
    other = gw.db.sessions()
    mine = gw.db.sessions()
    try:
        # Another worker claims one job and keeps its transaction open (it would now lock the
        # breaker row, which this worker holds).
        held = claim_job(other, "worker-b")
        assert held is not None
        # This worker claims the next one, is told to wait, and defers the key's other jobs.
        mine.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting for `held` fails, not hangs
        job = claim_job(mine, "worker-a")
        assert job is not None and job.id != held.id
        why = Deferred("breaker_open", utcnow() + timedelta(minutes=5), "test: the breaker is open")
        defer(mine, Limits(), job, target_of(mine, job), "worker-a", why)
        mine.commit()
        other.commit()
    finally:
        mine.close()
        other.close()
    jobs = {j.id: j for j in gw.db.call(lambda s: list(s.scalars(select(JobRow))))}
    assert jobs[held.id].state == "running"  # left alone: its holder goes on with it
    deferred = [j for j in jobs.values() if j.id != held.id]
    assert len(deferred) == 2 and all(j.state == "queued" for j in deferred)
    assert all(j.result is not None and j.result.startswith("deferred (breaker_open)") for j in deferred)
    assert all(j.attempts == 0 for j in deferred)  # a deferral burns no attempt
