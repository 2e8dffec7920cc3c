from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from fiscalgate.core.errors import GatewayError
from fiscalgate.gateway.api.auth import gateway, tenant_caller, tenant_id_of
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.settings.service import load_tenant_settings
from fiscalgate.gateway.stickers.schemas import StickersOut, StickerStock
from fiscalgate.gateway.stickers.service import (
    DEFAULT_THRESHOLD,
    RATE_WINDOW,
    state_forecast,
    tenant_states,
    threshold_of,
    warn_days,
)
from fiscalgate.gateway.tenants.service import Caller

router = APIRouter(prefix="/v1/stickers", tags=["stickers"])


def _stickers(session: Session, gw: Gateway, tenant_id: str) -> StickersOut:
    now = utcnow()
    days = warn_days()
    thresholds: dict[str, int] = {}
    stocks = []
    for state in tenant_states(session, tenant_id):
        if state.authority not in thresholds:
            try:
                thresholds[state.authority] = threshold_of(
                    load_tenant_settings(session, gw, tenant_id, state.authority)[1]
                )
            except GatewayError:  # settings gone or invalid: the default threshold
                thresholds[state.authority] = DEFAULT_THRESHOLD
        f = state_forecast(session, state, now)
        stocks.append(
            StickerStock(
                authority=state.authority,
                environment=state.environment,
                balance=f.balance,
                balance_kind=f.balance_kind,
                recorded_at=f.recorded_at,
                rate_per_day=f.rate_per_day,
                days_left=f.days_left,
                runs_out_at=f.runs_out_at,
                runs_out_on=f.runs_out_at.date() if f.runs_out_at else None,
                threshold=thresholds[state.authority],
                warn_days=days,
                low=state.low,
                low_since=state.low_since,
            )
        )
    return StickersOut(rate_window_days=RATE_WINDOW.days, stocks=stocks)


@router.get("")
async def stickers(who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)) -> StickersOut:
    """Sticker balance per authority environment (FNE), consumption rate, forecast date, thresholds."""
    return await gw.db.read(_stickers, gw, tenant_id_of(who))
