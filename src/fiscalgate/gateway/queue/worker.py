"""Queue workers: take ready jobs and run the certification steps on them, `concurrency` at a
time, in `fiscalgate serve` (embedded) or in `fiscalgate worker` processes (any number).

A job's attempt is exactly the synchronous one (`certification.run_attempt`), claimed from
`queued` (certify) or `unknown` (reconcile); the job moves on (`policy.decide`) in the same
transaction that records the attempt's outcome on the invoice.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import anyio
from sqlalchemy.orm import Session

from fiscalgate.core.errors import ConfigurationError, OutcomeUnknown
from fiscalgate.gateway.certification import Attempt, Certify, Outcome, Reconcile, run_attempt
from fiscalgate.gateway.certification.claim import EnvironmentChanged
from fiscalgate.gateway.certification.run import INTERRUPTED
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import InvoiceOperationError
from fiscalgate.gateway.limits import Limits
from fiscalgate.gateway.limits.breaker import AUTHORITY_UP
from fiscalgate.gateway.limits.stalls import report_stalled, stall_threshold
from fiscalgate.gateway.queue.admission import Taken, resume_deferred, take_admitted
from fiscalgate.gateway.queue.healing import ProcessLife
from fiscalgate.gateway.queue.jobs import finish_job, requeue_job, settle_job
from fiscalgate.gateway.queue.models import JobRow
from fiscalgate.gateway.queue.policy import AUTO_RECONCILE, RetryPolicy, decide
from fiscalgate.gateway.runtime import Gateway

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 8
DEFAULT_POLL = 1.0  # seconds between looks at the queue when idle (other processes' enqueues)
DEFAULT_GRACE = 30.0  # seconds in-flight attempts get to finish on a graceful stop
STALL_EVERY_ENV = "FISCALGATE_STALL_CHECK_EVERY"
DEFAULT_STALL_EVERY = 60.0  # seconds between two runs of the stall detector in each process


def stall_check_every(environ: Mapping[str, str] | None = None) -> float:
    """`FISCALGATE_STALL_CHECK_EVERY` (seconds, default 60; 0 turns the periodic run off)."""
    raw = (os.environ if environ is None else environ).get(STALL_EVERY_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_STALL_EVERY
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"{STALL_EVERY_ENV} must be seconds, not {raw!r}", code="settings.limits"
        ) from None
    if value < 0 or not math.isfinite(value):
        raise ConfigurationError(f"{STALL_EVERY_ENV} must be 0 or more seconds", code="settings.limits")
    return value


async def watch_stalls(gw: Gateway, every: float, threshold: timedelta) -> None:
    """Run the stall detector every `every` seconds: each invoice stuck in `queued`, `submitting`
    or `unknown` for longer than `threshold` gets one `invoice.stalled` audit event per stay (the
    dashboard and `/metrics` read the same query live). Every process runs it; the detector writes
    an invoice's event once per stay, so several processes only repeat the read."""
    while True:
        try:
            fresh = await gw.db.run(lambda s: report_stalled(s, threshold))
        except Exception:
            log.exception("the stall detector failed; trying again in %s s", every)
        else:
            for item in fresh:
                log.warning(
                    "invoice %s (%s, %s) has been %s for %s: %s",
                    item.id,
                    item.authority,
                    item.number,
                    item.status,
                    item.age,
                    item.status_detail,
                )
        await anyio.sleep(every)


@dataclass
class JobSettlement:
    """Run inside the transaction that records an attempt's outcome: decides the job's next step
    from the outcome, moves the job, and returns the outcome to record (a retry is `queued`)."""

    job: JobRow
    holder: str
    policy: RetryPolicy
    rng: random.Random
    limits: Limits | None = None
    taken: Taken | None = None

    def tell_limits(self, session: Session, outcome: Outcome) -> None:
        """The admitted call's outcome, to the breaker and the pending cap, in this transaction."""
        if self.limits is None or self.taken is None:
            return
        t = self.taken.target
        if outcome.status == "unknown" and outcome.error is None and outcome.detail == INTERRUPTED.detail:
            # cancelled mid-call: the request may be pending; nothing was learnt about the platform
            self.limits.hold_unfinished(session, t.tenant_id, t.authority, t.environment, self.job.invoice_id)
            if self.taken.admitted.probe:
                self.limits.free_probe(session, t.tenant_id, t.authority, t.environment)
            return
        event = self.limits.settle(
            session, t.tenant_id, t.authority, t.environment, self.job.invoice_id, outcome.error
        )
        now = self.limits.clock.now()
        if event == AUTHORITY_UP:  # the probe went through: the jobs held back go now
            resume_deferred(session, t, "breaker_open", now)
        elif t.authority in self.limits.caps and not isinstance(outcome.error, OutcomeUnknown):
            resume_deferred(session, t, "pending_cap", now, limit=1)  # its slot is free

    def __call__(self, session: Session, attempt: Attempt, outcome: Outcome) -> Outcome:
        self.tell_limits(session, outcome)
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
        limits: Limits | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("a worker needs a concurrency of at least 1")
        self.gw = gw
        self.concurrency = concurrency
        self.poll = poll
        self.grace = grace
        self.policy = policy or RetryPolicy()
        self.rng = random.Random(seed)
        self.limits = limits if limits is not None else Limits.from_env()
        self.deferred = 0  # jobs the limits put back (not attempts), for tests and logs
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
                    taken, deferred = await self.gw.db.run(take_admitted, self.holder, self.limits)
                except Exception:
                    log.exception("could not take a job; trying again")
                    taken, deferred = None, False
                if deferred:
                    self.deferred += 1
                    continue  # another authority's job may be ready: look again at once
                if taken is None:
                    await self.gw.queue.wait_for_work(self.poll)
                    continue
                self.busy += 1
                self._idle = anyio.Event()
                tg.start_soon(self._run_job, taken)
            with anyio.move_on_after(self.grace):
                await self._idle.wait()
            tg.cancel_scope.cancel()

    async def _run_job(self, taken: Taken) -> None:
        job = taken.job
        try:
            await self.run_job(job, taken)
        except Exception:
            log.exception("job %s (invoice %s) failed in the worker", job.id, job.invoice_id)
            with anyio.CancelScope(shield=True):
                when = utcnow() + self.policy.backoff(job.attempts, self.rng)
                try:
                    await self.gw.db.run(requeue_job, job.id, self.holder, "worker error", when)
                    await self.gw.db.run(self._abandon, taken)
                except Exception:
                    log.exception("could not put job %s back; healing will", job.id)
        finally:
            self.busy -= 1
            self._slot.set()
            if self.busy == 0:
                self._idle.set()
            self.gw.queue.settled(job.invoice_id)

    def _abandon(self, session: Session, taken: Taken) -> None:
        """The admitted call was not made: give back what admission took."""
        t = taken.target
        self.limits.abandon(
            session, t.tenant_id, t.authority, t.environment, taken.job.invoice_id, taken.admitted.probe
        )

    async def run_job(self, job: JobRow, taken: Taken | None = None) -> None:
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
        settlement = JobSettlement(job, self.holder, self.policy, self.rng, self.limits, taken)
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
            if taken is not None:
                await self.gw.db.run(self._abandon, taken)
            return
        if not claimed:
            await self.gw.db.run(settle_unclaimed, job, self.holder, row.status, row.authority)
            if taken is not None:
                await self.gw.db.run(self._abandon, taken)


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
    limits: Limits | None = None,
    stall_every: float | None = None,
    stall_after: timedelta | None = None,
) -> AsyncIterator[Worker | None]:
    """This process's heartbeat and healing, the periodic stall detector (`stall_every` seconds,
    default `FISCALGATE_STALL_CHECK_EVERY`; threshold `FISCALGATE_STALL_AFTER`), and
    (concurrency > 0) a worker, for the duration of the block; on exit the worker stops
    gracefully, then the process says it stopped."""
    every = stall_check_every() if stall_every is None else stall_every
    threshold = stall_threshold() if stall_after is None else stall_after
    life = ProcessLife(gw, kind, heartbeat=heartbeat, dead_after=dead_after)
    await anyio.to_thread.run_sync(life.start)
    stop = anyio.Event()
    worker = (
        Worker(gw, concurrency=concurrency, poll=poll, grace=grace, policy=policy, limits=limits)
        if concurrency
        else None
    )
    try:
        async with anyio.create_task_group() as tg:
            if worker is not None:
                tg.start_soon(worker.run, stop)
            watcher = anyio.CancelScope()
            if every > 0:

                async def watch() -> None:
                    with watcher:
                        await watch_stalls(gw, every, threshold)

                tg.start_soon(watch)
            try:
                yield worker
            finally:
                watcher.cancel()
                stop.set()
                gw.queue.wake()
    finally:
        await anyio.to_thread.run_sync(life.stop)
