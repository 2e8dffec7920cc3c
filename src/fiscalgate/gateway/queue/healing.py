"""Crash healing: every process leaves a heartbeat, and any live process turns a dead process's
work into something that finishes.

- A process (`serve` or `worker`) registers a row in `gateway_processes` and beats every
  `HEARTBEAT` seconds from a thread of its own (an event loop busy with work does not stop it).
- It is dead when its last beat is older than `DEAD_AFTER`, or it said it stopped.
- At each beat, every process sweeps: an invoice `submitting` under a dead process's claim, or
  past its claim's expiry (`claim_expires_at`, derived from the tenant's timeout and attempts),
  becomes `unknown` (it may be certified: never back to certifiable), and is queued for an
  automatic reconciliation where the authority allows it (e-MECeF, SFEC); FNE's waits for a
  person. The audit entry of the call it was making (written `in flight` with the claim) becomes
  `interrupted`. A job a dead process was running goes back to the queue.
- An `Idempotency-Key` whose request was held by a dead process is released on its next use
  (api/idempotency.py), by the same rule.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from fiscalgate.gateway.audit.service import close_interrupted
from fiscalgate.gateway.certification.claim import DEAD_AFTER
from fiscalgate.gateway.db import new_id, utcnow
from fiscalgate.gateway.invoices.lifecycle import STALE_DETAIL, lifecycle_event
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.queue.jobs import live_job
from fiscalgate.gateway.queue.models import JobRow, ProcessRow
from fiscalgate.gateway.queue.policy import AUTO_RECONCILE
from fiscalgate.gateway.runtime import Gateway

log = logging.getLogger(__name__)


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


HEARTBEAT = _seconds("FISCALGATE_HEARTBEAT_SECONDS", 2.0)
PERSON_DETAIL = (
    "the process handling the call stopped; {authority} has no look-up: check its portal, then "
    "reconcile with record_reference or not_certified"
)


def dead_processes(now: datetime, dead_after: float) -> object:
    """The ids of processes that stopped, or whose last beat is older than `dead_after`."""
    return select(ProcessRow.id).where(
        or_(ProcessRow.stopped_at.is_not(None), ProcessRow.heartbeat_at < now - timedelta(seconds=dead_after))
    )


def register(session: Session, kind: str) -> str:
    process_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{new_id()[:8]}"
    now = utcnow()
    session.add(
        ProcessRow(
            id=process_id,
            kind=kind,
            host=socket.gethostname()[:255],
            pid=os.getpid(),
            started_at=now,
            heartbeat_at=now,
        )
    )
    return process_id


def beat(session: Session, process_id: str) -> None:
    session.execute(
        update(ProcessRow)
        .where(ProcessRow.id == process_id)
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def stopped(session: Session, process_id: str) -> None:
    session.execute(
        update(ProcessRow)
        .where(ProcessRow.id == process_id)
        .values(stopped_at=utcnow())
        .execution_options(synchronize_session=False)
    )


@dataclass
class Healed:
    unknown: int = 0  # claims turned into `unknown`
    reconciling: int = 0  # of which queued for automatic reconciliation
    for_a_person: int = 0  # of which wait for a person (no look-up)
    jobs_requeued: int = 0  # jobs of dead processes put back in the queue


def heal(session: Session, dead_after: float = DEAD_AFTER, now: datetime | None = None) -> Healed:
    """One sweep (see the module docstring), in the caller's transaction."""
    now = now or utcnow()
    dead = dead_processes(now, dead_after)
    healed = Healed()
    abandoned = list(
        session.scalars(
            select(InvoiceRow).where(
                InvoiceRow.status == "submitting",
                or_(InvoiceRow.claim_expires_at < now, InvoiceRow.claim_holder.in_(dead)),  # type: ignore[arg-type]
            )
        )
    )
    for row in abandoned:
        holder = row.claim_holder
        automatic = row.authority in AUTO_RECONCILE
        detail = (
            f"{STALE_DETAIL}: automatic reconciliation queued"
            if automatic
            else PERSON_DETAIL.format(authority=row.authority)
        )
        moved = session.execute(
            update(InvoiceRow)
            .where(
                InvoiceRow.id == row.id,
                InvoiceRow.status == "submitting",
                InvoiceRow.claim_token == row.claim_token,
            )
            .values(
                status="unknown", claim_token=None, claim_holder=None, status_detail=detail, updated_at=now
            )
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            continue  # its holder finished meanwhile
        healed.unknown += 1
        session.refresh(row)
        lifecycle_event(session, row, "healing", "invoice.claim_abandoned", {"holder": holder})
        close_interrupted(session, row.id)
        job = live_job(session, row.id)
        if automatic:
            healed.reconciling += 1
            if job is not None:
                job.action, job.state, job.holder, job.lease_expires_at = "reconcile", "queued", None, None
                job.run_after, job.updated_at = now, now
                job.result = "its process stopped during the call: reconcile"
            else:
                session.add(
                    JobRow(
                        tenant_id=row.tenant_id,
                        invoice_id=row.id,
                        action="reconcile",
                        state="queued",
                        attempts=0,
                        run_after=now,
                        trigger="healing",
                        created_at=now,
                        updated_at=now,
                    )
                )
        else:
            healed.for_a_person += 1
            log.warning("invoice %s (%s): %s", row.id, row.authority, detail)
            if job is not None:
                job.state, job.holder, job.lease_expires_at, job.updated_at = "done", None, None, now
                job.result = "unknown: waits for a person"
    session.flush()
    requeued = session.execute(
        update(JobRow)
        .where(
            JobRow.state == "running",
            or_(JobRow.lease_expires_at < now, JobRow.holder.in_(dead)),  # type: ignore[arg-type]
        )
        .values(state="queued", holder=None, lease_expires_at=None, run_after=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    healed.jobs_requeued = int(requeued.rowcount or 0)  # type: ignore[attr-defined]
    if healed.unknown or healed.jobs_requeued:
        log.warning("healing: %s", healed)
    return healed


class ProcessLife:
    """Registers this process, beats and sweeps from a thread, and says when it stopped."""

    def __init__(
        self, gw: Gateway, kind: str, *, heartbeat: float | None = None, dead_after: float | None = None
    ) -> None:
        self.gw = gw
        self.kind = kind
        self.heartbeat = HEARTBEAT if heartbeat is None else heartbeat
        self.dead_after = DEAD_AFTER if dead_after is None else dead_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.swept = threading.Event()  # set after each sweep (tests wait on it)

    def start(self) -> str:
        self.gw.process_id = self.gw.db.call(register, self.kind)
        self._tick()  # heal what a previous run left, at once
        self._thread = threading.Thread(target=self._run, name=f"fiscalgate-{self.kind}-life", daemon=True)
        self._thread.start()
        return self.gw.process_id

    def _tick(self) -> None:
        assert self.gw.process_id is not None
        try:
            self.gw.db.call(beat, self.gw.process_id)
            self.gw.db.call(heal, self.dead_after)
        except Exception:  # a database hiccup must not stop the heartbeat for good
            log.exception("heartbeat / healing failed; trying again at the next beat")
        self.swept.set()

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat):
            self._tick()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.gw.process_id is not None:
            try:
                self.gw.db.call(stopped, self.gw.process_id)
            except Exception:
                log.exception("could not record this process's stop")
