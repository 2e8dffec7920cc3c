"""Random faults at a fixed rate in front of a simulator's `FaultInjector` (the bulk fault test
and `benchmarks/chaos_batch.py`)."""

from __future__ import annotations

import random
from typing import Any

from fiscalgate.simkit.faults import FaultInjector, FaultKind

KINDS: tuple[FaultKind, ...] = ("error", "hang_after_processing", "drop_before_processing")


def submission(authority: str) -> tuple[str, str]:
    """(method, path suffix) of the request that creates a certification at `authority`, as its
    descriptor declares (`submission`)."""
    from fiscalgate.authorities import descriptor  # lazily: simkit itself stays apart from the registry

    described = descriptor(authority)
    if described.submission is None:
        raise ValueError(f"{described.code}'s descriptor declares no submission route to inject faults at")
    return described.submission


class RandomFaults:
    """With probability `rate`, a submission meets one fault, chosen at random: a 503, a hang after
    the authority recorded it (the client times out), or a hang before (a dropped connection, as
    the client sees it). Counts what it injected."""

    def __init__(self, injector: FaultInjector, authority: str, rate: float, hang: float, seed: int) -> None:
        self.injector = injector
        self.method, self.suffix = submission(authority)
        self.rate = rate
        self.hang = hang
        self.rng = random.Random(seed)
        self.injected: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.submissions = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == self.method and scope["path"].endswith(self.suffix):
            self.submissions += 1
            if self.rng.random() < self.rate:
                kind = self.rng.choice(KINDS)
                self.injected[kind] += 1
                # One-shot rule for this very request (exact path and method).
                self.injector.add(kind, path=scope["path"], method=self.method, status=503, seconds=self.hang)
        await self.injector(scope, receive, send)
