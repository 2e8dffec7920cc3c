"""What the queue does after an attempt: decided from the outcome's status and the error's kind
(`resolution`, `retryable`), never from its message.

- certified, rejected: done.
- failed with a retryable error (unreachable, 5xx, rate limited): certify again after an
  exponential backoff with full jitter, at most `max_attempts` attempts; then `failed`, loudly.
- failed with an auth / configuration / validation error: done, a person must fix something.
- failed with no error (a reconcile proved it was not certified): certify again (an informed
  resend, never a blind one).
- unknown, and the authority can be asked (its descriptor's `reconcile.automatic`: e-MECeF,
  SFEC): reconcile automatically, promptly, with `max_reconciles` attempts of its own beyond
  `max_attempts` (a look-up never certifies twice, so an uncertain outcome is not left to a person
  because the certify attempts were used up; under 1/3 faults they were, for 1-2 e-MECeF invoices
  in 333); then it waits for a person.
- unknown elsewhere (no look-up, FNE): done, it waits for a person, loudly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from fiscalgate.authorities import descriptors
from fiscalgate.core.errors import Resolution
from fiscalgate.gateway.certification.outcome import Outcome


def auto_reconciled() -> frozenset[str]:
    """The authorities whose uncertain calls a machine can settle, as their descriptors say
    (`reconcile.automatic`: e-MECeF finds its pending request, SFEC looks the invoice up; FNE has
    no look-up, a person decides)."""
    return frozenset(d.code for d in descriptors() if d.reconcile.automatic)


AUTO_RECONCILE = auto_reconciled()

Next = Literal["done", "retry", "reconcile", "person", "gave_up"]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5  # attempts per job (certifications, and reconciliations among them)
    max_reconciles: int = 5  # further attempts an uncertain outcome gets to be settled by a look-up
    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    reconcile_seconds: float = 1.0  # e-MECeF pending requests live minutes: ask promptly

    def backoff(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        """Full jitter: uniform in [0, min(cap, base x 2^(attempt-1))], so workers that failed
        together do not come back together."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        return timedelta(seconds=(rng or random).uniform(0, ceiling))

    def reconcile_delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        ceiling = min(self.cap_seconds, self.reconcile_seconds * 2 ** max(0, attempt - 1))
        return timedelta(seconds=(rng or random).uniform(ceiling / 2, ceiling))


def decide(outcome: Outcome, authority: str, attempts: int, policy: RetryPolicy) -> Next:
    """The next step for a job whose `attempts`-th attempt ended with `outcome`."""
    exhausted = attempts >= policy.max_attempts
    error = outcome.error
    if outcome.status in ("certified", "rejected"):
        return "done"
    if outcome.status == "failed":
        if error is None:  # reconciled "not certified": proven, so certifying again is safe
            return "gave_up" if exhausted else "retry"
        if error.retryable or error.resolution in (Resolution.RETRY, Resolution.RETRY_LATER):
            return "gave_up" if exhausted else "retry"
        return "done"
    if outcome.status == "unknown":
        if authority not in AUTO_RECONCILE:
            return "person"
        return "person" if attempts >= policy.max_attempts + policy.max_reconciles else "reconcile"
    return "done"
