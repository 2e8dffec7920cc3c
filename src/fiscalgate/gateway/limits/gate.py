"""The limits together, over their shared state in the database: what a worker calls.

    decision = limits.admit(session, tenant, authority, environment, holder=invoice_id)
    # in the transaction that claims the job; Deferred -> put the job back until decision.retry_at
    # (not an attempt, not a failure); Admitted -> send
    limits.settle(session, tenant, authority, environment, holder=invoice_id, error=exc_or_None)
    # in the transaction that records the attempt's outcome

`admit` looks at the breaker, then the pending cap, then the rate limit, and writes nothing
unless all three let the call go (a deferred job burns no token and starts no probe). Rows are
locked (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already serialises
writers) so two processes never both take the last token or the last pending slot. Every key is
its own tenant x authority (x environment): one dead platform, or one tenant's exhausted quota,
never holds back another.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fiscalgate.core.errors import ConfigurationError, OutcomeUnknown
from fiscalgate.gateway.limits import events
from fiscalgate.gateway.limits.breaker import (
    AUTHORITY_DOWN,
    BREAKER_COOLDOWN_ENV,
    BREAKER_THRESHOLD_ENV,
    BreakerPolicy,
    BreakerState,
    Phase,
    Verdict,
    admit,
    record,
    signal_of,
)
from fiscalgate.gateway.limits.clock import Clock, SystemClock
from fiscalgate.gateway.limits.models import BreakerRow, PendingSlotRow, RateBucketRow
from fiscalgate.gateway.limits.pending import PENDING_CAPS, PendingCap, check_slots
from fiscalgate.gateway.limits.rate import RATE_LIMITS_ENV, Bucket, RateLimits, parse_rate_limits, take

Reason = Literal["breaker_open", "pending_cap", "rate_limited", "same_content"]


@dataclass(frozen=True)
class Admitted:
    probe: bool = False  # this call is the half-open breaker's probe


@dataclass(frozen=True)
class Deferred:
    reason: Reason
    retry_at: datetime
    detail: str


def _locked(session: Session, model: Any, key: dict[str, str]) -> Any:
    stmt = select(model).filter_by(**key).with_for_update().execution_options(populate_existing=True)
    return session.scalars(stmt).one_or_none()


def _current(session: Session, model: Any, key: dict[str, str]) -> Any:
    """The row as committed, without a lock: enough to see that nothing needs writing."""
    stmt = select(model).filter_by(**key).execution_options(populate_existing=True)
    return session.scalars(stmt).one_or_none()


def _locked_or_new(session: Session, model: Any, key: dict[str, str], defaults: dict[str, Any]) -> Any:
    row = _locked(session, model, key)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(model(**key, **defaults))
    except IntegrityError:  # another process created it meanwhile: lock theirs
        pass
    return _locked(session, model, key)


def _breaker_state(row: BreakerRow) -> BreakerState:
    return BreakerState(Phase(row.phase), row.failures, row.opened_at, row.probe_started_at)


def _store_breaker(row: BreakerRow, state: BreakerState, now: datetime) -> None:
    row.phase = state.phase.value
    row.failures = state.failures
    row.opened_at = state.opened_at
    row.probe_started_at = state.probe_started_at
    row.updated_at = now


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}", code="settings.limits") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, not {raw!r}", code="settings.limits")
    return value


@dataclass
class Limits:
    rates: RateLimits = field(default_factory=RateLimits)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    caps: Mapping[str, PendingCap] = field(default_factory=lambda: dict(PENDING_CAPS))
    clock: Clock = field(default_factory=SystemClock)
    emit: events.EventSink = events.emit

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, clock: Clock | None = None) -> Limits:
        """`FISCALGATE_RATE_LIMITS`, `FISCALGATE_BREAKER_THRESHOLD` (consecutive failures, default
        5), `FISCALGATE_BREAKER_COOLDOWN` (seconds, default 30)."""
        env = os.environ if environ is None else environ
        threshold = _seconds(env, BREAKER_THRESHOLD_ENV, 5)
        if threshold != int(threshold):
            raise ConfigurationError(
                f"{BREAKER_THRESHOLD_ENV} must be a whole number", code="settings.limits"
            )
        policy = BreakerPolicy(
            threshold=int(threshold), cooldown=timedelta(seconds=_seconds(env, BREAKER_COOLDOWN_ENV, 30))
        )
        return cls(
            rates=parse_rate_limits(env.get(RATE_LIMITS_ENV)), breaker=policy, clock=clock or SystemClock()
        )

    # --- before sending ---------------------------------------------------------------------------
    def admit(
        self,
        session: Session,
        tenant_id: str,
        authority: str,
        environment: str,
        holder: str,
        *,
        opens_pending: bool = True,
    ) -> Admitted | Deferred:
        """`opens_pending=False` for a call that finishes a pending request instead of opening
        one (a reconciliation): the pending cap does not apply to it (it frees a slot), else ten
        unknown outcomes would hold every slot and block the reconciliations that free them."""
        now = self.clock.now()
        key = {"tenant_id": tenant_id, "authority": authority, "environment": environment}
        cap = self.caps.get(authority) if opens_pending else None
        # The breaker row is locked only when this admission writes it (a probe) or when it
        # serialises the pending slots of the key; a closed or open breaker is only read, so the
        # admissions of one tenant x authority do not queue behind each other's transactions.
        breaker_row: BreakerRow | None = _current(session, BreakerRow, key)
        if (
            breaker_row is None
            or cap is not None
            or admit(_breaker_state(breaker_row), self.breaker, now).verdict is Verdict.PROBE
        ):
            breaker_row = _locked_or_new(session, BreakerRow, key, {"updated_at": now})
        assert breaker_row is not None
        verdict = admit(_breaker_state(breaker_row), self.breaker, now)
        if verdict.verdict is Verdict.WAIT:
            assert verdict.retry_at is not None
            return Deferred(
                "breaker_open",
                verdict.retry_at,
                f"{authority} ({environment}) looks down: the circuit breaker is open until "
                f"{verdict.retry_at.isoformat()}",
            )
        slot: PendingSlotRow | None = None
        if cap is not None:
            # The breaker row, locked above, serialises the slot bookkeeping of this key.
            held = list(session.scalars(select(PendingSlotRow).filter_by(**key)))
            slot = next((s for s in held if s.holder == holder), None)
            check = check_slots((s.expires_at for s in held if s.holder != holder), cap, now)
            if not check.free:
                assert check.retry_at is not None
                return Deferred(
                    "pending_cap",
                    min(check.retry_at, now + timedelta(seconds=5)),  # a finishing call frees one sooner
                    f"{authority} allows {cap.limit} pending requests and {cap.limit} are in flight",
                )
        limit = self.rates.for_(tenant_id, authority)
        bucket_row: RateBucketRow | None = None
        if limit is not None:
            bucket_row = _locked_or_new(
                session,
                RateBucketRow,
                {"tenant_id": tenant_id, "authority": authority},
                {"tokens": float(limit.burst), "updated_at": now},
            )
            assert bucket_row is not None
            taken = take(Bucket(bucket_row.tokens, bucket_row.updated_at), limit, now)
            if not taken.allowed:
                return Deferred(
                    "rate_limited",
                    now + taken.retry_after,
                    f"rate limit for {authority}: {limit.rate:g}/s, burst {limit.burst}",
                )
            bucket_row.tokens, bucket_row.updated_at = taken.bucket.tokens, taken.bucket.updated_at
        # Everything lets it go: now write.
        if verdict.verdict is Verdict.PROBE:
            _store_breaker(breaker_row, verdict.state, now)
        if cap is not None:
            if slot is None:
                session.add(PendingSlotRow(**key, holder=holder, expires_at=now + cap.hold))
            else:
                slot.expires_at = now + cap.hold
        session.flush()
        return Admitted(probe=verdict.verdict is Verdict.PROBE)

    # --- after the outcome --------------------------------------------------------------------------
    def settle(
        self,
        session: Session,
        tenant_id: str,
        authority: str,
        environment: str,
        holder: str,
        error: BaseException | None,
    ) -> str | None:
        """Record the outcome of an admitted call (error None = it succeeded); returns the event
        emitted (`authority.down` / `authority.up`) or None."""
        now = self.clock.now()
        key = {"tenant_id": tenant_id, "authority": authority, "environment": environment}
        signal = signal_of(error)
        # Locked only when the outcome changes the breaker: the usual success on a closed breaker
        # changes nothing, and locking the row for the rest of the recording transaction made
        # every worker's recording of one tenant x authority wait for the previous one's commit.
        row: BreakerRow | None = _current(session, BreakerRow, key)
        if row is None or record(_breaker_state(row), signal, self.breaker, now) != (
            _breaker_state(row),
            None,
        ):
            row = _locked_or_new(session, BreakerRow, key, {"updated_at": now})
        assert row is not None
        before = _breaker_state(row)
        state, event = record(before, signal, self.breaker, now)
        if state != before:
            _store_breaker(row, state, now)
        cap = self.caps.get(authority)
        if cap is not None:
            if isinstance(error, OutcomeUnknown):
                # Sent, no answer: the request may be pending until the platform expires it
                # (or a reconciliation confirms or cancels it and calls `release`).
                _keep_slot(session, tenant_id, authority, environment, holder, now + cap.expiry)
            else:
                self.release(session, tenant_id, authority, environment, holder)
        if event is not None:
            self.emit(
                session,
                tenant_id,
                event,
                {
                    "tenant_id": tenant_id,
                    "authority": authority,
                    "environment": environment,
                    "at": now.isoformat(),
                    "consecutive_failures": state.failures if event == AUTHORITY_DOWN else before.failures,
                    "error": getattr(error, "code", None),
                },
            )
        session.flush()
        return event

    def release(
        self, session: Session, tenant_id: str, authority: str, environment: str, holder: str
    ) -> None:
        """Free `holder`'s pending slot (its request was finalised: confirmed, cancelled, refused)."""
        session.execute(delete(PendingSlotRow).where(*_slot_of(tenant_id, authority, environment, holder)))

    def abandon(
        self, session: Session, tenant_id: str, authority: str, environment: str, holder: str, probe: bool
    ) -> None:
        """An admitted call that was never sent (the invoice was not in the expected status, its
        settings changed): free its pending slot and, if it was the breaker's probe, let the next
        call probe at once instead of waiting for the probe lease."""
        self.release(session, tenant_id, authority, environment, holder)
        if probe:
            self.free_probe(session, tenant_id, authority, environment)
        session.flush()

    def free_probe(self, session: Session, tenant_id: str, authority: str, environment: str) -> None:
        """The half-open breaker's probe taught nothing: the next call may probe at once."""
        key = {"tenant_id": tenant_id, "authority": authority, "environment": environment}
        row: BreakerRow | None = _locked(session, BreakerRow, key)
        if row is not None and row.phase == Phase.HALF_OPEN.value:
            now = self.clock.now()
            _store_breaker(
                row, BreakerState(Phase.OPEN, row.failures, opened_at=now - self.breaker.cooldown), now
            )

    def hold_unfinished(
        self, session: Session, tenant_id: str, authority: str, environment: str, holder: str
    ) -> None:
        """A call interrupted after it may have been sent: its request may be pending, so its slot
        is kept for the platform's expiry (no breaker signal: nothing was learnt about the platform)."""
        cap = self.caps.get(authority)
        if cap is None:
            return
        _keep_slot(session, tenant_id, authority, environment, holder, self.clock.now() + cap.expiry)

    # --- reading ----------------------------------------------------------------------------------
    def breaker_state(
        self, session: Session, tenant_id: str, authority: str, environment: str
    ) -> BreakerState:
        row = session.get(BreakerRow, (tenant_id, authority, environment))
        return BreakerState() if row is None else _breaker_state(row)


@dataclass(frozen=True)
class OpenBreaker:
    tenant_id: str
    authority: str
    environment: str
    phase: str
    opened_at: datetime | None
    failures: int


def open_breakers(session: Session, tenant_id: str | None = None) -> list[OpenBreaker]:
    """Breakers not closed (open or probing), for metrics and the dashboard."""
    query = select(BreakerRow).where(BreakerRow.phase != Phase.CLOSED.value)
    if tenant_id is not None:
        query = query.where(BreakerRow.tenant_id == tenant_id)
    return [
        OpenBreaker(r.tenant_id, r.authority, r.environment, r.phase, r.opened_at, r.failures)
        for r in session.scalars(query.order_by(BreakerRow.tenant_id, BreakerRow.authority))
    ]


def _slot_of(tenant_id: str, authority: str, environment: str, holder: str) -> tuple[Any, ...]:
    """The pending slot `holder` took for one tenant × authority × environment."""
    return (
        PendingSlotRow.tenant_id == tenant_id,
        PendingSlotRow.authority == authority,
        PendingSlotRow.environment == environment,
        PendingSlotRow.holder == holder,
    )


def _keep_slot(
    session: Session, tenant_id: str, authority: str, environment: str, holder: str, until: datetime
) -> None:
    """Keep `holder`'s slot until the platform expires the request it may have left pending."""
    session.execute(
        update(PendingSlotRow)
        .where(*_slot_of(tenant_id, authority, environment, holder))
        .values(expires_at=until)
        .execution_options(synchronize_session=False)
    )
