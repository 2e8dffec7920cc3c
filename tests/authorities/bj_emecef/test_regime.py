"""The tax engine (spec §8) pinned on every official figure, and the id/token helpers."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fiscalgate.authorities.bj_emecef.regime import (
    Aib,
    TaxGroup,
    TokenFormatError,
    dash_code,
    parse_counters,
    parse_local_datetime,
    read_token,
    round_franc,
    undash_code,
)
from fiscalgate.authorities.bj_emecef.totals import EngineLine, compute_totals, neutral_totals

D = Decimal
EXAMPLE = [EngineLine(D(1800), D(2), TaxGroup.B), EngineLine(D(450), D(3), TaxGroup.A)]


def test_official_worked_example_without_aib() -> None:
    t = compute_totals(EXAMPLE, None)
    assert {k: t[k] for k in ("taa", "tab", "hab", "vab", "aib", "ts", "total")} == {
        "taa": 1350,
        "tab": 3600,
        "hab": 3051,
        "vab": 549,
        "aib": 0,
        "ts": 0,
        "total": 4950,
    }
    assert (t["ta"], t["tb"], t["tc"], t["td"]) == (0, 18, 0, 18)
    assert t["tac"] == t["tad"] == t["tae"] == t["taf"] == t["had"] == t["vad"] == 0


@pytest.mark.parametrize(("aib", "amount", "total"), [(Aib.B, 220, 5170), (Aib.A, 44, 4994)])
def test_official_example_with_aib(aib: Aib, amount: int, total: int) -> None:
    t = compute_totals(EXAMPLE, aib)
    assert (t["aib"], t["total"]) == (amount, total)


@pytest.mark.parametrize(
    ("ttc", "ht", "vat"),
    [(1180, 1000, 180), (10_000, 8475, 1525), (6500, 5508, 992), (1200, 1017, 183)],
    ids=["1180", "10000", "6500-case4", "1200-manual"],
)
@pytest.mark.parametrize("group", [TaxGroup.B, TaxGroup.D])
def test_quoted_samples_vat_is_the_remainder(ttc: int, ht: int, vat: int, group: TaxGroup) -> None:
    t = compute_totals([EngineLine(D(ttc), D(1), group)], None)
    key = group.value.lower()
    assert (t[f"ta{key}"], t[f"ha{key}"], t[f"va{key}"]) == (ttc, ht, vat)


def test_specific_tax_gets_the_groups_vat_and_counts_in_the_aib_base() -> None:
    lines = [
        EngineLine(D(1000), D(1), TaxGroup.B, tax_specific=D(100)),
        EngineLine(D(500), D(2), TaxGroup.A, tax_specific=D(50)),
    ]
    t = compute_totals(lines, Aib.A)
    assert t["tab"] == 1000 + 118  # 100 HT of specific tax + 18 % VAT
    assert t["taa"] == 1000 + 50  # exempt: no VAT on it
    assert t["ts"] == 150
    assert t["hab"] == round_franc(D(1118) * 100 / 118) == 947
    base = t["taa"] + t["hab"]
    assert t["aib"] == round_franc(base / 100) == 20
    assert t["total"] == t["taa"] + t["tab"] + t["aib"]


def test_group_sum_is_rounded_once_not_each_line() -> None:
    # 333.5 + 333.5 = 667 when summed first; line-by-line rounding would give 668.
    t = compute_totals(
        [EngineLine(D(667), D("0.5"), TaxGroup.A), EngineLine(D(667), D("0.5"), TaxGroup.A)], None
    )
    assert t["taa"] == 667


def test_ties_round_half_up() -> None:
    assert round_franc(D("2.5")) == 3
    assert compute_totals([EngineLine(D(250), D(1), TaxGroup.A)], Aib.A)["aib"] == 3  # 2.50 -> 3


def test_neutral_totals_add_up() -> None:
    t = compute_totals(EXAMPLE, Aib.B)
    n = neutral_totals(t)
    assert n == {"total_excl_tax": 4401, "total_vat": 549, "total_tax": 769, "total": 5170}
    assert n["total_excl_tax"] + n["total_tax"] == n["total"]


def test_code_helpers() -> None:
    assert dash_code("X537E4DBAJUUHHXNFWISFEKJ") == "X537-E4DB-AJUU-HHXN-FWIS-FEKJ"
    assert undash_code("test-wzk2-kc5g-c5yw-hb23-kb7g") == "TESTWZK2KC5GC5YWHB23KB7G"
    assert parse_counters("4/155 FA") == (4, 155, "FA")
    assert parse_counters("garbage") is None
    when = parse_local_datetime("16/07/2026 00:07:04")
    assert when.astimezone(UTC) == datetime(2026, 7, 15, 23, 7, 4, tzinfo=UTC)  # spec §2's live sample


def _jwt(payload: object) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    return f"{b64(b'{}')}.{b64(json.dumps(payload).encode())}.sig"


def test_read_token_claims() -> None:
    claims = read_token(_jwt({"unique_name": "1234567890123|TS01017752", "exp": 1_800_000_000}))
    assert (claims.ifu, claims.nim) == ("1234567890123", "TS01017752")
    assert claims.expires_at == datetime.fromtimestamp(1_800_000_000, tz=UTC)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not-a-jwt", "not a JWT"),
        ("a.!!!.c", "base64url"),
        (_jwt([1, 2]), "not a JSON object"),
        (_jwt({"exp": 1}), "unique_name"),
        (_jwt({"unique_name": "12|TS01017752", "exp": 1}), "IFU (13 digits)|NIM"),
        (_jwt({"unique_name": "1234567890123|TS01017752"}), "exp"),
    ],
)
def test_read_token_refuses_malformed_tokens(token: str, message: str) -> None:
    with pytest.raises(
        TokenFormatError, match=message.replace("(", r"\(").replace(")", r"\)").replace("|", r"\|")
    ):
        read_token(token)


def test_the_descriptor_declares_the_pending_cap_and_both_reconcile_decisions() -> None:
    """SOURCES.md §5: at most 10 pending requests per e-MCF, each expiring after 2 minutes; a
    pending request can be confirmed or cancelled, so the queue settles unknown calls itself."""
    from datetime import timedelta

    from fiscalgate.authorities.bj_emecef.descriptor import DESCRIPTOR

    cap = DESCRIPTOR.pending_cap
    assert cap is not None and (cap.limit, cap.expiry) == (10, timedelta(minutes=2))
    assert DESCRIPTOR.reconcile.automatic
    assert {"confirm", "cancel"} <= set(DESCRIPTOR.reconcile.actions)
