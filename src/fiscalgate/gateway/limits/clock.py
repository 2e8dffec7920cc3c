"""The time the limits read. Injected everywhere, so tests move a fake clock instead of sleeping.

Wall-clock UTC, not a monotonic clock: the limits' state is shared through the database by
workers in several processes, possibly on several machines, and only wall-clock instants mean the
same thing to all of them. A clock that steps back is tolerated (elapsed time never goes negative).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float | timedelta) -> datetime:
        self._now += seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        return self._now
