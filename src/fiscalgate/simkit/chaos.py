"""Random faults at a fixed rate in front of a simulator's `FaultInjector` (the bulk fault test
and `benchmarks/chaos_batch.py`)."""

from __future__ import annotations

import random
from typing import Any

from fiscalgate.simkit.faults import FaultInjector, FaultKind

# The requests that create or finalise a certification, per authority: (method, path suffix).
# e-MECeF: only the submission. A timeout on its *confirm* cannot be resolved through the platform
# (a finalised request is no longer visible: specs/mecef.md, GET /{uid} "only while pending"), so
# that case goes to a person by design and is not what this run measures.
SUBMISSIONS = {
    "ci-fne": ("POST", "/external/invoices/sign"),
    "bj-emecef": ("POST", "/api/invoice"),
    "cg-sfec": ("POST", "/invoices/certify"),
}
KINDS: tuple[FaultKind, ...] = ("error", "hang_after_processing", "drop_before_processing")


class RandomFaults:
    """With probability `rate`, a submission meets one fault, chosen at random: a 503, a hang after
    the authority recorded it (the client times out), or a hang before (a dropped connection, as
    the client sees it). Counts what it injected."""

    def __init__(self, injector: FaultInjector, authority: str, rate: float, hang: float, seed: int) -> None:
        self.injector = injector
        self.method, self.suffix = SUBMISSIONS[authority]
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
