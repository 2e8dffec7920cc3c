"""Limits the workers respect before calling an authority: a token-bucket rate limit per
tenant x authority, a circuit breaker per tenant x authority x environment, the pending-request
cap of authorities that declare one (e-MECeF); and the stall detector. Pure state machines
(`rate`, `breaker`, `pending`) under a thin database layer (`gate.Limits`) so every worker
process shares the same state. See README.md."""

from fiscalgate.gateway.limits.breaker import BreakerPolicy, BreakerState, Phase, Signal, signal_of
from fiscalgate.gateway.limits.clock import Clock, FakeClock, SystemClock
from fiscalgate.gateway.limits.gate import Admitted, Deferred, Limits, OpenBreaker, open_breakers
from fiscalgate.gateway.limits.pending import PENDING_CAPS, PendingCap, pending_caps
from fiscalgate.gateway.limits.rate import RateLimit, RateLimits, parse_rate_limits
from fiscalgate.gateway.limits.stalls import StalledInvoice, report_stalled, stall_threshold, stalled_invoices

__all__ = [
    "PENDING_CAPS",
    "Admitted",
    "BreakerPolicy",
    "BreakerState",
    "Clock",
    "Deferred",
    "FakeClock",
    "Limits",
    "OpenBreaker",
    "PendingCap",
    "Phase",
    "RateLimit",
    "RateLimits",
    "Signal",
    "StalledInvoice",
    "SystemClock",
    "open_breakers",
    "parse_rate_limits",
    "pending_caps",
    "report_stalled",
    "signal_of",
    "stall_threshold",
    "stalled_invoices",
]
