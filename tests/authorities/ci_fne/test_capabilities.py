"""FNE documents no read-only call (spec §4, §12): no connection test, no information, no report."""

from __future__ import annotations

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.capabilities import capabilities


def test_fne_offers_no_optional_capability() -> None:
    assert capabilities(get_driver("ci-fne")) == []
