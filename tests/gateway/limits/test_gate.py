"""The limits over their shared state in the database (SQLite and PostgreSQL), with a fake clock:
deferrals, the e-MECeF pending cap, breaker events in the audit log, state shared by two
"processes" (two engines on one database), and keys that never hold each other back."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiscalgate.core.errors import AuthorityServerError, AuthorityUnreachable, InvoiceRejected, OutcomeUnknown
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.db import migrate, utcnow
from fiscalgate.gateway.limits import (
    Admitted,
    BreakerPolicy,
    Deferred,
    FakeClock,
    Limits,
    Phase,
    RateLimit,
    RateLimits,
    open_breakers,
)
from fiscalgate.gateway.limits.models import PendingSlotRow, RateBucketRow
from fiscalgate.gateway.runtime import Database
from fiscalgate.gateway.tenants.models import Tenant

DOWN = AuthorityUnreachable("connection refused", authority="ci-fne")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    if database_url.startswith("sqlite"):
        migrate(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


def _tenant(db: Database) -> str:
    def add(session: Session) -> str:
        tenant = Tenant(name=f"T-{uuid.uuid4().hex[:8]}", country="CI", modules=[], created_at=utcnow())
        session.add(tenant)
        session.flush()
        return tenant.id

    return db.call(add)


def _admit(db: Database, limits: Limits, tenant: str, authority: str, holder: str, env: str = "mock") -> Any:
    return db.call(lambda s: limits.admit(s, tenant, authority, env, holder))


def _settle(
    db: Database, limits: Limits, tenant: str, authority: str, holder: str, error: Any, env: str = "mock"
) -> Any:
    return db.call(lambda s: limits.settle(s, tenant, authority, env, holder, error))


def _events(db: Database, tenant: str) -> list[tuple[str, dict[str, Any]]]:
    def read(session: Session) -> list[tuple[str, dict[str, Any]]]:
        rows = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.tenant_id == tenant, AuditEntry.kind == "authority")
            .order_by(AuditEntry.created_at)
        )
        return [(r.event or "", r.detail or {}) for r in rows]

    return db.read_call(read)


def test_breaker_opens_defers_probes_and_closes_with_audited_events(db: Database) -> None:
    clock = FakeClock()
    limits = Limits(breaker=BreakerPolicy(threshold=3, cooldown=timedelta(seconds=30)), clock=clock)
    tenant = _tenant(db)
    for i in range(3):
        assert isinstance(_admit(db, limits, tenant, "ci-fne", f"inv{i}"), Admitted)
        _settle(db, limits, tenant, "ci-fne", f"inv{i}", DOWN)
    deferred = _admit(db, limits, tenant, "ci-fne", "inv9")
    assert isinstance(deferred, Deferred) and deferred.reason == "breaker_open"
    assert deferred.retry_at == clock.now() + timedelta(seconds=30)
    assert [e for e, _ in _events(db, tenant)] == ["authority.down"]
    down = _events(db, tenant)[0][1]
    assert (
        down["authority"] == "ci-fne" and down["environment"] == "mock" and down["consecutive_failures"] == 3
    )
    assert db.read_call(lambda s: [b.phase for b in open_breakers(s, tenant)]) == ["open"]
    # Other environments, authorities and tenants are not held back.
    assert isinstance(_admit(db, limits, tenant, "ci-fne", "inv9", env="sandbox"), Admitted)
    assert isinstance(_admit(db, limits, tenant, "cg-sfec", "inv9"), Admitted)
    assert isinstance(_admit(db, limits, _tenant(db), "ci-fne", "inv9"), Admitted)
    clock.advance(30)
    probe = _admit(db, limits, tenant, "ci-fne", "probe")
    assert probe == Admitted(probe=True)
    assert isinstance(_admit(db, limits, tenant, "ci-fne", "other"), Deferred)  # one probe at a time
    assert _settle(db, limits, tenant, "ci-fne", "probe", None) == "authority.up"
    assert [e for e, _ in _events(db, tenant)] == ["authority.down", "authority.up"]
    assert isinstance(_admit(db, limits, tenant, "ci-fne", "after"), Admitted)
    assert db.read_call(lambda s: open_breakers(s, tenant)) == []


def test_an_authority_that_answers_keeps_the_breaker_closed(db: Database) -> None:
    limits = Limits(breaker=BreakerPolicy(threshold=2), clock=FakeClock())
    tenant = _tenant(db)
    rejected = InvoiceRejected("refused", authority="ci-fne")
    for i, error in enumerate([DOWN, rejected, DOWN, None, AuthorityServerError("503", authority="ci-fne")]):
        assert isinstance(_admit(db, limits, tenant, "ci-fne", f"i{i}"), Admitted)
        _settle(db, limits, tenant, "ci-fne", f"i{i}", error)
    assert db.read_call(lambda s: limits.breaker_state(s, tenant, "ci-fne", "mock")).phase is Phase.CLOSED


def test_breaker_state_is_shared_by_two_processes(database_url: str, db: Database) -> None:
    other = Database(database_url)  # a second worker process: its own engine and pool
    try:
        clock = FakeClock()
        policy = BreakerPolicy(threshold=2)
        a, b = Limits(breaker=policy, clock=clock), Limits(breaker=policy, clock=clock)
        tenant = _tenant(db)
        _admit(db, a, tenant, "cg-sfec", "x")
        _settle(db, a, tenant, "cg-sfec", "x", DOWN)
        _admit(other, b, tenant, "cg-sfec", "y")
        _settle(other, b, tenant, "cg-sfec", "y", DOWN)  # the second failure, seen by the other
        assert isinstance(_admit(db, a, tenant, "cg-sfec", "z"), Deferred)
        assert [e for e, _ in _events(db, tenant)] == ["authority.down"]
    finally:
        other.dispose()


def test_emecef_never_more_than_ten_requests_pending(db: Database) -> None:
    clock = FakeClock()
    limits = Limits(clock=clock)
    tenant = _tenant(db)
    for i in range(10):
        assert isinstance(_admit(db, limits, tenant, "bj-emecef", f"inv{i}"), Admitted)
    eleventh = _admit(db, limits, tenant, "bj-emecef", "inv10")
    assert isinstance(eleventh, Deferred) and eleventh.reason == "pending_cap"
    assert "10 pending" in eleventh.detail
    # The same holder asking again (a retried job) keeps its own slot, it does not take a second.
    assert isinstance(_admit(db, limits, tenant, "bj-emecef", "inv3"), Admitted)
    # A finished call frees its slot at once ...
    _settle(db, limits, tenant, "bj-emecef", "inv0", None)
    assert isinstance(_admit(db, limits, tenant, "bj-emecef", "inv10"), Admitted)
    # ... an unknown outcome keeps it for the platform's 2 minutes (the request may be pending).
    _settle(db, limits, tenant, "bj-emecef", "inv1", OutcomeUnknown("timeout", authority="bj-emecef"))
    assert isinstance(_admit(db, limits, tenant, "bj-emecef", "inv11"), Deferred)
    clock.advance(timedelta(minutes=2, seconds=1))
    assert isinstance(_admit(db, limits, tenant, "bj-emecef", "inv11"), Admitted)
    # other tenants and other authorities have their own
    assert isinstance(_admit(db, limits, _tenant(db), "bj-emecef", "x"), Admitted)
    assert isinstance(_admit(db, limits, tenant, "ci-fne", "x"), Admitted)


def test_a_crashed_callers_slot_frees_itself_and_release_frees_it_early(db: Database) -> None:
    clock = FakeClock()
    limits = Limits(clock=clock)
    tenant = _tenant(db)
    for i in range(10):
        _admit(db, limits, tenant, "bj-emecef", f"inv{i}")
    assert isinstance(_admit(db, limits, tenant, "bj-emecef", "late"), Deferred)
    db.call(lambda s: limits.release(s, tenant, "bj-emecef", "mock", "inv4"))  # reconciled
    assert isinstance(_admit(db, limits, tenant, "bj-emecef", "late"), Admitted)
    clock.advance(timedelta(minutes=10, seconds=1))  # nobody settled: the holders died
    assert isinstance(_admit(db, limits, tenant, "bj-emecef", "later"), Admitted)


def test_concurrent_admissions_never_exceed_the_pending_cap(database_url: str, db: Database) -> None:
    """Twenty threads, each with its own engine (as separate processes would), race for ten slots."""
    tenant = _tenant(db)
    limits = Limits(clock=FakeClock())
    results: list[Any] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def worker(i: int) -> None:
        own = Database(database_url)
        try:
            start.wait(timeout=30)
            result = _admit(own, limits, tenant, "bj-emecef", f"inv{i}")
            with lock:
                results.append(result)
        finally:
            own.dispose()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 20
    assert sum(isinstance(r, Admitted) for r in results) == 10
    held = db.read_call(lambda s: len(list(s.scalars(select(PendingSlotRow).filter_by(tenant_id=tenant)))))
    assert held == 10


def test_rate_limit_per_tenant_and_authority(db: Database) -> None:
    clock = FakeClock()
    limits = Limits(rates=RateLimits({(None, "ci-fne"): RateLimit(1.0, 2)}), clock=clock)
    tenant, other = _tenant(db), _tenant(db)
    assert isinstance(_admit(db, limits, tenant, "ci-fne", "a"), Admitted)
    assert isinstance(_admit(db, limits, tenant, "ci-fne", "b"), Admitted)
    third = _admit(db, limits, tenant, "ci-fne", "c")
    assert isinstance(third, Deferred) and third.reason == "rate_limited"
    assert third.retry_at == clock.now() + timedelta(seconds=1)
    assert isinstance(_admit(db, limits, other, "ci-fne", "a"), Admitted)  # its own bucket
    assert isinstance(_admit(db, limits, tenant, "cg-sfec", "a"), Admitted)  # no limit there
    clock.advance(1)
    assert isinstance(_admit(db, limits, tenant, "ci-fne", "c"), Admitted)


def test_a_deferred_call_burns_no_token_and_starts_no_probe(db: Database) -> None:
    clock = FakeClock()
    limits = Limits(
        rates=RateLimits({(None, "*"): RateLimit(0.001, 20)}),
        breaker=BreakerPolicy(threshold=1, cooldown=timedelta(seconds=60)),
        clock=clock,
    )
    tenant = _tenant(db)

    def tokens(authority: str) -> float:
        return db.read_call(lambda s: s.get(RateBucketRow, (tenant, authority)).tokens)

    # Pending cap: ten e-MECeF calls take ten tokens; the eleventh, deferred, takes none.
    for i in range(10):
        assert isinstance(_admit(db, limits, tenant, "bj-emecef", f"inv{i}"), Admitted)
    assert isinstance(_admit(db, limits, tenant, "bj-emecef", "inv10"), Deferred)
    assert tokens("bj-emecef") == pytest.approx(10.0)
    # Breaker open: deferred calls take no token either.
    _admit(db, limits, tenant, "cg-sfec", "a")
    _settle(db, limits, tenant, "cg-sfec", "a", DOWN)
    for holder in ("b", "c", "d"):
        assert isinstance(_admit(db, limits, tenant, "cg-sfec", holder), Deferred)
    assert tokens("cg-sfec") == pytest.approx(19.0)
    # A rate-limited call after the cool-down does not leave a probe marked as started.
    exhausted = Limits(
        rates=RateLimits({(None, "*"): RateLimit(0.001, 1)}), breaker=limits.breaker, clock=clock
    )
    other = _tenant(db)
    _admit(db, exhausted, other, "ci-fne", "a")
    _settle(db, exhausted, other, "ci-fne", "a", DOWN)
    clock.advance(60)
    assert _admit(db, exhausted, other, "ci-fne", "b").reason == "rate_limited"
    assert db.read_call(lambda s: exhausted.breaker_state(s, other, "ci-fne", "mock")).phase is Phase.OPEN


def test_limits_from_the_environment() -> None:
    limits = Limits.from_env(
        {
            "FISCALGATE_RATE_LIMITS": "fne=3/s",
            "FISCALGATE_BREAKER_THRESHOLD": "7",
            "FISCALGATE_BREAKER_COOLDOWN": "12.5",
        }
    )
    assert limits.rates.for_("t", "ci-fne") == RateLimit(3.0, 3)
    assert limits.breaker.threshold == 7 and limits.breaker.cooldown == timedelta(seconds=12.5)
    from fiscalgate.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="FISCALGATE_BREAKER_THRESHOLD"):
        Limits.from_env({"FISCALGATE_BREAKER_THRESHOLD": "2.5"})
    with pytest.raises(ConfigurationError, match="FISCALGATE_BREAKER_COOLDOWN"):
        Limits.from_env({"FISCALGATE_BREAKER_COOLDOWN": "-1"})
