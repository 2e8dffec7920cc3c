"""FNE totals: the spec's reproducible figures pinned, and properties over random invoices,
including agreement between the client's Decimal maths and the simulator's independent Fractions."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.ci_fne import convert
from fiscalgate.authorities.ci_fne.convert import TotalsLine, compute_totals
from fiscalgate.authorities.ci_fne.schemas import SignRequest, SignResponse
from fiscalgate.authorities.ci_fne.simulator.app import make_simulator
from fiscalgate.core.invoice import parse_invoice

from .conftest import invoice_data

DRIVER = get_driver("ci-fne")
SETTINGS = DRIVER.parse_settings(DRIVER.mock_credentials())


def simulator_totals(payload: dict[str, Any]) -> dict[str, int]:
    """Sign the payload on a fresh simulated platform (no HTTP) and read the totals it computed."""
    sim = make_simulator()
    platform = sim.platform
    taxpayer = next(iter(platform.taxpayers.values()))
    wire = json.loads(json.dumps(payload))  # exactly what travels: JSON numbers, no Decimals
    reply = platform.sign(taxpayer, wire, "http://sim")
    assert reply.status == 200, reply.body
    doc = platform.by_reference(reply.body["reference"])
    assert doc is not None
    return doc.totals


# --- pinned figures ----------------------------------------------------------------------------------
def test_doc_discount_cascade_680_400() -> None:
    # spec §8.5: (540 000 + 216 000) x 0.9 = 680 400. The DOC's request shows only the first line
    # (30 x 20 000 - 10 %); the second is rebuilt as 10 x 24 000 - 10 % = 216 000.
    totals = compute_totals(
        [
            TotalsLine(Decimal(30), Decimal(20000), Decimal(10), "TVA"),
            TotalsLine(Decimal(10), Decimal(24000), Decimal(10), "TVA"),
        ],
        global_discount=Decimal(10),
    )
    assert totals.total_excl_tax == Decimal(680400)
    assert totals.vat == Decimal(122472)  # 18 % of 680 400
    assert totals.total_incl_vat == Decimal(802872)


def test_pdf_rounding_vat_half_up() -> None:
    # spec §8.5: 17 236.4 x 18 % = 3 102.5 prints 3 103.
    totals = compute_totals([TotalsLine(Decimal(1), Decimal("17236.4"), vat_code="TVA")])
    assert totals.vat == Decimal(3103)
    assert totals.total_excl_tax == Decimal(17236)
    assert totals.total_incl_vat == Decimal(20339)


def test_pdf_rounding_custom_tax_half_up() -> None:
    # spec §8.5: 3 568 500 x 1.5 % = 53 527.5 prints 53 528 (AUTRES TAXES).
    line = TotalsLine(
        Decimal(1), Decimal(3568500), vat_code="TVAD", custom_taxes=(("AIRSI", Decimal("1.5")),)
    )
    totals = compute_totals([line])
    assert totals.other_taxes == Decimal(53528)
    assert totals.vat == 0
    assert totals.total_to_pay == Decimal(3568500 + 53528)


def test_invoice_level_custom_tax_applies_to_net_ht() -> None:
    totals = compute_totals(
        [TotalsLine(Decimal(2), Decimal(1000), vat_code="TVAB")],
        global_discount=Decimal(50),
        invoice_custom_taxes=[("DTD", Decimal(5))],
    )
    assert (totals.total_excl_tax, totals.vat, totals.other_taxes) == (
        Decimal(1000),
        Decimal(90),
        Decimal(50),
    )
    assert totals.other_by_tax == {"DTD 5%": Decimal(50)}


def test_doc_example_same_on_simulator() -> None:
    data = invoice_data(
        lines=[
            {"description": "riz", "quantity": "30", "unit_price": "20000", "discount": {"value": "10"}},
            {"description": "huile", "quantity": "10", "unit_price": "24000", "discount": {"value": "10"}},
        ],
        discount={"value": "10"},
    )
    payload = DRIVER.build_payload(parse_invoice(data), SETTINGS)
    assert simulator_totals(payload) == {
        "ht": 680400,
        "vat": 122472,
        "ttc": 802872,
        "other_taxes": 0,
        "to_pay": 802872,
    }


def test_pdf_figures_same_on_simulator() -> None:
    data = invoice_data(
        lines=[
            {"description": "a", "quantity": "1", "unit_price": "17236.4"},
            {
                "description": "b",
                "quantity": "1",
                "unit_price": "3568500",
                "tax_category": "exempt_legal",
                "extra_taxes": [{"name": "AIRSI", "rate": "1.5"}],
            },
        ]
    )
    sim = simulator_totals(DRIVER.build_payload(parse_invoice(data), SETTINGS))
    assert sim["vat"] == 3103
    assert sim["other_taxes"] == 53528


# --- properties ----------------------------------------------------------------------------------
def _decimal(low: str, high: str, places: int) -> st.SearchStrategy[str]:
    return st.decimals(Decimal(low), Decimal(high), places=places, allow_nan=False, allow_infinity=False).map(
        str
    )


@st.composite
def lines(draw: st.DrawFn) -> dict[str, Any]:
    line: dict[str, Any] = {
        "description": draw(st.sampled_from(["riz", "huile", "sucre", "conseil", "transport"])),
        "quantity": draw(_decimal("0.001", "1000", 3)),
        "unit_price": draw(_decimal("0", "5000000", 4)),
        "tax_category": draw(st.sampled_from(["standard", "reduced", "exempt", "exempt_legal", "export"])),
        "price_includes_tax": draw(st.booleans()),
    }
    # A line coming to less than 1 franc is refused by parse_invoice (certified as 0 otherwise).
    gross_ht = Decimal(line["quantity"]) * Decimal(line["unit_price"])
    assume(gross_ht == 0 or gross_ht >= 1)
    discount = draw(st.one_of(st.none(), _decimal("0", "100", 2), st.just("amount")))
    if discount == "amount":
        gross = Decimal(line["quantity"]) * Decimal(line["unit_price"])
        line["discount"] = {"kind": "amount", "value": str((gross / 3).quantize(Decimal(1)))}
    elif discount is not None:
        line["discount"] = {"kind": "percent", "value": discount}
    line["extra_taxes"] = [
        {"name": name, "rate": rate}
        for name, rate in draw(
            st.lists(
                st.tuples(st.sampled_from(["GRA", "AIRSI", "DTD"]), st.sampled_from(["1", "1.5", "2", "5"])),
                max_size=2,
                unique_by=lambda t: t[0],
            )
        )
    ]
    return line


invoices = st.builds(
    lambda ls, discount, taxes: invoice_data(
        lines=ls,
        discount={"value": discount} if discount else None,
        authority_options={"ci-fne": {"custom_taxes": taxes}} if taxes else {},
    ),
    st.lists(lines(), min_size=1, max_size=6),
    st.one_of(st.none(), _decimal("0", "100", 2)),
    st.lists(
        st.fixed_dictionaries({"name": st.just("DTD"), "rate": st.sampled_from(["2", "5"])}), max_size=1
    ),
)


def _request(data: dict[str, Any]) -> SignRequest:
    invoice = parse_invoice(data)
    assert DRIVER.validate(invoice, SETTINGS) == []
    return SignRequest.model_validate(DRIVER.build_payload(invoice, SETTINGS))


@settings(max_examples=150, deadline=None)
@given(invoices)
def test_totals_add_up_exactly(data: dict[str, Any]) -> None:
    t = convert.totals_of_request(_request(data))
    assert t.vat == sum(t.vat_by_code.values())
    assert t.other_taxes == sum(t.other_by_tax.values())
    assert t.total_incl_vat == t.total_excl_tax + t.vat
    assert t.total_to_pay == t.total_incl_vat + t.other_taxes
    neutral = t.as_dict()
    assert neutral["total"] == neutral["total_excl_tax"] + neutral["total_tax"]
    for amount in neutral.values():
        assert amount == amount.to_integral_value()  # whole francs


@settings(max_examples=100, deadline=None)
@given(invoices, st.randoms(use_true_random=False))
def test_line_order_does_not_matter(data: dict[str, Any], rnd: Any) -> None:
    shuffled = dict(data, lines=rnd.sample(data["lines"], len(data["lines"])))
    assert convert.totals_of_request(_request(data)) == convert.totals_of_request(_request(shuffled))


@settings(max_examples=150, deadline=None)
@given(invoices)
def test_client_totals_equal_simulator_totals(data: dict[str, Any]) -> None:
    request = _request(data)
    ours = convert.totals_of_request(request)
    theirs = simulator_totals(request.wire())
    assert theirs == {
        "ht": ours.total_excl_tax,
        "vat": ours.vat,
        "ttc": ours.total_incl_vat,
        "other_taxes": ours.other_taxes,
        "to_pay": ours.total_to_pay,
    }


@settings(max_examples=100, deadline=None)
@given(invoices, st.data())
def test_credit_note_totals_equal_simulator_totals(data: dict[str, Any], draw: st.DataObject) -> None:
    """A random partial refund of a random invoice: the totals we compute locally for the credit note
    (the 201 has no amounts) equal what the simulated platform computed for it."""
    request = _request(data)
    sim = make_simulator()
    platform = sim.platform
    taxpayer = next(iter(platform.taxpayers.values()))
    wire = json.loads(json.dumps(request.wire()))
    signed = platform.sign(taxpayer, wire, "http://sim")
    assert signed.status == 200, signed.body
    original = convert.certification_from_sign(
        SignResponse.model_validate(signed.body),
        request,
        raw=signed.body,
        environment="mock",
        warning_threshold=50,
    )
    lines = []
    for position, item in enumerate(request.items, start=1):
        if draw.draw(st.booleans(), label=f"refund line {position}"):
            fraction = draw.draw(st.sampled_from(["1", "0.5", "0.25", "0.001"]), label="share")
            quantity = max((item.quantity * Decimal(fraction)).quantize(Decimal("0.001")), Decimal("0.001"))
            lines.append(
                {"description": item.description, "quantity": str(quantity), "unit_price": "1000",
                 "original_line": position}
            )  # fmt: skip
    if not lines:
        lines.append({"description": "x", "quantity": "0.001", "unit_price": "1000", "original_line": 1})
    credit = parse_invoice(
        invoice_data(number="AV-1", kind="credit_note", original={"number": "F-1"}, lines=lines)
    )
    plan, problems = convert.plan_refund(credit, original)
    assert plan is not None, problems
    refunded = platform.refund(
        taxpayer, original.authority_data["invoice_id"], json.loads(json.dumps(plan.request.wire())), "x"
    )
    assert refunded.status == 201, refunded.body
    doc = platform.by_reference(refunded.body["reference"])
    assert doc is not None
    assert doc.totals == {
        "ht": plan.totals.total_excl_tax,
        "vat": plan.totals.vat,
        "ttc": plan.totals.total_incl_vat,
        "other_taxes": plan.totals.other_taxes,
        "to_pay": plan.totals.total_to_pay,
    }
