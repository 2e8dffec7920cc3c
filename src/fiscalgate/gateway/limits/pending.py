"""Pending-request caps (pure part): an authority whose platform keeps at most N submitted but
unfinalised requests declares it in its descriptor (`pending_cap`, a `PendingCap`).

e-MECeF is the one today (bj_emecef/SOURCES.md §5): a submitted invoice stays *pending* until it
is confirmed or cancelled, or until it expires 2 minutes after submission; **at most 10 pending
requests per e-MCF**, another POST then fails with errorCode 1 ("Le nombre maximum de factures en
attente est dépassé"). The driver submits and finalises within one certification call, so the
requests pending at one instant are the calls in flight plus those whose outcome became unknown
after submission (their request may still be pending until it expires or is reconciled).

Decision: one cap per tenant x authority x environment (a tenant's e-MECeF settings hold one
token, hence one NIM, per environment). A slot is held by each call in flight (for at most
`hold`, after which a crashed holder's slot frees itself: its request expired on the platform long
before), and, after an unknown outcome, for `expiry` more (the platform's own 2 minutes), unless
released earlier by a reconciliation that confirmed or cancelled it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from fiscalgate.authorities import descriptors
from fiscalgate.authorities.descriptor import PendingCap

__all__ = ["PENDING_CAPS", "PendingCap", "SlotCheck", "check_slots", "pending_caps"]


def pending_caps() -> dict[str, PendingCap]:
    """Every registered authority whose platform caps unfinalised requests, with its cap."""
    return {d.code: d.pending_cap for d in descriptors() if d.pending_cap is not None}


PENDING_CAPS: Mapping[str, PendingCap] = pending_caps()


@dataclass(frozen=True)
class SlotCheck:
    free: bool
    retry_at: datetime | None  # when the earliest held slot frees itself, if none is free


def check_slots(expiries: Iterable[datetime], cap: PendingCap, now: datetime) -> SlotCheck:
    """Given the expiry instants of the slots held by others, may one more request be sent?"""
    live = sorted(e for e in expiries if e > now)
    if len(live) < cap.limit:
        return SlotCheck(True, None)
    # The slot that frees first by itself; a release (a call finishing) usually comes sooner.
    return SlotCheck(False, live[len(live) - cap.limit])
