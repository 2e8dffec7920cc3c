"""Sticker balances (FNE): history, consumption rate, forecast, and the `stickers.low` event.

The FNE returns the balance left after each certification (`balance_sticker`, or `balance_funds`
for accounts billed by provision; spec fne.md §8.6). Running dry stops signing (HTTP 500), so the
forecast must warn days ahead.

Rules (decisions; the spec is silent):
- **Rate** = stickers consumed since the *baseline* / days from the baseline to now, where the
  baseline is the last record at or before `now - RATE_WINDOW` (14 days), or the first record when
  the history is younger. Consumption between two records is the drop in balance; a rise (stickers
  bought) counts as no consumption. The span is at least one day, so a burst in the first hour does
  not forecast "empty in ten minutes". One record alone gives no rate.
- **Forecast** = now + balance / rate (none when the rate is 0 or unknown).
- **`stickers.low`** fires when the balance is below the threshold (sticker accounts only: a
  provision balance is in francs) or the forecast is closer than the warning days, and only on the
  crossing: once fired, it fires again only after the condition has cleared (stickers bought).
- Thresholds: the balance threshold is the tenant's own setting `sticker_warning_threshold` of the
  authority (FNE settings, default 50, the same threshold the driver's low-stock notice uses); the
  warning days come from `FISCALGATE_STICKERS_WARN_DAYS` (default 7) for the whole gateway.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fiscalgate.core.errors import ConfigurationError
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.stickers.models import StickerBalance, StickerState

RATE_WINDOW = timedelta(days=14)
MIN_SPAN = timedelta(days=1)
WARN_DAYS_ENV = "FISCALGATE_STICKERS_WARN_DAYS"
DEFAULT_WARN_DAYS = 7
DEFAULT_THRESHOLD = 50  # when the authority's settings have no `sticker_warning_threshold`
_DAY = Decimal(86_400_000_000)  # microseconds


def warn_days() -> int:
    raw = os.environ.get(WARN_DAYS_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_WARN_DAYS
    try:
        days = int(raw)
    except ValueError:
        days = -1
    if days < 0:
        raise ConfigurationError(
            f"{WARN_DAYS_ENV} must be a whole number of days >= 0, not {raw!r}",
            code="stickers.warn_days_invalid",
        )
    return days


def threshold_of(settings: Any) -> int:
    value = getattr(settings, "sticker_warning_threshold", None)
    return int(value) if isinstance(value, int) else DEFAULT_THRESHOLD


def _days(span: timedelta) -> Decimal:
    return Decimal(span // timedelta(microseconds=1)) / _DAY


@dataclass(frozen=True)
class Forecast:
    balance: int
    balance_kind: str
    recorded_at: datetime
    rate_per_day: Decimal | None  # stickers (or francs) per day
    days_left: Decimal | None
    runs_out_at: datetime | None


def forecast(
    balance: int,
    balance_kind: str,
    recorded_at: datetime,
    consumed_total: int,
    baseline: tuple[int, datetime] | None,
    now: datetime,
) -> Forecast:
    """Pure: the forecast from the latest record and the baseline (its consumed counter and time)."""
    rate: Decimal | None = None
    days_left: Decimal | None = None
    runs_out: datetime | None = None
    if baseline is not None:
        consumed_then, since = baseline
        span = max(now - since, MIN_SPAN)
        rate = Decimal(consumed_total - consumed_then) / _days(span)
    if balance <= 0:
        days_left, runs_out = Decimal(0), recorded_at
    elif rate is not None and rate > 0:
        days_left = Decimal(balance) / rate
        runs_out = now + timedelta(microseconds=int((days_left * _DAY).to_integral_value()))
    return Forecast(
        balance=balance,
        balance_kind=balance_kind,
        recorded_at=recorded_at,
        rate_per_day=None if rate is None else rate.quantize(Decimal("0.01"), ROUND_HALF_UP),
        days_left=None if days_left is None else days_left.quantize(Decimal("0.1"), ROUND_HALF_UP),
        runs_out_at=runs_out,
    )


def low_reason(f: Forecast, threshold: int, days: int) -> str | None:
    """Why the stock counts as low ("below_threshold", "forecast"), or None."""
    if f.balance_kind == "stickers" and f.balance < threshold:
        return "below_threshold"
    if f.days_left is not None and f.days_left < days:
        return "forecast"
    return None


def _state(session: Session, tenant_id: str, authority: str, environment: str) -> StickerState | None:
    return session.scalars(
        select(StickerState)
        .where(
            StickerState.tenant_id == tenant_id,
            StickerState.authority == authority,
            StickerState.environment == environment,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def _baseline(session: Session, state: StickerState, now: datetime) -> tuple[int, datetime] | None:
    scope = (
        StickerBalance.tenant_id == state.tenant_id,
        StickerBalance.authority == state.authority,
        StickerBalance.environment == state.environment,
    )
    row = session.execute(
        select(StickerBalance.consumed_total, StickerBalance.recorded_at)
        .where(*scope, StickerBalance.recorded_at <= now - RATE_WINDOW)
        .order_by(StickerBalance.recorded_at.desc())
        .limit(1)
    ).first()
    if row is None:
        first_two = session.execute(
            select(StickerBalance.consumed_total, StickerBalance.recorded_at)
            .where(*scope)
            .order_by(StickerBalance.recorded_at, StickerBalance.id)
            .limit(2)
        ).all()
        if len(first_two) < 2:  # one record alone gives no rate
            return None
        row = first_two[0]
    return int(row[0]), row[1]


def state_forecast(session: Session, state: StickerState, now: datetime) -> Forecast:
    return forecast(
        state.balance,
        state.balance_kind,
        state.recorded_at,
        state.consumed_total,
        _baseline(session, state, now),
        now,
    )


def record_balance(
    session: Session,
    *,
    tenant_id: str,
    authority: str,
    environment: str,
    balance: int,
    balance_kind: str,
    invoice_id: str | None,
    threshold: int,
    now: datetime | None = None,
) -> Forecast:
    """Record one balance the authority returned (in the caller's transaction) and fire
    `stickers.low` when this record crosses into "low"."""
    from fiscalgate.gateway.webhooks.events import record_event  # the outbox imports this module

    now = now or utcnow()
    state = _state(session, tenant_id, authority, environment)
    if state is None:
        try:
            with session.begin_nested():
                session.add(
                    StickerState(
                        tenant_id=tenant_id,
                        authority=authority,
                        environment=environment,
                        balance=balance,
                        balance_kind=balance_kind,
                        consumed_total=0,
                        recorded_at=now,
                        low=False,
                    )
                )
        except IntegrityError:  # a concurrent first record (PostgreSQL) won: use its row below
            pass
        state = _state(session, tenant_id, authority, environment)
        assert state is not None
    # The state row is locked (FOR UPDATE; SQLite's BEGIN IMMEDIATE already serialises), so two
    # concurrent certifications of one tenant count their consumption one after the other.
    state.consumed_total += max(0, state.balance - balance)
    state.balance = balance
    state.balance_kind = balance_kind
    state.recorded_at = now
    session.add(
        StickerBalance(
            tenant_id=tenant_id,
            authority=authority,
            environment=environment,
            balance=balance,
            balance_kind=balance_kind,
            consumed_total=state.consumed_total,
            invoice_id=invoice_id,
            recorded_at=now,
        )
    )
    session.flush()
    result = state_forecast(session, state, now)
    days = warn_days()
    reason = low_reason(result, threshold, days)
    if reason is not None and not state.low:
        state.low, state.low_since = True, now
        record_event(
            session,
            tenant_id,
            "stickers.low",
            {
                "authority": authority,
                "environment": environment,
                "reason": reason,
                **forecast_out(result, threshold, days),
            },
        )
    elif reason is None and state.low:
        state.low, state.low_since = False, None  # cleared: the next crossing fires again
    session.flush()
    return result


def forecast_out(f: Forecast, threshold: int, days: int) -> dict[str, Any]:
    return {
        "balance": f.balance,
        "balance_kind": f.balance_kind,
        "recorded_at": f.recorded_at,
        "rate_per_day": f.rate_per_day,
        "days_left": f.days_left,
        "runs_out_at": f.runs_out_at,
        "threshold": threshold,
        "warn_days": days,
    }


def tenant_states(session: Session, tenant_id: str) -> list[StickerState]:
    return list(
        session.scalars(
            select(StickerState)
            .where(StickerState.tenant_id == tenant_id)
            .order_by(StickerState.authority, StickerState.environment)
        )
    )
