"""The pure parts of the limits: token bucket, configuration, breaker state machine, pending cap.
Time only moves when a fake clock is told to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fiscalgate.core.errors import (
    AlreadyCertified,
    AuthorityAuthError,
    AuthorityServerError,
    AuthorityUnreachable,
    ConfigurationError,
    InvoiceError,
    InvoiceRejected,
    OutcomeUnknown,
    Problem,
    RateLimited,
)
from fiscalgate.gateway.errors import DriverFailedAfterSending
from fiscalgate.gateway.limits import FakeClock, RateLimit, parse_rate_limits
from fiscalgate.gateway.limits.breaker import (
    AUTHORITY_DOWN,
    AUTHORITY_UP,
    BreakerPolicy,
    BreakerState,
    Phase,
    Signal,
    Verdict,
    admit,
    record,
    signal_of,
)
from fiscalgate.gateway.limits.pending import PendingCap, check_slots
from fiscalgate.gateway.limits.rate import take

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


# --- token bucket ---------------------------------------------------------------------------------
def test_a_full_bucket_lets_a_burst_through_then_refills_at_the_rate() -> None:
    limit = RateLimit(rate=2.0, burst=3)
    clock = FakeClock(T0)
    bucket = None
    for _ in range(3):
        result = take(bucket, limit, clock.now())
        assert result.allowed
        bucket = result.bucket
    refused = take(bucket, limit, clock.now())
    assert not refused.allowed
    assert refused.retry_after == timedelta(seconds=0.5)  # one token at 2/s
    clock.advance(0.25)
    assert not take(refused.bucket, limit, clock.now()).allowed
    clock.advance(0.25)
    assert take(refused.bucket, limit, clock.now()).allowed


def test_a_bucket_never_holds_more_than_its_burst_and_ignores_a_clock_stepping_back() -> None:
    limit = RateLimit(rate=10.0, burst=2)
    first = take(None, limit, T0)
    idle = take(first.bucket, limit, T0 + timedelta(hours=1))
    assert idle.bucket.tokens == pytest.approx(1.0)  # capped at 2, minus the one taken
    back = take(idle.bucket, limit, T0)  # an earlier instant (another machine's clock)
    assert back.allowed and back.bucket.tokens == pytest.approx(0.0)
    assert back.bucket.updated_at == T0 + timedelta(hours=1)


def test_rate_limits_configuration_picks_the_most_specific_entry() -> None:
    limits = parse_rate_limits("*=20/s; cg-sfec=100/min:10, tenant42/fne=5/s:5 ; tenant42/*=1/h")
    assert limits.for_("other", "bj-emecef") == RateLimit(20.0, 20)
    sfec = limits.for_("other", "cg-sfec")
    assert sfec is not None and sfec.rate == pytest.approx(100 / 60) and sfec.burst == 10
    assert limits.for_("tenant42", "ci-fne") == RateLimit(5.0, 5)
    assert limits.for_("tenant42", "bj-emecef") == RateLimit(1 / 3600, 1)
    assert parse_rate_limits("").for_("t", "ci-fne") is None
    assert parse_rate_limits(None).for_("t", "ci-fne") is None


@pytest.mark.parametrize("text", ["ci-fne", "ci-fne=5", "ci-fne=5/day", "nope=5/s", "ci-fne=0/s"])
def test_malformed_rate_limits_are_refused_naming_the_entry(text: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_rate_limits(f"*=1/s, {text}")
    assert info.value.code in ("settings.rate_limits", "authority.unknown")
    assert text.split("=")[0] in info.value.message


# --- breaker --------------------------------------------------------------------------------------
POLICY = BreakerPolicy(threshold=3, cooldown=timedelta(seconds=30), probe_lease=timedelta(seconds=60))


def test_signals_read_only_the_error_kind() -> None:
    kw = {"authority": "ci-fne"}
    assert signal_of(None) is Signal.SUCCESS
    for failure in (
        AuthorityUnreachable("x", **kw),
        AuthorityServerError("x", **kw),
        OutcomeUnknown("x", **kw),
    ):
        assert signal_of(failure) is Signal.FAILURE
    for answered in (InvoiceRejected("x", **kw), AuthorityAuthError("x", **kw), AlreadyCertified("x", **kw)):
        assert signal_of(answered) is Signal.SUCCESS
    for neutral in (
        RateLimited("x", **kw),
        DriverFailedAfterSending("bug", authority="ci-fne"),
        InvoiceError([Problem("f", "r", "m")]),
        ConfigurationError("x"),
        RuntimeError("bug"),
    ):
        assert signal_of(neutral) is Signal.NEUTRAL


def test_breaker_opens_after_n_consecutive_failures_only() -> None:
    state = BreakerState()
    for _ in range(2):
        state, event = record(state, Signal.FAILURE, POLICY, T0)
        assert event is None
    state, _ = record(state, Signal.SUCCESS, POLICY, T0)  # a success resets the count
    assert state == BreakerState()
    state, _ = record(state, Signal.NEUTRAL, POLICY, T0)
    for _ in range(2):
        state, event = record(state, Signal.FAILURE, POLICY, T0)
    assert state.phase is Phase.CLOSED and admit(state, POLICY, T0).verdict is Verdict.SEND
    state, event = record(state, Signal.FAILURE, POLICY, T0)
    assert event == AUTHORITY_DOWN and state.phase is Phase.OPEN and state.opened_at == T0


def test_open_breaker_waits_then_lets_one_probe_through_and_closes_on_its_success() -> None:
    clock = FakeClock(T0)
    state = BreakerState(Phase.OPEN, 3, opened_at=T0)
    waiting = admit(state, POLICY, clock.advance(29))
    assert waiting.verdict is Verdict.WAIT and waiting.retry_at == T0 + timedelta(seconds=30)
    probe = admit(state, POLICY, clock.advance(1))
    assert probe.verdict is Verdict.PROBE and probe.state.phase is Phase.HALF_OPEN
    state = probe.state
    second = admit(state, POLICY, clock.advance(1))  # the probe is still out: others wait
    assert second.verdict is Verdict.WAIT
    state, event = record(state, Signal.SUCCESS, POLICY, clock.now())
    assert event == AUTHORITY_UP and state == BreakerState()


def test_a_failed_probe_reopens_for_another_cooldown_without_a_second_down_event() -> None:
    state = admit(BreakerState(Phase.OPEN, 3, opened_at=T0), POLICY, T0 + timedelta(seconds=30)).state
    later = T0 + timedelta(seconds=35)
    state, event = record(state, Signal.FAILURE, POLICY, later)
    assert event is None and state.phase is Phase.OPEN and state.opened_at == later
    assert admit(state, POLICY, later + timedelta(seconds=29)).verdict is Verdict.WAIT


def test_a_silent_probe_is_replaced_after_its_lease() -> None:
    state = admit(BreakerState(Phase.OPEN, 3, opened_at=T0), POLICY, T0 + timedelta(seconds=30)).state
    assert admit(state, POLICY, T0 + timedelta(seconds=89)).verdict is Verdict.WAIT
    again = admit(state, POLICY, T0 + timedelta(seconds=90))
    assert again.verdict is Verdict.PROBE and again.state.probe_started_at == T0 + timedelta(seconds=90)


def test_a_late_success_while_open_closes_it() -> None:
    state, event = record(BreakerState(Phase.OPEN, 3, opened_at=T0), Signal.SUCCESS, POLICY, T0)
    assert event == AUTHORITY_UP and state.phase is Phase.CLOSED
    state, event = record(BreakerState(Phase.OPEN, 3, opened_at=T0), Signal.FAILURE, POLICY, T0)
    assert event is None and state.opened_at == T0  # a late failure does not extend the cool-down


# --- pending cap ----------------------------------------------------------------------------------
def test_a_full_pending_cap_frees_by_expiry() -> None:
    cap = PendingCap(limit=10, expiry=timedelta(minutes=2), hold=timedelta(minutes=10))
    held = [T0 + timedelta(seconds=s) for s in range(10, 110, 10)]  # ten live slots
    assert check_slots(held[:9], cap, T0).free
    full = check_slots(held, cap, T0)
    assert not full.free and full.retry_at == T0 + timedelta(seconds=10)
    assert check_slots(held, cap, T0 + timedelta(seconds=10)).free  # the first expired
