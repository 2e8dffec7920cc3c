"""The e-MECeF pending-request cap (pure part).

specs/mecef.md, "Two-step flow": a submitted invoice stays *pending* until it is confirmed or
cancelled, or until it expires 2 minutes after submission; **at most 10 pending requests per
e-MCF**, another POST then fails with errorCode 1 ("Le nombre maximum de factures en attente est
dépassé"). The driver submits and finalises within one certification call, so the requests
pending at one instant are the calls in flight plus those whose outcome became unknown after
submission (their request may still be pending until it expires or is reconciled).

Decision: one e-MCF per tenant x environment (a tenant's e-MECeF settings hold one token, hence
one NIM, per environment). A slot is held by each call in flight (for at most `hold`, after which a
crashed holder's slot frees itself: its request expired on the platform long before), and, after
an unknown outcome, for `expiry` more (the platform's own 2 minutes), unless released earlier by
a reconciliation that confirmed or cancelled it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class PendingCap:
    limit: int
    expiry: timedelta  # how long the platform keeps an unfinalised request pending
    hold: timedelta  # longest a live call holds its slot (a crashed worker's slot frees itself)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a pending cap needs a limit of at least 1")


EMECEF_PENDING_CAP = PendingCap(limit=10, expiry=timedelta(minutes=2), hold=timedelta(minutes=10))
# Authorities whose platform caps unfinalised requests.
PENDING_CAPS: Mapping[str, PendingCap] = {"bj-emecef": EMECEF_PENDING_CAP}


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
