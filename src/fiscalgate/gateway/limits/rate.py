"""Token-bucket rate limit per tenant x authority: pure arithmetic plus the configuration parser.

A bucket holds at most `burst` tokens and refills at `rate` tokens per second; each request to
the authority takes one. State is (tokens, instant of the last update), so it can live in a
database row shared by every worker process.

Configuration (decision: an operator setting, not a tenant one: the limits protect the platform's
quotas and the gateway's reputation with the authority, which tenants do not set):
`FISCALGATE_RATE_LIMITS`, entries separated by commas or semicolons, each
`[TENANT_ID/]AUTHORITY=RATE/UNIT[:BURST]` with UNIT `s`, `min` or `h`, AUTHORITY a code, an alias
(`fne`) or `*` for every authority. The most specific entry wins: tenant + authority, tenant + `*`,
authority, `*`. BURST defaults to max(1, one second's worth of tokens). No entry: no limit (none of
the three platforms publishes a request rate).

    FISCALGATE_RATE_LIMITS="*=20/s, cg-sfec=100/min:10, 3f2a.../ci-fne=5/s:5"
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fiscalgate.core.errors import ConfigurationError
from fiscalgate.gateway.authorities import authority_code

RATE_LIMITS_ENV = "FISCALGATE_RATE_LIMITS"
_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class RateLimit:
    rate: float  # tokens per second (a rate, not money: float is right here)
    burst: int

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"a rate limit needs a positive rate, not {self.rate}")
        if self.burst < 1:
            raise ValueError(f"a rate limit needs a burst of at least 1, not {self.burst}")


@dataclass(frozen=True)
class Bucket:
    tokens: float
    updated_at: datetime


@dataclass(frozen=True)
class Take:
    allowed: bool
    bucket: Bucket  # the state to store (whether allowed or not)
    retry_after: timedelta  # zero when allowed


def take(bucket: Bucket | None, limit: RateLimit, now: datetime, cost: float = 1.0) -> Take:
    """Try to take `cost` tokens at `now`. A missing bucket starts full."""
    if bucket is None:
        bucket = Bucket(float(limit.burst), now)
    elapsed = max(0.0, (now - bucket.updated_at).total_seconds())  # a clock stepping back adds nothing
    tokens = min(float(limit.burst), bucket.tokens + elapsed * limit.rate)
    stamp = max(now, bucket.updated_at)
    if tokens >= cost:
        return Take(True, Bucket(tokens - cost, stamp), timedelta(0))
    return Take(False, Bucket(tokens, stamp), timedelta(seconds=(cost - tokens) / limit.rate))


@dataclass(frozen=True)
class RateLimits:
    """Who gets which limit. Keys: (tenant_id or None, authority code or "*")."""

    entries: Mapping[tuple[str | None, str], RateLimit] = field(default_factory=dict)

    def for_(self, tenant_id: str, authority: str) -> RateLimit | None:
        for key in ((tenant_id, authority), (tenant_id, "*"), (None, authority), (None, "*")):
            if key in self.entries:
                return self.entries[key]
        return None


_ENTRY = re.compile(
    r"^(?:(?P<tenant>[A-Za-z0-9_-]+)/)?(?P<authority>[A-Za-z*][A-Za-z0-9*-]*)\s*=\s*"
    r"(?P<count>\d+(?:\.\d+)?)\s*/\s*(?P<unit>[a-z]+)(?:\s*:\s*(?P<burst>\d+))?$"
)


def parse_rate_limits(text: str | None) -> RateLimits:
    """Parse the `FISCALGATE_RATE_LIMITS` syntax (see the module docstring); a clear error on any
    malformed entry, naming it."""
    entries: dict[tuple[str | None, str], RateLimit] = {}
    for raw in re.split(r"[,;]", text or ""):
        item = raw.strip()
        if not item:
            continue
        match = _ENTRY.match(item)
        if match is None or match["unit"] not in _UNITS:
            raise ConfigurationError(
                f"{RATE_LIMITS_ENV}: cannot read {item!r}; expected [TENANT/]AUTHORITY=N/s|min|h[:BURST]",
                code="settings.rate_limits",
            )
        authority = match["authority"]
        code = "*" if authority == "*" else authority_code(authority)
        rate = float(match["count"]) / _UNITS[match["unit"]]
        burst = int(match["burst"]) if match["burst"] else max(1, math.floor(rate))
        try:
            entries[(match["tenant"], code)] = RateLimit(rate, burst)
        except ValueError as exc:
            raise ConfigurationError(
                f"{RATE_LIMITS_ENV}: {item!r}: {exc}", code="settings.rate_limits"
            ) from None
    return RateLimits(entries)
