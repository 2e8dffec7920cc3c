"""Neutral invoice -> FNE sign body: template, VAT codes, discounts, phone, custom taxes, prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from fiscalgate.authorities.ci_fne import convert, regime
from fiscalgate.authorities.ci_fne.driver import FneDriver, FneSettings
from fiscalgate.authorities.ci_fne.schemas import SignRequest
from fiscalgate.core.errors import InvoiceError
from fiscalgate.core.invoice import parse_invoice

from .conftest import invoice_data


def payload(driver: FneDriver, settings: FneSettings, **changes: Any) -> dict[str, Any]:
    return driver.build_payload(parse_invoice(invoice_data(**changes)), settings)


def test_b2b_body_matches_the_doc_shape(driver: FneDriver, settings: FneSettings) -> None:
    body = payload(driver, settings, operator={"name": "Awa"}, commercial_message="Bienvenue", footer="Merci")
    assert body == {
        "invoiceType": "sale",
        "paymentMethod": "mobile-money",
        "template": "B2B",
        "isRne": False,
        "clientNcc": "9502363N",
        "clientCompanyName": "KPMG COTE D'IVOIRE",
        "clientPhone": "0709080765",
        "clientEmail": "info@kpmg.ci",
        "clientSellerName": "Awa",
        "pointOfSale": "Caisse 1",
        "establishment": "Siège Plateau",
        "commercialMessage": "Bienvenue",
        "footer": "Merci",
        "foreignCurrency": "",
        "foreignCurrencyRate": 0,
        "items": [
            {
                "taxes": ["TVA"],
                "customTaxes": [{"name": "GRA", "amount": 5}],
                "reference": "ref009",
                "description": "sac de riz",
                "quantity": 30,
                "amount": 20000,
                "discount": 10,
                "measurementUnit": "pcs",
            },
            {
                "taxes": ["TVA"],
                "reference": "ref010",
                "description": "bidon d'huile",
                "quantity": 10,
                "amount": 24000,
            },
        ],
    }


@pytest.mark.parametrize(
    ("kind", "template"),
    [("business", "B2B"), ("individual", "B2C"), ("government", "B2G"), ("foreign", "B2F")],
)
def test_template_from_buyer_kind(kind: str, template: str) -> None:
    data = invoice_data(buyer={**invoice_data()["buyer"], "kind": kind})
    assert convert.template_for(parse_invoice(data)) == template


def test_template_override_and_ncc_only_for_b2b(driver: FneDriver, settings: FneSettings) -> None:
    body = payload(driver, settings, authority_options={"ci-fne": {"template": "b2g"}})
    assert body["template"] == "B2G" and "clientNcc" not in body


@pytest.mark.parametrize(
    ("category", "code"),
    [
        ("standard", "TVA"),
        ("reduced", "TVAB"),
        ("exempt", "TVAC"),
        ("exempt_legal", "TVAD"),
        ("export", "TVAC"),
        ("special", "TVA"),
    ],
)
def test_vat_code_from_category(driver: FneDriver, settings: FneSettings, category: str, code: str) -> None:
    lines = [{"description": "x", "quantity": "1", "unit_price": "100", "tax_category": category}]
    assert payload(driver, settings, lines=lines)["items"][0]["taxes"] == [code]


def test_tps_seller_and_explicit_code(driver: FneDriver, settings: FneSettings) -> None:
    lines = [
        {"description": "a", "quantity": "1", "unit_price": "100"},
        {"description": "b", "quantity": "1", "unit_price": "100", "tax_code": "tvab"},
    ]
    body = payload(driver, settings, lines=lines, seller={"name": "Boutique", "regime": "tps"})
    assert [it["taxes"] for it in body["items"]] == [["TVAD"], ["TVAB"]]


def test_amount_discounts_become_percentages(driver: FneDriver, settings: FneSettings) -> None:
    lines = [
        {
            "description": "a",
            "quantity": "4",
            "unit_price": "2500",
            "discount": {"kind": "amount", "value": "2500"},
        },
        {
            "description": "b",
            "quantity": "3",
            "unit_price": "100",
            "discount": {"kind": "amount", "value": "100"},
        },
    ]
    body = payload(driver, settings, lines=lines, discount={"kind": "amount", "value": "1000"})
    assert body["items"][0]["discount"] == 25
    assert body["items"][1]["discount"] == pytest.approx(33.33333333)  # 8 decimals on the wire
    # the global percentage is taken on the lines after their own discounts: 1000 / (7500 + 200)
    assert Decimal(str(body["discount"])) == Decimal("12.98701299")
    totals = convert.totals_of_request(SignRequest.model_validate(body))
    assert totals.total_excl_tax == Decimal(6700)  # 7 500 + 200 - 1 000


def test_tax_inclusive_price_is_converted_to_ht(driver: FneDriver, settings: FneSettings) -> None:
    lines = [
        {"description": "a", "quantity": "1", "unit_price": "1180", "price_includes_tax": True},
        {
            "description": "b",
            "quantity": "1",
            "unit_price": "1000",
            "price_includes_tax": True,
            "tax_category": "reduced",
        },
        {
            "description": "c",
            "quantity": "1",
            "unit_price": "500",
            "price_includes_tax": True,
            "tax_category": "exempt",
        },
    ]
    body = payload(driver, settings, lines=lines)
    assert [it["amount"] for it in body["items"]] == [1000, 917.4312, 500]
    totals = convert.totals_of_request(SignRequest.model_validate(body))
    assert totals.total_incl_vat == Decimal(2680)  # 1 180 + 1 000 + 500, back to the TTC prices


def test_foreign_currency_and_rne_options(driver: FneDriver, settings: FneSettings) -> None:
    body = payload(
        driver,
        settings,
        buyer={"kind": "foreign", "name": "ACME GmbH", "phone": "+49301234", "email": "a@acme.de"},
        foreign_currency="EUR",
        exchange_rate="655.957",
        authority_options={"ci-fne": {"is_rne": True, "rne": "RNE-0001", "payment_method": "card"}},
    )
    assert (body["template"], body["foreignCurrency"], body["foreignCurrencyRate"]) == ("B2F", "EUR", 655.957)
    assert (body["isRne"], body["rne"], body["paymentMethod"]) == (True, "RNE-0001", "card")


def test_invoice_level_custom_taxes_and_point_of_sale_override(
    driver: FneDriver, settings: FneSettings
) -> None:
    body = payload(
        driver,
        settings,
        point_of_sale="Caisse 2",
        establishment="Agence Yopougon",
        authority_options={"ci-fne": {"custom_taxes": [{"name": "DTD", "rate": "5"}]}},
    )
    assert body["customTaxes"] == [{"name": "DTD", "amount": 5}]
    assert (body["pointOfSale"], body["establishment"]) == ("Caisse 2", "Agence Yopougon")


def test_purchase_slip_has_no_taxes_nor_currency(driver: FneDriver, settings: FneSettings) -> None:
    lines = [{"description": "cacao", "quantity": "1200.5", "unit_price": "1500", "unit": "kg"}]
    body = payload(driver, settings, kind="purchase", lines=lines)
    assert body["invoiceType"] == "purchase" and body["template"] == "B2B"
    assert body["items"] == [
        {"description": "cacao", "quantity": 1200.5, "amount": 1500, "measurementUnit": "kg"}
    ]
    assert not {"clientNcc", "foreignCurrency", "foreignCurrencyRate", "customTaxes"} & set(body)


def test_payment_method_rules(driver: FneDriver, settings: FneSettings) -> None:
    def problems(**changes: Any) -> set[tuple[str, str]]:
        return {(p.field, p.rule) for p in driver.validate(parse_invoice(invoice_data(**changes)), settings)}

    assert ("payments", "single_method") in problems(payments=[{"method": "cash"}, {"method": "card"}])
    assert ("payments[0].method", "enum") in problems(payments=[{"method": "other"}])
    assert problems(payments=[{"method": "transfer"}, {"method": "transfer"}]) == set()
    assert payload(driver, settings, payments=[{"method": "transfer"}])["paymentMethod"] == "transfer"


def test_other_local_refusals(driver: FneDriver, settings: FneSettings) -> None:
    data = invoice_data(authority_options={"ci-fne": {"colour": "blue", "is_rne": "yes"}})
    data["lines"][0]["original_line"] = 1
    data["discount"] = {"kind": "amount", "value": "99999999"}
    found = {(p.field, p.rule) for p in driver.validate(parse_invoice(data), settings)}
    assert {
        ("authority_options.ci-fne.colour", "unknown_option"),
        ("authority_options.ci-fne.is_rne", "type"),
        ("lines[0].original_line", "credit_note_only"),
        ("discount.value", "too_large"),
    } <= found
    with pytest.raises(InvoiceError):
        driver.build_payload(parse_invoice(data), settings)


def test_references_parse() -> None:
    assert regime.parse_reference("A9606123E2500000006") == regime.ParsedReference(
        "credit_note", "9606123E", 25, 6
    )
    assert regime.parse_reference("1304777N26000000023") == regime.ParsedReference("sale", "1304777N", 26, 23)
    assert regime.parse_reference("9606123E2500000006") is None  # 8-digit sequence without the A
    assert regime.is_ncc("9502363N") and not regime.is_ncc("9502363n")


def test_a_template_option_must_be_text(driver: FneDriver, settings: FneSettings) -> None:
    data = invoice_data(authority_options={"ci-fne": {"template": 2}})
    found = {(p.field, p.rule) for p in driver.validate(parse_invoice(data), settings)}
    assert ("authority_options.ci-fne.template", "enum") in found


def test_percentages_travel_and_are_stored_as_plain_numbers(driver: FneDriver, settings: FneSettings) -> None:
    data = invoice_data(discount={"value": "33.333333333333333333"})
    data["lines"][0]["extra_taxes"] = [{"name": "GRA", "rate": "10.0"}]
    invoice = parse_invoice(data)
    request = convert.build_sign_request(invoice, point_of_sale="Caisse 1", establishment="Siège Plateau")
    body = request.wire()
    # what our totals use is exactly what the JSON carries (a 20-digit percentage would not survive)
    assert request.discount == Decimal("33.33333333")
    assert Decimal(repr(body["discount"])) == request.discount
    # stored as text in the certification: never an exponent such as "1E+1"
    assert str(request.items[0].discount) == "10"
    assert list(convert.totals_of_request(request).other_by_tax) == ["GRA 10%"]


def test_numbers_json_cannot_carry_are_refused(driver: FneDriver, settings: FneSettings) -> None:
    long = "1.00000000000000001"  # 18 significant digits: a double would send 1.0
    data = invoice_data(
        buyer={"kind": "foreign", "name": "ACME GmbH", "phone": "+49301234", "email": "a@acme.de"},
        foreign_currency="EUR",
        exchange_rate="655.95700000000000001",
        authority_options={"ci-fne": {"custom_taxes": [{"name": "DTD", "rate": long}]}},
    )
    data["lines"][0]["extra_taxes"] = [{"name": "GRA", "rate": long}]
    found = {(p.field, p.rule) for p in driver.validate(parse_invoice(data), settings)}
    assert found == {
        ("exchange_rate", "precision"),
        ("lines[0].extra_taxes[0].rate", "precision"),
        ("authority_options.ci-fne.custom_taxes[0].rate", "precision"),
    }
