"""Circuit breaker per tenant x authority x environment: a pure state machine.

    closed --N consecutive failures--> open --cool-down over--> half-open (one probe in flight)
    half-open --probe succeeds--> closed        half-open --probe fails--> open (cool-down again)

Only the error's kind is read (`signal_of`):
- failure: the authority did not answer usefully: `AuthorityUnreachable`, `AuthorityServerError`,
  `OutcomeUnknown` (a timeout after sending: a platform that takes connections but never answers is
  down too), except `DriverFailedAfterSending`, which is our bug, not the authority's;
- success: the authority answered, whatever it said (certified, rejected the invoice, refused our
  credentials, "already certified"): it is up;
- neutral: nothing tells either way (`RateLimited`: it is up but busy; our own validation or
  configuration errors: nothing was sent).

While open nothing is sent: the caller defers the job until `retry_at` (not an attempt, not a
failure). A success that arrives while open (a call sent before it opened) closes it: the
authority is evidently back. A probe that never reports (its worker died) is replaced after
`probe_lease`. `record` returns the event to emit: `authority.down` when it opens from closed,
`authority.up` when it closes again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from fiscalgate.core.errors import (
    AuthorityError,
    AuthorityServerError,
    AuthorityUnreachable,
    OutcomeUnknown,
    RateLimited,
)
from fiscalgate.gateway.errors import DriverFailedAfterSending

BREAKER_THRESHOLD_ENV = "FISCALGATE_BREAKER_THRESHOLD"
BREAKER_COOLDOWN_ENV = "FISCALGATE_BREAKER_COOLDOWN"
AUTHORITY_DOWN = "authority.down"
AUTHORITY_UP = "authority.up"


class Phase(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Signal(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"


class Verdict(StrEnum):
    SEND = "send"  # closed: go ahead
    PROBE = "probe"  # half-open: this one call tests the water
    WAIT = "wait"  # open, or a probe already in flight: defer until retry_at


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 5  # consecutive failures that open it
    cooldown: timedelta = timedelta(seconds=30)  # open -> half-open
    probe_lease: timedelta = timedelta(minutes=5)  # a silent probe is replaced after this

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("the breaker threshold must be at least 1")
        if self.cooldown <= timedelta(0) or self.probe_lease <= timedelta(0):
            raise ValueError("the breaker cool-down and probe lease must be positive")


@dataclass(frozen=True)
class BreakerState:
    phase: Phase = Phase.CLOSED
    failures: int = 0  # consecutive, while closed
    opened_at: datetime | None = None
    probe_started_at: datetime | None = None


@dataclass(frozen=True)
class Admission:
    verdict: Verdict
    state: BreakerState  # to store if the call goes ahead
    retry_at: datetime | None = None  # when WAIT


def signal_of(error: BaseException | None) -> Signal:
    if error is None:
        return Signal.SUCCESS
    if isinstance(error, DriverFailedAfterSending):
        return Signal.NEUTRAL
    if isinstance(error, AuthorityUnreachable | AuthorityServerError | OutcomeUnknown):
        return Signal.FAILURE
    if isinstance(error, RateLimited):
        return Signal.NEUTRAL
    if isinstance(error, AuthorityError):  # rejected, auth, already certified: it answered
        return Signal.SUCCESS
    return Signal.NEUTRAL  # our validation, configuration, a bug before sending


def admit(state: BreakerState, policy: BreakerPolicy, now: datetime) -> Admission:
    if state.phase is Phase.CLOSED:
        return Admission(Verdict.SEND, state)
    if state.phase is Phase.OPEN:
        assert state.opened_at is not None
        reopens = state.opened_at + policy.cooldown
        if now < reopens:
            return Admission(Verdict.WAIT, state, retry_at=reopens)
        return Admission(Verdict.PROBE, replace(state, phase=Phase.HALF_OPEN, probe_started_at=now))
    # half-open: one probe at a time
    assert state.probe_started_at is not None
    lease_end = state.probe_started_at + policy.probe_lease
    if now < lease_end:
        return Admission(Verdict.WAIT, state, retry_at=min(lease_end, now + policy.cooldown))
    return Admission(Verdict.PROBE, replace(state, probe_started_at=now))


def record(
    state: BreakerState, signal: Signal, policy: BreakerPolicy, now: datetime
) -> tuple[BreakerState, str | None]:
    """The state after an outcome, and the event to emit (or None)."""
    if signal is Signal.NEUTRAL:
        return state, None
    if signal is Signal.SUCCESS:
        if state.phase is Phase.CLOSED:
            return (replace(state, failures=0) if state.failures else state), None
        return BreakerState(), AUTHORITY_UP
    # failure
    if state.phase is Phase.CLOSED:
        failures = state.failures + 1
        if failures >= policy.threshold:
            return BreakerState(Phase.OPEN, failures, opened_at=now), AUTHORITY_DOWN
        return replace(state, failures=failures), None
    if state.phase is Phase.HALF_OPEN:
        return BreakerState(Phase.OPEN, state.failures + 1, opened_at=now), None
    return replace(state, failures=state.failures + 1), None  # open: a late failure changes nothing
