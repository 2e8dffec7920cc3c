"""Queue workers: take ready jobs and run the certification steps on them, `concurrency` at a
time, in `fiscalgate serve` (embedded) or in `fiscalgate worker` processes (any number).

A job's attempt is exactly the synchronous one (`certification.run_attempt`), claimed from
`queued` (certify) or `unknown` (reconcile); the job moves on (`policy.decide`) in the same
transaction that records the attempt's outcome on the invoice.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import anyio
from sqlalchemy.orm import Session

from fiscalgate.gateway.certification import Attempt, Certify, Outcome, Reconcile, run_attempt
from fiscalgate.gateway.certification.claim import EnvironmentChanged
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import InvoiceOperationError
from fiscalgate.gateway.queue.healing import ProcessLife
from fiscalgate.gateway.queue.jobs import claim_job, finish_job, requeue_job, settle_job
from fiscalgate.gateway.queue.models import JobRow
from fiscalgate.gateway.queue.policy import AUTO_RECONCILE, RetryPolicy, decide
from fiscalgate.gateway.runtime import Gateway

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 8
DEFAULT_POLL = 1.0  # seconds between looks at the queue when idle (other processes' enqueues)
DEFAULT_GRACE = 30.0  # seconds in-flight attempts get to finish on a graceful stop


@dataclass
class JobSettlement:
    """Run inside the transaction that records an attempt's outcome: decides the job's next step
    from the outcome, moves the job, and returns the outcome to record (a retry is `queued`)."""

    job: JobRow
    holder: str
    policy: RetryPolicy
    rng: random.Random

    def __call__(self, session: Session, attempt: Attempt, outcome: Outcome) -> Outcome:
        job, policy = self.job, self.policy
        authority = attempt.claim.row.authority if attempt.claim is not None else ""
        now = utcnow()
        step = decide(outcome, authority, job.attempts, policy)
        if step == "retry":
            when = now + policy.backoff(job.attempts, self.rng)
            outcome.status = "queued"
            outcome.detail = (
                f"{outcome.detail}; retry {job.attempts + 1}/{policy.max_attempts} at {when:%H:%M:%S} UTC"
            )
            settle_job(
                session, job.id, self.holder, state="queued", result="retry", action="certify", run_after=when
            )
        elif step == "reconcile":
            when = now + policy.reconcile_delay(job.attempts, self.rng)
            outcome.detail = f"{outcome.detail}; automatic reconciliation at {when:%H:%M:%S} UTC"
            settle_job(
                session,
                job.id,
                self.holder,
                state="queued",
                result="reconcile",
                action="reconcile",
                run_after=when,
            )
        elif step == "person":
            if authority not in AUTO_RECONCILE:
                outcome.detail = (
                    f"{outcome.detail} ({authority} has no look-up: a person must check its portal)"
                )
            else:
                outcome.detail = (
                    f"{outcome.detail} (still unknown after {job.attempts} attempts: a person must check)"
                )
            log.warning("invoice %s waits for a person: %s", job.invoice_id, outcome.detail)
            settle_job(session, job.id, self.holder, state="done", result="unknown: waits for a person")
        elif step == "gave_up":
            outcome.detail = f"{outcome.detail} (gave up after {job.attempts} attempts)"
            log.error("invoice %s: certification failed for good: %s", job.invoice_id, outcome.detail)
            settle_job(
                session, job.id, self.holder, state="done", result=f"failed after {job.attempts} attempts"
            )
        else:
            settle_job(session, job.id, self.holder, state="done", result=outcome.status)
        return outcome


def settle_unclaimed(session: Session, job: JobRow, holder: str, status: str, authority: str) -> None:
    """The job's invoice was not in the status its action starts from: nothing was sent."""
    now = utcnow()
    if job.action == "certify" and status == "unknown" and authority in AUTO_RECONCILE:
        settle_job(
            session, job.id, holder, state="queued", result="reconcile", action="reconcile", run_after=now
        )
    elif status == "submitting":  # held by a live attempt elsewhere: look again later
        settle_job(
            session, job.id, holder, state="queued", result="busy", run_after=now + timedelta(seconds=5)
        )
    else:
        settle_job(session, job.id, holder, state="done", result=f"nothing to do: the invoice is {status}")


class Worker:
    def __init__(
        self,
        gw: Gateway,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        poll: float = DEFAULT_POLL,
        grace: float = DEFAULT_GRACE,
        policy: RetryPolicy | None = None,
        seed: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("a worker needs a concurrency of at least 1")
        self.gw = gw
        self.concurrency = concurrency
        self.poll = poll
        self.grace = grace
        self.policy = policy or RetryPolicy()
        self.rng = random.Random(seed)
        self.busy = 0
        self._slot = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()

    @property
    def holder(self) -> str:
        if self.gw.process_id is None:
            raise RuntimeError("a worker runs in a registered process (ProcessLife.start())")
        return self.gw.process_id

    async def run(self, stop: anyio.Event) -> None:
        """Work until `stop` is set, then stop taking jobs and give the ones in flight `grace`
        seconds to finish; past it they are cancelled, which records them `unknown` (and queues
        their reconciliation) rather than leaving them `submitting`."""
        async with anyio.create_task_group() as tg:
            while not stop.is_set():
                if self.busy >= self.concurrency:
                    self._slot = anyio.Event()
                    with anyio.move_on_after(self.poll):
                        await self._slot.wait()
                    continue
                try:
                    job = await self.gw.db.run(claim_job, self.holder)
                except Exception:
                    log.exception("could not take a job; trying again")
                    job = None
                if job is None:
                    await self.gw.queue.wait_for_work(self.poll)
                    continue
                self.busy += 1
                self._idle = anyio.Event()
                tg.start_soon(self._run_job, job)
            with anyio.move_on_after(self.grace):
                await self._idle.wait()
            tg.cancel_scope.cancel()

    async def _run_job(self, job: JobRow) -> None:
        try:
            await self.run_job(job)
        except Exception:
            log.exception("job %s (invoice %s) failed in the worker", job.id, job.invoice_id)
            with anyio.CancelScope(shield=True):
                when = utcnow() + self.policy.backoff(job.attempts, self.rng)
                try:
                    await self.gw.db.run(requeue_job, job.id, self.holder, "worker error", when)
                except Exception:
                    log.exception("could not put job %s back; healing will", job.id)
        finally:
            self.busy -= 1
            self._slot.set()
            if self.busy == 0:
                self._idle.set()
            self.gw.queue.settled(job.invoice_id)

    async def run_job(self, job: JobRow) -> None:
        """One attempt for one job: the certification steps, then the job's next step."""
        reconciling = job.action == "reconcile"
        attempt = Attempt(
            job.tenant_id,
            job.invoice_id,
            f"queue:{job.trigger}",
            "invoice.reconcile.confirm" if reconciling else "invoice.certify",
            ("unknown",) if reconciling else ("queued",),
            holder=self.holder,
        )
        settlement = JobSettlement(job, self.holder, self.policy, self.rng)
        try:
            claimed, row = await run_attempt(
                self.gw,
                attempt,
                Reconcile("confirm") if reconciling else Certify(),
                on_error_status="unknown" if reconciling else None,
                settle=settlement,
            )
        except InvoiceOperationError:
            return  # the outcome and the job's next step are recorded: the error is the outcome's
        except EnvironmentChanged as exc:
            log.warning("invoice %s waits for a person: %s", job.invoice_id, exc.message)
            await self.gw.db.run(finish_job, job.id, self.holder, f"waits for a person: {exc.message}")
            return
        if not claimed:
            await self.gw.db.run(settle_unclaimed, job, self.holder, row.status, row.authority)


@asynccontextmanager
async def run_background(
    gw: Gateway,
    kind: str = "serve",
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    poll: float = DEFAULT_POLL,
    grace: float = DEFAULT_GRACE,
    policy: RetryPolicy | None = None,
    heartbeat: float | None = None,
    dead_after: float | None = None,
) -> AsyncIterator[Worker | None]:
    """This process's heartbeat and healing, and (concurrency > 0) a worker, for the duration of
    the block; on exit the worker stops gracefully, then the process says it stopped."""
    life = ProcessLife(gw, kind, heartbeat=heartbeat, dead_after=dead_after)
    await anyio.to_thread.run_sync(life.start)
    stop = anyio.Event()
    worker = (
        Worker(gw, concurrency=concurrency, poll=poll, grace=grace, policy=policy) if concurrency else None
    )
    try:
        async with anyio.create_task_group() as tg:
            if worker is not None:
                tg.start_soon(worker.run, stop)
            try:
                yield worker
            finally:
                stop.set()
                gw.queue.wake()
    finally:
        await anyio.to_thread.run_sync(life.stop)
