"""The totals builder and the payload validator (spec §5), pinned on worked examples and checked
by property tests against the simulator's independent audit."""

from __future__ import annotations

import json
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fiscalgate.authorities.cg_sfec.driver import SfecDriver
from fiscalgate.authorities.cg_sfec.settings import SfecSettings
from fiscalgate.authorities.cg_sfec.simulator.app import InvoiceIn
from fiscalgate.authorities.cg_sfec.simulator.state import TotalsAudit
from fiscalgate.authorities.cg_sfec.totals import LineInput, build_totals, check_totals, push_down_discount
from fiscalgate.core.invoice import parse_invoice

D = Decimal


def payload_of(lines: list[LineInput], currency: str = "XAF", **options: Any) -> dict[str, Any]:
    totals = build_totals(lines, currency, **options)
    items = [
        {
            "unit_price": a.unit_price,
            "quantity": a.quantity,
            "subtotal": a.subtotal,
            "discount_amount": a.discount_value,
            "discount_type": a.discount_type,
            "net_amount": a.net,
            "tax_rate": a.rate,
            "tax_amount": a.tax,
            "total_amount": a.total,
        }
        for a in totals.lines
    ]
    return {"currency": currency, **totals.header(), "items": items}


# --- worked examples --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("price", "vat", "cac", "total"),
    [(D(1000), D(180), D(9), D(1189)), (D(100000), D(18000), D(900), D(118900))],
    ids=["T-CONNECTOR VAT 180 -> 9", "SmartDesk VAT 18000 -> 900"],
)
def test_centimes_additionnels_are_5_percent_of_vat(
    price: Decimal, vat: Decimal, cac: Decimal, total: Decimal
) -> None:
    totals = build_totals([LineInput(price, D(1), "18")], "XAF")
    assert (totals.total_tax_t, totals.additional_cent_tax, totals.total) == (vat, cac, total)


def test_centimes_apply_to_the_reduced_rate_too_and_can_be_left_to_sfec() -> None:
    lines = [LineInput(D(20000), D(1), "5")]
    assert build_totals(lines, "XAF").additional_cent_tax == D(50)
    zero = build_totals(lines, "XAF", additional_cent_tax="zero")
    assert (zero.additional_cent_tax, zero.total) == (D(0), D(21000))
    assert check_totals(payload_of(lines, additional_cent_tax="zero")) == []


def test_the_mixed_example_invoice_by_hand() -> None:
    totals = build_totals(
        [
            LineInput(D(350000), D(2), "18", "fixed", D(15000)),
            LineInput(D(6250), D(40), "5", "percentage", D(5)),
            LineInput(D(7990), D(3), "0"),
            LineInput(D(85000), D(1), "18"),
        ],
        "XAF",
        paid=D(200000),
    )
    assert [(a.subtotal, a.discount, a.net, a.tax, a.total) for a in totals.lines] == [
        (D(700000), D(15000), D(685000), D(123300), D(808300)),
        (D(250000), D(12500), D(237500), D(11875), D(249375)),
        (D(23970), D(0), D(23970), D(0), D(23970)),
        (D(85000), D(0), D(85000), D(15300), D(100300)),
    ]
    assert totals.header() == {
        "subtotal": D(1031470),
        "total_tax_t_amount": D(138600),
        "total_tax_r_amount": D(11875),
        "total_exempt_amount": D(23970),
        "total_tax_amount": D(150475),
        "discount_amount": D(0),
        "total_line_discount_amount": D(27500),
        "additional_cent_tax": D(7524),  # 7 523.75 rounded half-up
        "electronic_stamp_duty": D(0),
        "total_amount": D(1189469),
        "amount_due": D(989469),
    }


def test_usd_rounds_to_cents_and_a_half_cent_discount_rounds_like_the_check() -> None:
    lines = [LineInput(D("1.00"), D(1), "18", "percentage", D("0.5"))]  # net 0.995 -> 1.00
    totals = build_totals(lines, "USD")
    assert (totals.lines[0].net, totals.lines[0].tax, totals.total) == (D("1.00"), D("0.18"), D("1.19"))
    assert check_totals(payload_of(lines, "USD")) == []


def test_amount_due_never_negative() -> None:
    assert build_totals([LineInput(D(1000), D(1), "0")], "XAF", paid=D(5000)).amount_due == D(0)


def test_invoice_discount_is_pushed_into_the_lines_exactly() -> None:
    lines = [LineInput(D(1000), D(1), "18"), LineInput(D(2000), D(1), "5", "percentage", D(10))]
    pushed = push_down_discount(lines, D(100), "XAF")
    assert [(p.discount_type, p.discount_value) for p in pushed] == [("fixed", D(36)), ("fixed", D(264))]
    totals = build_totals(pushed, "XAF")
    assert totals.subtotal == D(2700) and totals.discount == 0


def test_the_seeds_own_example_is_inconsistent_and_every_fault_is_listed() -> None:
    problems = check_totals(_seed_example())
    assert {p.field: p.expected for p in problems} == {
        "items[0].net_amount": "3320",  # the doc says 7835.2
        "items[1].net_amount": "7960",
        "items[1].tax_amount": "1432.8",
        "items[1].total_amount": "9392.8",
        "subtotal": "11280",
        "total_tax_t_amount": "2030.4",
        "total_tax_amount": "2030.4",
        "total_amount": "13310.4",
        "amount_due": "13310.4",
    }


def _seed_example() -> dict[str, Any]:
    # The amounts of the online-report page's request example (docs.sfec.gouv.cg/online-report).
    return {
        "currency": "XAF",
        "subtotal": 13280,
        "total_tax_t_amount": 2390.4,
        "total_tax_r_amount": 0,
        "total_exempt_amount": 0,
        "total_tax_amount": 2390.4,
        "discount_amount": 0,
        "amount_due": 15670.4,
        "total_line_discount_amount": 2000,
        "additional_cent_tax": 0,
        "electronic_stamp_duty": 0,
        "total_amount": 15670.4,
        "items": [
            {
                "discount_amount": 1000,
                "discount_type": "fixed",
                "net_amount": 7835.2,
                "quantity": 6,
                "subtotal": 4320,
                "tax_amount": 597.6,
                "tax_rate": "18",
                "total_amount": 3917.6,
                "unit_price": 720,
            },
            {
                "discount_amount": 1000,
                "discount_type": "fixed",
                "net_amount": 7835.2,
                "quantity": 6,
                "subtotal": 8960,
                "tax_amount": 1792.8,
                "tax_rate": "18",
                "total_amount": 11752.8,
                "unit_price": 1493.33,
            },
        ],
    }


def test_amounts_written_with_decimals_are_checked_at_their_own_precision() -> None:
    # XAF with one decimal, as the seed writes them: 3320 x 18 % = 597.6 is exact, 598 is too
    line = {
        "unit_price": 720,
        "quantity": 6,
        "subtotal": 4320,
        "discount_amount": 1000,
        "discount_type": "fixed",
        "net_amount": 3320,
        "tax_rate": "18",
        "tax_amount": 597.6,
        "total_amount": 3917.6,
    }
    header = {
        "currency": "XAF",
        "subtotal": 3320,
        "total_tax_t_amount": 597.6,
        "total_tax_r_amount": 0,
        "total_exempt_amount": 0,
        "total_tax_amount": 597.6,
        "discount_amount": 0,
        "total_line_discount_amount": 1000,
        "additional_cent_tax": 29.88,
        "electronic_stamp_duty": 0,
        "total_amount": 3947.48,
        "amount_due": 3947.48,
    }
    assert check_totals({**header, "items": [line]}) == []
    assert (
        check_totals(
            {**header, "additional_cent_tax": 30, "total_amount": 3947.6, "amount_due": 0, "items": [line]}
        )
        == []
    )
    # 29.88 written with one decimal is 29.9 (rounded at the precision it is written with)
    assert (
        check_totals(
            {**header, "additional_cent_tax": 29.9, "total_amount": 3947.5, "amount_due": 1, "items": [line]}
        )
        == []
    )
    wrong = check_totals({**header, "additional_cent_tax": 29.8, "items": [line]})
    assert [(p.field, p.expected) for p in wrong] == [
        ("additional_cent_tax", "29.9"),
        ("total_amount", "3947.5"),
    ]
    three = check_totals({**header, "items": [{**line, "tax_amount": 597.601, "total_amount": 3917.601}]})
    assert ("items[0].tax_amount", "decimals") in {(p.field, p.rule) for p in three}


def test_percentage_discount_read_as_percent_or_as_amount() -> None:
    base = {
        "unit_price": 1000,
        "quantity": 3,
        "subtotal": 3000,
        "discount_type": "percentage",
        "tax_rate": "0",
        "tax_amount": 0,
    }
    header = {
        "currency": "XAF",
        "total_tax_t_amount": 0,
        "total_tax_r_amount": 0,
        "total_tax_amount": 0,
        "discount_amount": 0,
        "additional_cent_tax": 0,
        "electronic_stamp_duty": 0,
    }
    as_percent = {**base, "discount_amount": 10, "net_amount": 2700, "total_amount": 2700}
    as_amount = {**base, "discount_amount": 300, "net_amount": 2700, "total_amount": 2700}
    for item in (as_percent, as_amount):
        totals = {
            "subtotal": 2700,
            "total_exempt_amount": 2700,
            "total_line_discount_amount": 300,
            "total_amount": 2700,
            "amount_due": 2700,
        }
        assert check_totals({**header, **totals, "items": [item]}) == []
        assert TotalsAudit("XAF").run(_wire({**header, **totals, "items": [item]})) == []


def test_missing_and_unreadable_amounts_are_reported_without_noise() -> None:
    payload = payload_of([LineInput(D(1000), D(2), "18")])
    payload["items"][0]["tax_amount"] = "abc"
    del payload["total_amount"]
    payload["items"][0]["tax_rate"] = "7"
    problems = check_totals(payload)
    assert [(p.field, p.rule) for p in problems] == [
        ("items[0].tax_amount", "type"),
        ("items[0].tax_rate", "tax_rate"),
        ("total_amount", "required"),
    ]
    assert check_totals({"currency": "XAF"})[0].field == "items"


def test_discounts_larger_than_the_subtotal_are_named() -> None:
    payload = payload_of([LineInput(D(1000), D(1), "0")])
    payload["items"][0].update(discount_amount=D(1500))
    payload["discount_amount"] = D(5000)
    fields = {p.field: p.rule for p in check_totals(payload)}
    assert fields["items[0].discount_amount"] == "discount_exceeds"
    assert fields["discount_amount"] == "discount_exceeds"


def test_a_stamp_duty_is_refused() -> None:
    payload = payload_of([LineInput(D(1000), D(1), "0")])
    payload["electronic_stamp_duty"] = D(50)
    payload["total_amount"] = D(1050)
    assert [(p.field, p.expected) for p in check_totals(payload)] == [
        ("electronic_stamp_duty", "0"),
        ("total_amount", "1000"),
    ]


# --- property tests ---------------------------------------------------------------------------
def _wire(payload: dict[str, Any]) -> dict[str, Any]:
    """What the simulator sees: JSON on the wire (floats), read back with Decimal."""
    text = json.dumps(payload, default=lambda d: int(d) if d == d.to_integral_value() else float(d))
    data: dict[str, Any] = json.loads(text, parse_float=Decimal)
    for item in data["items"]:
        for key, value in item.items():
            if isinstance(value, int) and not isinstance(value, bool):
                item[key] = Decimal(value)
    for key, value in list(data.items()):
        if isinstance(value, int) and not isinstance(value, bool):
            data[key] = Decimal(value)
    return data


def _money(currency: str, high: int) -> st.SearchStrategy[Decimal]:
    places = 0 if currency == "XAF" else 2
    return st.integers(0, high * 10**places).map(lambda n: Decimal(n).scaleb(-places))


@st.composite
def invoices(draw: st.DrawFn) -> dict[str, Any]:
    currency = draw(st.sampled_from(["XAF", "USD"]))
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        quantity = draw(st.decimals("0.001", "500", places=3))
        unit_price = draw(_money(currency, 2_000_000 if currency == "XAF" else 5_000))
        line: dict[str, Any] = {
            "description": "article",
            "quantity": str(quantity),
            "unit_price": str(unit_price),
            "tax_category": draw(st.sampled_from(["standard", "reduced", "exempt", "export", "special"])),
            "price_includes_tax": draw(st.booleans()),
            "kind": draw(st.sampled_from(["product", "service"])),
        }
        kind = draw(st.sampled_from([None, "percent", "amount"]))
        if kind == "percent":
            line["discount"] = {"kind": "percent", "value": str(draw(st.decimals("0", "100", places=2)))}
        elif kind == "amount":
            # with cents even in XAF: the builder must still send whole francs. A fixed discount
            # larger than the line is refused by the neutral model, so stay within the line.
            ceiling = min(Decimal(50000), (quantity * unit_price).quantize(Decimal("0.01"), ROUND_DOWN))
            line["discount"] = {"kind": "amount", "value": str(draw(st.decimals("0", ceiling, places=2)))}
        lines.append(line)
    # An invoice coming to less than the currency's unit is refused by parse_invoice.
    total = sum((Decimal(ln["quantity"]) * Decimal(ln["unit_price"]) for ln in lines), Decimal(0))
    assume(total == 0 or total >= (1 if currency == "XAF" else Decimal("0.01")))
    data: dict[str, Any] = {
        "number": "P-1",
        "currency": currency,
        "seller": {"name": "S"},
        "buyer": {"kind": "individual"},
        "lines": lines,
        "payments": [{"method": "cash", "amount": str(draw(_money(currency, 100_000)))}],
    }
    if draw(st.booleans()):
        data["discount"] = draw(
            st.one_of(
                st.builds(lambda v: {"kind": "percent", "value": str(v)}, st.decimals("0", "100", places=1)),
                st.builds(lambda v: {"kind": "amount", "value": str(v)}, st.decimals("0", "20000", places=2)),
            )
        )
    return data


PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(data=invoices())
def test_built_totals_are_consistent_and_accepted_by_the_simulator(
    data: dict[str, Any], driver: SfecDriver, settings: SfecSettings
) -> None:
    invoice = parse_invoice(data)
    payload = driver.build_payload(invoice, settings)
    paid = sum((p.amount or 0 for p in invoice.payments), D(0))
    assert check_totals(payload, paid=paid) == []
    wire = _wire(payload)
    assert TotalsAudit(invoice.currency).run(InvoiceIn.model_validate(wire).model_dump()) == []
    # the identities spec §5 states, directly
    h = {
        k: D(str(v))
        for k, v in payload.items()
        if k != "items" and isinstance(v, int | float) and not isinstance(v, bool)
    }
    items = payload["items"]
    assert h["discount_amount"] == 0
    assert h["total_amount"] == sum(D(str(i["total_amount"])) for i in items) + h["additional_cent_tax"]
    assert h["total_tax_amount"] == h["total_tax_t_amount"] + h["total_tax_r_amount"]
    assert h["amount_due"] == max(h["total_amount"] - paid, D(0))
    assert all(D(str(i["net_amount"])) <= D(str(i["subtotal"])) for i in items)
    # every amount in whole units of the currency (francs for XAF, cents for USD), fixed
    # discounts included (spec §5 "Rounding")
    unit = D(1) if invoice.currency == "XAF" else D("0.01")
    amounts = [*h.values()] + [D(str(i[k])) for i in items for k in DERIVED_LINE]
    amounts += [D(str(i["discount_amount"])) for i in items if i["discount_type"] == "fixed"]
    assert all(a % unit == 0 for a in amounts)


@PROPERTY
@given(data=invoices())
def test_line_order_does_not_change_the_totals(
    data: dict[str, Any], driver: SfecDriver, settings: SfecSettings
) -> None:
    assume("discount" not in data)  # a pushed-down remainder goes to the largest line, wherever it is
    forward = driver.build_payload(parse_invoice(data), settings)
    backward = driver.build_payload(parse_invoice({**data, "lines": data["lines"][::-1]}), settings)
    assert {k: v for k, v in forward.items() if k != "items"} == {
        k: v for k, v in backward.items() if k != "items"
    }


DERIVED_LINE = ("subtotal", "net_amount", "tax_amount", "total_amount")
DERIVED_HEADER = (
    "subtotal",
    "total_tax_t_amount",
    "total_tax_r_amount",
    "total_exempt_amount",
    "total_tax_amount",
    "total_line_discount_amount",
    "additional_cent_tax",
    "electronic_stamp_duty",
    "total_amount",
    "amount_due",
)


@PROPERTY
@given(data=invoices(), choice=st.data())
def test_any_single_perturbed_amount_is_named_with_its_expected_value(
    data: dict[str, Any], choice: st.DataObject, driver: SfecDriver, settings: SfecSettings
) -> None:
    invoice = parse_invoice(data)
    payload = driver.build_payload(invoice, settings)
    paid = sum((p.amount or 0 for p in invoice.payments), D(0))
    unit = D(1) if invoice.currency == "XAF" else D("0.01")
    delta = choice.draw(
        st.integers(1, 50).map(lambda n: n * unit) | st.integers(1, 50).map(lambda n: -n * unit)
    )
    where = choice.draw(
        st.sampled_from(
            [f"items[{i}].{k}" for i in range(len(payload["items"])) for k in DERIVED_LINE]
            + list(DERIVED_HEADER)
        )
    )
    if where.startswith("items["):
        index, key = int(where[6 : where.index("]")]), where.split(".", 1)[1]
        target = payload["items"][index]
        item = target
        # a percentage line whose net lands on subtotal - percent reads as an amount discount (§5.2)
        if key == "net_amount" and item["discount_type"] == "percentage":
            assume(
                D(str(item["net_amount"])) + delta
                != D(str(item["subtotal"])) - D(str(item["discount_amount"]))
            )
    else:
        target, key = payload, where
    original = D(str(target[key]))
    changed = original + delta
    assume(changed >= 0)
    if key == "additional_cent_tax" and target is payload:
        assume(changed != 0)  # 0 is the other accepted policy: SFEC computes them
    target[key] = float(changed) if changed != changed.to_integral_value() else int(changed)
    problems = {p.field: p.expected for p in check_totals(payload, paid=paid)}
    assert where in problems
    assert D(str(problems[where])) == original
    if key != "amount_due":  # the platform cannot know what was paid before
        audit = {f["field"]: f["expected"] for f in TotalsAudit(invoice.currency).run(_wire(payload))}
        assert where in audit and D(audit[where]) == original


@PROPERTY
@given(data=invoices(), choice=st.data())
def test_a_changed_input_is_always_rejected(
    data: dict[str, Any], choice: st.DataObject, driver: SfecDriver, settings: SfecSettings
) -> None:
    """Unit price, quantity and discounts define the invoice: changing one makes the amounts
    derived from it wrong, and those are named."""
    invoice = parse_invoice(data)
    payload = driver.build_payload(invoice, settings)
    index = choice.draw(st.integers(0, len(payload["items"]) - 1))
    item = payload["items"][index]
    key = choice.draw(st.sampled_from(["unit_price", "quantity", "discount_amount"]))
    before = build_totals(
        [LineInput(D(str(item["unit_price"])), D(str(item["quantity"])), item["tax_rate"])], invoice.currency
    ).lines[0]
    bump = D(1) if invoice.currency == "XAF" else D("0.01")
    if key == "quantity":
        bump = D(1)
    if key == "discount_amount" and item["discount_type"] == "percentage":
        bump = D(1)
    changed = D(str(item[key])) + bump
    if key == "discount_amount":
        assume(changed <= (100 if item["discount_type"] == "percentage" else before.subtotal))
    item[key] = float(changed) if changed != changed.to_integral_value() else int(changed)
    # a change too small to move the rounded subtotal or net is no inconsistency at all
    assume(_line_changed(item, invoice.currency))
    assert check_totals(payload)
    assert TotalsAudit(invoice.currency).run(_wire(payload))


def _line_changed(item: dict[str, Any], currency: str) -> bool:
    line = LineInput(
        D(str(item["unit_price"])),
        D(str(item["quantity"])),
        item["tax_rate"],
        item["discount_type"],
        D(str(item["discount_amount"])),
    )
    again = build_totals([line], currency).lines[0]
    return (again.subtotal, again.net) != (D(str(item["subtotal"])), D(str(item["net_amount"])))
