"""Neutral invoice -> e-MCF request, and the local validation mirroring the platform."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.bj_emecef.convert import build_request
from fiscalgate.authorities.bj_emecef.settings import EmecefSettings
from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import InvoiceError
from fiscalgate.core.invoice import parse_invoice

from .samples import official_example

DRIVER = get_driver("bj-emecef")
SETTINGS = DRIVER.parse_settings(DRIVER.mock_credentials())
assert isinstance(SETTINGS, EmecefSettings)


def _invoice(lines: list[dict[str, Any]], **extra: Any) -> Any:
    return parse_invoice(
        {"number": "1", "seller": {"name": "S"}, "operator": {"name": "Ama"}, "lines": lines, **extra}
    )


def _line(**extra: Any) -> dict[str, Any]:
    return {
        "description": "Article",
        "quantity": "1",
        "unit_price": "1000",
        "price_includes_tax": True,
        **extra,
    }


def _payload(invoice: Any, settings: EmecefSettings = SETTINGS) -> dict[str, Any]:
    return DRIVER.build_payload(invoice, settings)


def _problems(
    invoice: Any, settings: EmecefSettings = SETTINGS, original: Certification | None = None
) -> dict[str, str]:
    request, problems = build_request(invoice, settings, original)
    assert (request is None) == bool(problems)
    return {p.field: p.message for p in problems}


def test_official_example_payload() -> None:
    body = _payload(official_example(aib="B"))
    assert body == {
        "ifu": SETTINGS.ifu,
        "aib": "B",
        "type": "FV",
        "items": [
            {"name": "Jus d'orange", "price": 1800, "quantity": 2, "taxGroup": "B"},
            {"name": "Lait 1/1 EX", "price": 450, "quantity": 3, "taxGroup": "A"},
        ],
        "client": {"ifu": "9999900000002", "name": "Nom du client", "contact": "45661122"},
        "operator": {"id": "", "name": "Jacques"},
        "payment": [{"name": "ESPECES", "amount": 5170}],  # the payment without amount takes the total
    }


@pytest.mark.parametrize(
    ("line", "regime", "group"),
    [
        ({}, "normal", "B"),
        ({"tax_category": "exempt"}, "normal", "A"),
        ({"tax_category": "exempt_legal"}, "normal", "A"),
        ({"tax_category": "export"}, "normal", "C"),
        ({"tax_category": "special"}, "normal", "D"),
        ({}, "tps", "E"),
        ({"tax_category": "exempt"}, "tps", "E"),
        ({"tax_code": "f"}, "normal", "F"),
        ({"tax_code": "A"}, "tps", "A"),  # tax_code overrides everything
    ],
)
def test_tax_group_choice(line: dict[str, Any], regime: str, group: str) -> None:
    invoice = _invoice([_line(**line)], seller={"name": "S", "regime": regime})
    assert _payload(invoice)["items"][0]["taxGroup"] == group


def test_reduced_rate_and_unknown_group_are_refused() -> None:
    problems = _problems(_invoice([_line(tax_category="reduced"), _line(tax_code="G")]))
    assert "no reduced VAT rate" in problems["lines[0].tax_category"]
    assert "not an e-MECeF tax group" in problems["lines[1].tax_code"]


def test_price_excluding_tax_is_grossed_up_with_the_group_rate_and_rounded_half_up() -> None:
    invoice = _invoice(
        [
            _line(unit_price="1000", price_includes_tax=False),  # B: 1180
            _line(unit_price="1000", price_includes_tax=False, tax_category="exempt"),  # A: 1000
            _line(unit_price="12.5", price_includes_tax=False),  # 14.75 -> 15
            _line(unit_price="2.5", price_includes_tax=True, tax_category="exempt"),  # tie -> 3
        ]
    )
    assert [i["price"] for i in _payload(invoice)["items"]] == [1180, 1000, 15, 3]


def test_discounts_go_into_the_price_with_original_price_and_text() -> None:
    invoice = _invoice(
        [
            _line(unit_price="2000", discount={"kind": "percent", "value": "50"}),
            _line(unit_price="1000", quantity="4", discount={"kind": "amount", "value": "400"}),
            _line(unit_price="1000", price_includes_tax=False, discount={"kind": "percent", "value": "10"}),
        ]
    )
    items = _payload(invoice)["items"]
    assert (items[0]["price"], items[0]["originalPrice"], items[0]["priceModification"]) == (
        1000,
        2000,
        "Remise 50%",
    )
    assert (items[1]["price"], items[1]["originalPrice"], items[1]["priceModification"]) == (
        900,
        1000,
        "Remise 400",
    )
    assert (items[2]["price"], items[2]["originalPrice"]) == (1062, 1180)  # 900 HT -> 1062 TTC


def test_invoice_percent_discount_is_spread_amount_discount_refused() -> None:
    items = _payload(_invoice([_line(unit_price="1000")], discount={"kind": "percent", "value": "10"}))[
        "items"
    ]
    assert (items[0]["price"], items[0]["priceModification"]) == (900, "Remise globale 10%")
    problems = _problems(_invoice([_line()], discount={"kind": "amount", "value": "10"}))
    assert "no invoice discount" in problems["discount"]


def test_specific_tax_amounts_are_summed_per_line_and_rates_refused() -> None:
    invoice = _invoice(
        [_line(extra_taxes=[{"name": "Taxe de séjour", "amount": "500"}, {"name": "X", "amount": "100"}])]
    )
    assert _payload(invoice)["items"][0]["taxSpecific"] == 600
    problems = _problems(_invoice([_line(extra_taxes=[{"name": "T", "rate": "2"}])]))
    assert "a rate cannot be sent" in problems["lines[0].extra_taxes[0].rate"]
    # A fraction of a franc is refused before any authority rule (XOF has no minor unit).
    with pytest.raises(InvoiceError) as info:
        _invoice([_line(extra_taxes=[{"name": "U", "amount": "1.5"}])])
    assert [p.field for p in info.value.problems] == ["lines[0].extra_taxes[0].amount"]


def test_aib_from_option_or_settings_default() -> None:
    with_default = SETTINGS.model_copy(update={"default_aib": "A"})
    # An explicit null in the invoice's options means "no AIB", whatever the default.
    assert "aib" not in _payload(official_example(aib=None), with_default)
    invoice = _invoice([_line()])
    assert _payload(invoice, with_default)["aib"] == "A"
    assert "aib" not in _payload(invoice)
    assert _payload(official_example(aib="b"))["aib"] == "B"
    assert "unknown AIB" in _problems(official_example(aib="C"))["authority_options.bj-emecef.aib"]


@pytest.mark.parametrize(
    ("method", "wire"),
    [
        ("cash", "ESPECES"),
        ("transfer", "VIREMENT"),
        ("card", "CARTEBANCAIRE"),
        ("mobile_money", "MOBILEMONEY"),
        ("check", "CHEQUES"),
        ("deferred", "CREDIT"),
        ("other", "AUTRE"),
    ],
)
def test_payment_types(method: str, wire: str) -> None:
    invoice = _invoice(
        [_line()], payments=[{"method": method, "amount": "400"}, {"method": "cash", "amount": "600"}]
    )
    assert _payload(invoice)["payment"] == [{"name": wire, "amount": 400}, {"name": "ESPECES", "amount": 600}]


def test_payment_problems() -> None:
    problems = _problems(
        _invoice([_line()], payments=[{"method": "card"}, {"method": "cash", "amount": "500"}])
    )
    assert "give an amount" in problems["payments[0].amount"]
    assert _payload(_invoice([_line()]))["payment"] == [{"name": "ESPECES", "amount": 1000}]


def test_operator_is_required_from_invoice_or_settings() -> None:
    invoice = parse_invoice({"number": "1", "seller": {"name": "S"}, "lines": [_line()]})
    without = SETTINGS.model_copy(update={"operator_name": None})
    assert "operator (cashier) name" in _problems(invoice, without)["operator"]
    assert _payload(invoice)["operator"] == {"id": "", "name": "Caisse 1"}


def test_foreign_buyer_makes_an_export_invoice_and_type_option_overrides() -> None:
    foreign = _invoice(
        [_line(tax_category="export")], buyer={"kind": "foreign", "name": "ACME SARL", "tax_id": "FR123"}
    )
    body = _payload(foreign)
    assert body["type"] == "EV"
    assert body["client"] == {"name": "ACME SARL"}  # a foreign tax id is not an IFU: not sent
    assert _payload(_invoice([_line()], authority_options={"bj-emecef": {"type": "ev"}}))["type"] == "EV"
    problems = _problems(_invoice([_line()], authority_options={"bj-emecef": {"type": "FA"}}))
    assert "does not match a sale invoice" in problems["authority_options.bj-emecef.type"]


def test_invalid_client_ifu_purchase_currency_and_seller_ifu() -> None:
    invoice = _invoice(
        [_line(tax_category="reduced")],
        kind="purchase",
        currency="EUR",
        seller={"name": "S", "tax_id": "1111111111111"},
        buyer={"kind": "business", "tax_id": "123"},
    )
    problems = _problems(invoice)
    assert set(problems) == {"kind", "currency", "seller.tax_id", "buyer.tax_id", "lines[0].tax_category"}


def _original(kind: str = "FV", total: str = "5170") -> Certification:
    return Certification.model_validate(
        {
            "authority": "bj-emecef",
            "environment": "mock",
            "reference": "TEST-WZK2-KC5G-C5YW-HB23-KB7G",
            "qr_content": "F;...",
            "certified_at": "2026-07-16T00:07:04+01:00",
            "totals": {"total": total},
            "authority_data": {"type": kind, "code": "TESTWZK2KC5GC5YWHB23KB7G"},
        }
    )


def test_credit_note_type_and_reference_from_the_original() -> None:
    credit = parse_invoice(
        {
            "number": "AV1",
            "kind": "credit_note",
            "original": {"number": "F-001"},
            "seller": {"name": "S"},
            "operator": {"name": "Ama"},
            "lines": [_line()],
        }
    )
    request, problems = build_request(credit, SETTINGS, _original("EV"))
    assert problems == [] and request is not None
    assert (request.type, request.reference) == ("EA", "TESTWZK2KC5GC5YWHB23KB7G")
    request, _ = build_request(credit, SETTINGS, _original("FV"))
    assert request is not None and request.type == "FA"


def test_credit_note_reference_from_the_invoice_and_its_checks() -> None:
    def credit(reference: str | None, **extra: Any) -> Any:
        original = {"number": "F-1", "reference": reference} if reference else {"number": "F-1"}
        return _invoice([_line()], kind="credit_note", original=original, **extra)

    assert _payload(credit("test-wzk2-kc5g-c5yw-hb23-kb7g"))["reference"] == "TESTWZK2KC5GC5YWHB23KB7G"
    assert "needs the original's code" in _problems(credit(None))["original.reference"]
    assert "not a code MECeF/DGI" in _problems(credit("TS01019550-1"))["original.reference"]
    problems = _problems(credit(None), original=_original("FV", total="500"))
    assert "exceeds the original's 500" in problems["lines"]
    forced = credit(None, authority_options={"bj-emecef": {"type": "FA"}})
    assert "a FA credits an FV, not an EV" in _problems(forced, original=_original("EV"))["original"]


def test_every_problem_is_reported_at_once() -> None:
    invoice = _invoice(
        [_line(tax_category="reduced"), _line(extra_taxes=[{"name": "T", "rate": "1"}])],
        currency="EUR",
        discount={"kind": "amount", "value": "5"},
        authority_options={"bj-emecef": {"aib": "Z"}},
    )
    assert len(_problems(invoice)) == 5


def test_payment_problems_are_reported_with_the_other_problems() -> None:
    invoice = _invoice(
        [_line(tax_category="reduced"), _line()],
        payments=[{"method": "card"}, {"method": "cash", "amount": "500"}],
    )
    expected = {"lines[0].tax_category", "payments[0].amount"}
    assert set(_problems(invoice)) == expected
    assert {p.field for p in DRIVER.validate(invoice, SETTINGS)} == expected


def test_quantities_keep_their_decimals_on_the_wire() -> None:
    body = _payload(_invoice([_line(quantity="2.5"), _line(quantity="12.250")]))
    assert [i["quantity"] for i in body["items"]] == [2.5, 12.25]
    assert Decimal(str(body["items"][1]["quantity"])) == Decimal("12.25")


def test_a_quantity_the_wire_cannot_carry_exactly_is_refused() -> None:
    exact = _payload(_invoice([_line(quantity="123456789.012345")]))  # 15 significant digits
    assert Decimal(repr(exact["items"][0]["quantity"])) == Decimal("123456789.012345")
    problems = _problems(_invoice([_line(quantity="0.3333333333333333"), _line(quantity="1.5")]))
    assert list(problems) == ["lines[0].quantity"]
    assert "more than 15 significant digits" in problems["lines[0].quantity"]


def test_conflicting_original_references_are_refused() -> None:
    credit = _invoice(
        [_line()],
        kind="credit_note",
        original={"number": "F-1", "reference": "TEST-AAAA-BBBB-CCCC-DDDD-EEEE"},
    )
    problems = _problems(credit, original=_original("FV"))
    assert "the original certification is TEST-WZK2-KC5G-C5YW-HB23-KB7G" in problems["original.reference"]


def test_details_matching_tolerates_nulls_and_spots_any_difference() -> None:
    from fiscalgate.authorities.bj_emecef.convert import details_match

    request, _ = build_request(official_example(aib="B"), SETTINGS)
    assert request is not None
    echo = request.wire()
    assert details_match(request, echo)
    assert not details_match(request, {**echo, "aib": None})
    assert not details_match(request, {**echo, "type": "EV"})
    changed = [dict(item) for item in echo["items"]]
    changed[1]["quantity"] = 4
    assert not details_match(request, {**echo, "items": changed})
    changed[1] = {**echo["items"][1], "price": None}
    assert not details_match(request, {**echo, "items": changed})
    assert not details_match(request, {**echo, "items": echo["items"][:1]})


def test_details_matching_compares_the_parties_and_payments() -> None:
    from fiscalgate.authorities.bj_emecef.convert import details_match

    request, _ = build_request(official_example(aib="B"), SETTINGS)
    assert request is not None
    echo = request.wire()
    # what a .NET server echoes: every member present, nulls for what was not sent, numbers as floats
    padded = {
        **echo,
        "operator": {"id": None, "name": "Jacques"},
        "client": {**echo["client"], "address": None},
        "payment": [{"name": "ESPECES", "amount": 5170.0}],
        "errorCode": None,
    }
    assert details_match(request, padded)
    assert not details_match(request, {**echo, "operator": {"id": "", "name": "Ama"}})
    assert not details_match(request, {**echo, "client": None})
    assert not details_match(request, {**echo, "client": {**echo["client"], "ifu": "1111111111111"}})
    assert not details_match(request, {**echo, "payment": [{"name": "CARTEBANCAIRE", "amount": 5170}]})
    assert not details_match(request, {**echo, "payment": [{"name": "ESPECES", "amount": 5000}]})


def test_rounded_unit_prices_are_flagged_when_they_change_the_total() -> None:
    from fiscalgate.authorities.bj_emecef.convert import rounding_notice

    exact = _invoice(
        [_line(unit_price="1800", quantity="2"), _line(unit_price="2000", discount={"value": "50"})]
    )
    request, _ = build_request(exact, SETTINGS)
    assert request is not None and rounding_notice(exact, request) is None

    # 1 000 bags at 1.40 F TTC: the API takes 1 F, so 1 000 F is certified instead of 1 400 F
    rounded = _invoice([_line(unit_price="1.4", quantity="1000", tax_category="exempt")])
    request, _ = build_request(rounded, SETTINGS)
    assert request is not None and request.items[0].price == 1
    notice = rounding_notice(rounded, request)
    assert notice is not None and notice.code == "emecef.unit_prices_rounded"
    assert "certified total is 1000 F where the invoice's own prices give 1400 F" in notice.message

    # an HT price whose TTC is not whole: 847.46 x 1.18 = 999.9988 -> 1000, x 3 lines of 1
    ht = _invoice([_line(unit_price="847.46", price_includes_tax=False)])
    request, _ = build_request(ht, SETTINGS)
    assert request is not None and request.items[0].price == 1000
    assert rounding_notice(ht, request) is None  # the group total rounds to the same franc


def test_a_token_close_to_its_expiry_is_flagged() -> None:
    from datetime import UTC, datetime, timedelta

    from fiscalgate.authorities.bj_emecef.convert import token_notice

    now = datetime(2026, 7, 16, 10, 0, tzinfo=UTC)
    assert token_notice(now + timedelta(days=31), now) is None
    notice = token_notice(datetime(2026, 8, 4, 23, 0, tzinfo=UTC), now)  # local midnight, as seen live
    assert notice is not None and notice.code == "emecef.token_expires_soon"
    assert "expires on 05/08/2026 00:00 (Bénin time)" in notice.message


def test_a_credit_note_must_go_to_the_platform_that_certified_its_original() -> None:
    credit = _invoice([_line()], kind="credit_note", original={"number": "F-1"})
    sandbox_original = _original("FV").model_copy(update={"environment": "sandbox"})
    problems = _problems(credit, original=sandbox_original)
    assert problems == {"original": "the original was certified in sandbox, this credit note goes to mock"}
