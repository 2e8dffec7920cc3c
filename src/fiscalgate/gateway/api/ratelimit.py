"""Rate limits on the API, per credential and per source address: token buckets in memory.

Each process keeps its own buckets (documented: with N processes behind a balancer a client gets
up to N times the rate; put a shared limiter in the proxy for a hard global limit). A bucket
holds `per_minute` tokens, refills continuously at `per_minute / 60` per second, and a request
takes one; an empty bucket answers 429 with `Retry-After` (whole seconds until a token is back).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    per_minute: int  # 0: unlimited
    max_keys: int = 100_000  # memory bound: full buckets are dropped past it
    clock: object = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str) -> float | None:
        """None when allowed; else the seconds to wait."""
        if self.per_minute <= 0:
            return None
        now: float = self.clock()  # type: ignore[operator]
        rate = self.per_minute / 60.0
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._prune(now, rate)
                bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
            bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / rate

    def blocked(self, key: str) -> float | None:
        """Like `take` without taking: the seconds to wait when the bucket is empty, else None."""
        if self.per_minute <= 0:
            return None
        now: float = self.clock()  # type: ignore[operator]
        rate = self.per_minute / 60.0
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return None
            tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.stamp) * rate)
            return None if tokens >= 1.0 else (1.0 - tokens) / rate

    def _prune(self, now: float, rate: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.stamp) * rate >= self.per_minute]
        for key in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
