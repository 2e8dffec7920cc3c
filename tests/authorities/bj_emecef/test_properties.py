"""Property tests: the client's tax engine agrees with the simulator's independent one, and the
totals behave like totals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anyio
import httpx
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.base import Connection, Environment
from fiscalgate.authorities.bj_emecef.convert import build_request, expected_totals
from fiscalgate.authorities.bj_emecef.regime import (
    TOTAL_FIELDS,
    Aib,
    TaxGroup,
)
from fiscalgate.authorities.bj_emecef.settings import EmecefSettings
from fiscalgate.authorities.bj_emecef.simulator.state import Platform
from fiscalgate.authorities.bj_emecef.totals import EngineLine, compute_totals, neutral_totals
from fiscalgate.core.invoice import parse_invoice

DRIVER = get_driver("bj-emecef")
SETTINGS = DRIVER.parse_settings(DRIVER.mock_credentials())
assert isinstance(SETTINGS, EmecefSettings)

quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(500), places=3)
lines = st.builds(
    EngineLine,
    price=st.integers(0, 2_000_000).map(Decimal),
    quantity=quantities,
    group=st.sampled_from(list(TaxGroup)),
    tax_specific=st.one_of(st.just(Decimal(0)), st.integers(1, 50_000).map(Decimal)),
)
aibs = st.sampled_from([None, Aib.A, Aib.B])


def _wire_item(line: EngineLine) -> dict[str, Any]:
    item: dict[str, Any] = {"price": int(line.price), "quantity": line.quantity, "taxGroup": line.group.value}
    if line.tax_specific:
        item["taxSpecific"] = int(line.tax_specific)
    return item


@settings(max_examples=150, deadline=None)
@given(st.lists(lines, min_size=1, max_size=12), aibs)
def test_client_totals_equal_the_simulators(items: list[EngineLine], aib: Aib | None) -> None:
    ours = compute_totals(items, aib)
    theirs = Platform.compute([_wire_item(i) for i in items], aib.value if aib else None)
    assert {k: int(v) for k, v in ours.items()} == theirs


@settings(max_examples=100, deadline=None)
@given(st.lists(lines, min_size=1, max_size=12), aibs, st.randoms(use_true_random=False))
def test_totals_add_up_and_ignore_line_order(items: list[EngineLine], aib: Aib | None, rnd: Any) -> None:
    totals = compute_totals(items, aib)
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert compute_totals(shuffled, aib) == totals
    groups = sum(totals[f"ta{g}"] for g in "abcdef")
    assert totals["total"] == groups + totals["aib"]
    assert totals["hab"] + totals["vab"] == totals["tab"] and totals["had"] + totals["vad"] == totals["tad"]
    assert totals["ts"] == sum(i.tax_specific for i in items)
    neutral = neutral_totals(totals)
    assert neutral["total_excl_tax"] + neutral["total_tax"] == neutral["total"]
    assert all(v >= 0 for v in totals.values())


neutral_lines = st.fixed_dictionaries(
    {
        "description": st.just("Article"),
        "quantity": quantities.map(str),
        "unit_price": st.decimals(min_value=Decimal(1), max_value=Decimal(100_000), places=2).map(str),
        "price_includes_tax": st.booleans(),
        "tax_category": st.sampled_from(["standard", "exempt", "exempt_legal", "export", "special"]),
        "extra_taxes": st.one_of(
            st.just([]), st.integers(1, 5000).map(lambda a: [{"name": "Taxe spécifique", "amount": str(a)}])
        ),
        "discount": st.one_of(
            st.none(), st.integers(1, 90).map(lambda p: {"kind": "percent", "value": str(p)})
        ),
    }
)


@settings(max_examples=40, deadline=None)
@given(st.lists(neutral_lines, min_size=1, max_size=6), st.sampled_from([None, "A", "B"]), st.booleans())
def test_random_invoices_certify_against_the_simulator(
    raw_lines: list[dict[str, Any]], aib: str | None, tps: bool
) -> None:
    """Neutral invoice -> payload -> simulator over HTTP: the driver confirms only when both
    computations agree, so every example certifying proves they did; the totals are checked too."""
    # An invoice coming to less than 1 franc is refused by parse_invoice (certified as 0 otherwise).
    total = sum(
        (Decimal(str(ln["quantity"])) * Decimal(str(ln["unit_price"])) for ln in raw_lines), Decimal(0)
    )
    assume(total == 0 or total >= 1)
    invoice = parse_invoice(
        {
            "number": "P-1",
            "seller": {"name": "S", "regime": "tps" if tps else "normal"},
            "operator": {"name": "Ama"},
            "lines": raw_lines,
            "authority_options": {"bj-emecef": {"aib": aib}},
        }
    )
    request, problems = build_request(invoice, SETTINGS)
    if request is None:  # a price that rounds to 0 franc: refused locally, nothing to compare
        assert {p.rule for p in problems} == {"emecef.price_rounds_to_zero"}
        return
    sim = DRIVER.mock_app(SETTINGS)

    async def run() -> None:
        connection = Connection("http://bj-emecef.mock", Environment.MOCK, httpx.ASGITransport(app=sim))
        cert = await DRIVER.certify(invoice, SETTINGS, connection)
        expected = expected_totals(request)
        assert {k: cert.totals[k] for k in TOTAL_FIELDS} == {k: expected[k] for k in TOTAL_FIELDS}
        assert cert.counters == "1/1 FV"

    anyio.run(run)
