"""Every validation rule, answered precisely by the local validator (neutral field + rule) AND by the
simulator (the platform's 400 body, per-field), and the client mapping that 400 back to the
neutral field when an invalid body is sent anyway."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fiscalgate.authorities.base import Connection, Environment
from fiscalgate.authorities.ci_fne.client import FneClient
from fiscalgate.authorities.ci_fne.driver import FneDriver, FneSettings
from fiscalgate.core.errors import InvoiceError, InvoiceRejected
from fiscalgate.core.invoice import parse_invoice

from .conftest import invoice_data

pytestmark = pytest.mark.anyio

Mutate = Callable[[dict[str, Any]], None]


@dataclass
class Case:
    id: str
    neutral: Mutate | None  # change to a valid neutral invoice
    local: tuple[str, str] | None  # (field, rule) the local validator reports
    wire: Mutate | None  # change to a valid wire payload
    remote: tuple[str, str, str] | None  # (wire field, rule, neutral field) the simulator reports


def _set(path: str, value: Any) -> Mutate:
    def mutate(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = d
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target.setdefault(p, {})
        if value is _DELETE:
            target.pop(last, None)
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _both(*mutations: Mutate) -> Mutate:
    def mutate(d: dict[str, Any]) -> None:
        for m in mutations:
            m(d)

    return mutate


_DELETE = object()

CASES = [
    Case(
        "b2b-without-client-ncc",
        _set("buyer.tax_id", _DELETE),
        ("buyer.tax_id", "required_for_b2b"),
        _set("clientNcc", _DELETE),
        ("clientNcc", "required", "buyer.tax_id"),
    ),
    Case(
        "b2f-without-currency",
        _set("buyer.kind", "foreign"),
        ("foreign_currency", "required_for_b2f"),
        _both(_set("template", "B2F"), _set("foreignCurrency", "")),
        ("foreignCurrency", "required", "foreign_currency"),
    ),
    Case(
        "b2f-without-rate",
        None,  # the neutral model pairs currency and rate: see test_b2f_rate_is_required_by_the_model
        None,
        _both(_set("template", "B2F"), _set("foreignCurrency", "EUR"), _set("foreignCurrencyRate", 0)),
        ("foreignCurrencyRate", "required", "exchange_rate"),
    ),
    Case(
        "unknown-foreign-currency",
        _both(_set("buyer.kind", "foreign"), _set("foreign_currency", "XAF"), _set("exchange_rate", "1")),
        ("foreign_currency", "enum"),
        _both(_set("template", "B2F"), _set("foreignCurrency", "XAF"), _set("foreignCurrencyRate", 1)),
        ("foreignCurrency", "invalid", "foreign_currency"),
    ),
    Case(
        "line-with-unknown-vat-code",
        _set("lines.0.tax_code", "TVAE"),
        ("lines[0].tax_code", "enum"),
        _set("items.0.taxes", ["TVAE"]),
        ("items.0.taxes", "invalid", "lines[0].tax_code"),
    ),
    Case(
        "line-with-no-vat-code",
        None,  # a neutral line always gets a code from its category
        None,
        _set("items.1.taxes", []),
        ("items.1.taxes", "invalid", "lines[1].tax_code"),
    ),
    Case(
        "line-with-two-vat-codes",
        None,
        None,
        _set("items.0.taxes", ["TVA", "TVAB"]),
        ("items.0.taxes", "invalid", "lines[0].tax_code"),
    ),
    Case(
        "rne-without-number",
        _set("authority_options", {"ci-fne": {"is_rne": True}}),
        ("authority_options.ci-fne.rne", "required_if_rne"),
        _set("isRne", True),
        ("rne", "required", "authority_options.ci-fne.rne"),
    ),
    Case(
        "line-custom-tax-without-rate",
        _set("lines.0.extra_taxes", [{"name": "AIRSI", "amount": "500"}]),
        ("lines[0].extra_taxes[0].rate", "rate_required"),
        _set("items.0.customTaxes", [{"name": "GRA"}]),
        ("items.0.customTaxes.0.amount", "required", "lines[0].extra_taxes[0].rate"),
    ),
    Case(
        "invoice-custom-tax-without-name",
        _set("authority_options", {"ci-fne": {"custom_taxes": [{"rate": "5"}]}}),
        ("authority_options.ci-fne.custom_taxes[0].name", "required"),
        _set("customTaxes", [{"amount": 5}]),
        ("customTaxes.0.name", "required", "authority_options.ci-fne.custom_taxes[0].name"),
    ),
    Case(
        "invoice-custom-tax-without-rate",
        _set("authority_options", {"ci-fne": {"custom_taxes": [{"name": "DTD"}]}}),
        ("authority_options.ci-fne.custom_taxes[0].rate", "required"),
        _set("customTaxes", [{"name": "DTD"}]),
        ("customTaxes.0.amount", "required", "authority_options.ci-fne.custom_taxes[0].rate"),
    ),
    Case(
        "unknown-template",
        _set("authority_options", {"ci-fne": {"template": "B2X"}}),
        ("authority_options.ci-fne.template", "enum"),
        _set("template", "B2X"),
        ("template", "invalid", "authority_options.ci-fne.template"),
    ),
    Case(
        "unknown-payment-method",
        _set("authority_options", {"ci-fne": {"payment_method": "bank-transfer"}}),
        ("authority_options.ci-fne.payment_method", "enum"),
        _set("paymentMethod", "bank-transfer"),
        ("paymentMethod", "invalid", "payments"),
    ),
    Case(
        "missing-client-phone",
        _set("buyer.phone", _DELETE),
        ("buyer.phone", "required"),
        _set("clientPhone", _DELETE),
        ("clientPhone", "required", "buyer.phone"),
    ),
    Case(
        "phone-as-number",
        None,  # we always send a string
        None,
        _set("clientPhone", 709080765),
        ("clientPhone", "invalid", "buyer.phone"),
    ),
    Case(
        "missing-client-email",
        _set("buyer.email", _DELETE),
        ("buyer.email", "required"),
        _set("clientEmail", ""),
        ("clientEmail", "isNotEmpty", "buyer.email"),
    ),
    Case(
        "unknown-point-of-sale",
        None,  # only the platform knows the space's points of sale
        None,
        _set("pointOfSale", "Caisse 9"),
        ("pointOfSale", "invalid", "point_of_sale"),
    ),
    Case(
        "unknown-establishment",
        None,
        None,
        _set("establishment", "Agence Bouaké"),
        ("establishment", "invalid", "establishment"),
    ),
    Case(
        "discount-over-100",
        None,  # the neutral model refuses it (Discount validator)
        None,
        _set("items.0.discount", 120),
        ("items.0.discount", "invalid", "lines[0].discount"),
    ),
    Case(
        "zero-quantity",
        None,
        None,
        _set("items.0.quantity", 0),
        ("items.0.quantity", "invalid", "lines[0].quantity"),
    ),
    Case(
        "currency-not-xof",
        _set("currency", "EUR"),
        ("currency", "currency"),
        None,
        None,
    ),
    Case(
        "no-payment-method",
        _set("payments", []),
        ("payments", "required"),
        _set("paymentMethod", _DELETE),
        ("paymentMethod", "required", "payments"),
    ),
    Case(
        "purchase-line-with-extra-tax",
        _set("kind", "purchase"),
        ("lines[0].extra_taxes[0]", "not_on_purchase"),
        _both(_set("invoiceType", "purchase"), _set("clientNcc", _DELETE)),
        ("items.0.customTaxes", "invalid", "lines[0].extra_taxes"),
    ),
    Case(
        "purchase-line-with-vat",
        None,
        None,
        _both(_set("invoiceType", "purchase"), _set("items.0.customTaxes", _DELETE)),
        ("items.0.taxes", "invalid", "lines[0].tax_code"),
    ),
]
LOCAL = [c for c in CASES if c.neutral is not None]
REMOTE = [c for c in CASES if c.wire is not None]


def _valid_payload(driver: FneDriver, settings: FneSettings) -> dict[str, Any]:
    return driver.build_payload(parse_invoice(invoice_data()), settings)


def test_the_base_invoice_is_valid(driver: FneDriver, settings: FneSettings) -> None:
    assert driver.validate(parse_invoice(invoice_data()), settings) == []


@pytest.mark.parametrize("case", LOCAL, ids=[c.id for c in LOCAL])
def test_local_validator(case: Case, driver: FneDriver, settings: FneSettings) -> None:
    data = invoice_data()
    assert case.neutral is not None and case.local is not None
    case.neutral(data)
    problems = driver.validate(parse_invoice(data), settings)
    assert case.local in {(p.field, p.rule) for p in problems}, problems
    assert all(p.message for p in problems)


@pytest.mark.parametrize("case", REMOTE, ids=[c.id for c in REMOTE])
async def test_simulator_answers_400_with_field_details(
    case: Case, driver: FneDriver, settings: FneSettings
) -> None:
    payload = copy.deepcopy(_valid_payload(driver, settings))
    assert case.wire is not None and case.remote is not None
    case.wire(payload)
    app = driver.mock_app(settings)
    key = settings.api_key.get_secret_value()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fne.test") as http:
        response = await http.post(
            "/ws/external/invoices/sign", json=payload, headers={"Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_request" and body["statusCode"] == 400
    wire_field, rule, _ = case.remote
    assert rule in body["errors"].get(wire_field, {}), body["errors"]
    assert body["message"]


@pytest.mark.parametrize("case", REMOTE, ids=[c.id for c in REMOTE])
async def test_client_maps_the_400_to_neutral_fields(
    case: Case, driver: FneDriver, settings: FneSettings
) -> None:
    payload = copy.deepcopy(_valid_payload(driver, settings))
    assert case.wire is not None and case.remote is not None
    case.wire(payload)
    app = driver.mock_app(settings)
    connection = Connection("http://fne.test/ws", Environment.MOCK, httpx.ASGITransport(app=app))
    with pytest.raises(InvoiceRejected) as caught:
        await FneClient(connection, settings.api_key.get_secret_value()).sign_payload(payload)
    error = caught.value
    assert error.http_status == 400 and error.authority_code == "bad_request"
    assert (case.remote[2], case.remote[1]) in {(p.field, p.rule) for p in error.problems}
    assert error.authority_message


def test_b2f_rate_is_required_by_the_model() -> None:
    with pytest.raises(InvoiceError, match="go together"):
        parse_invoice(invoice_data(buyer={"kind": "foreign", "name": "X"}, foreign_currency="EUR"))


def test_every_problem_is_reported_at_once(driver: FneDriver, settings: FneSettings) -> None:
    data = invoice_data(payments=[], currency="EUR")
    data["buyer"].pop("tax_id")
    data["lines"][0]["tax_code"] = "TVAE"
    fields = {p.field for p in driver.validate(parse_invoice(data), settings)}
    assert {"payments", "currency", "buyer.tax_id", "lines[0].tax_code"} <= fields


async def test_empty_body_gets_every_required_field(driver: FneDriver, settings: FneSettings) -> None:
    app = driver.mock_app(settings)
    key = settings.api_key.get_secret_value()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fne.test") as http:
        response = await http.post("/ws/external/invoices/sign", headers={"Authorization": f"Bearer {key}"})
        not_json = await http.post(
            "/ws/external/invoices/sign", content=b"{oops", headers={"Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 400
    errors = response.json()["errors"]
    for name in (
        "invoiceType",
        "paymentMethod",
        "template",
        "clientCompanyName",
        "clientPhone",
        "clientEmail",
        "pointOfSale",
        "establishment",
        "items",
    ):
        assert errors[name] == {"required": f"{name} is required"}
    assert not_json.status_code == 400 and not_json.json()["error"] == "bad_request"


def test_an_invoice_of_another_seller_is_refused(driver: FneDriver, settings: FneSettings) -> None:
    # The key decides under which NCC FNE numbers the invoice: another company's invoice must not go.
    data = invoice_data(seller={"name": "Autre société", "tax_id": "1304777N"})
    found = [(p.field, p.rule, p.expected) for p in driver.validate(parse_invoice(data), settings)]
    assert found == [("seller.tax_id", "seller_mismatch", settings.ncc)]
    credit = invoice_data(kind="credit_note", original={"number": "F-1"}, seller=data["seller"])
    assert ("seller.tax_id", "seller_mismatch") in {
        (p.field, p.rule) for p in driver.validate(parse_invoice(credit), settings)
    }
    # same NCC written in lower case, or no seller NCC at all: nothing to say
    for seller in ({"name": "ACME", "tax_id": settings.ncc.lower()}, {"name": "ACME"}):
        assert driver.validate(parse_invoice(invoice_data(seller=seller)), settings) == []


STORED_ITEM: dict[str, Any] = {
    "id": "a",
    "position": 1,
    "quantity": "3",
    "amount": "1000",
    "discount": "0",
    "vat_code": "TVA",
    "custom_taxes": [],
}


async def test_credit_note_for_another_seller_is_refused_before_sending(
    driver: FneDriver, settings: FneSettings
) -> None:
    from datetime import UTC, datetime

    from fiscalgate.core.certification import Certification

    original = Certification(
        authority="ci-fne",
        environment="mock",
        reference="9606123E26000000001",
        certified_at=datetime.now(UTC),
        authority_data={"invoice_id": "i", "items": [STORED_ITEM]},
    )
    note = parse_invoice(
        invoice_data(
            kind="credit_note",
            original={"number": "F-1"},
            seller={"name": "Autre", "tax_id": "1304777N"},
            lines=[{"description": "x", "quantity": "1", "unit_price": "1", "original_line": 1}],
        )
    )
    nowhere = Connection("http://127.0.0.1:9/ws", Environment.MOCK, timeout=1)
    with pytest.raises(InvoiceError) as caught:
        await driver.credit_note(note, original, settings, nowhere)
    assert [(p.field, p.rule) for p in caught.value.problems] == [("seller.tax_id", "seller_mismatch")]


@pytest.mark.parametrize(
    "authority_data",
    [
        {"invoice_id": "i", "items": [{k: v for k, v in STORED_ITEM.items() if k != "amount"}]},
        {"invoice_id": "i", "items": [{**STORED_ITEM, "discount": "beaucoup"}]},
        {"invoice_id": "i", "items": [STORED_ITEM], "discount": "x"},
        {"invoice_id": "i", "items": [STORED_ITEM], "custom_taxes": [{"name": "DTD"}]},
        {"invoice_id": "", "items": [STORED_ITEM]},
        {"invoice_id": "i", "items": "a"},
    ],
    ids=[
        "item-without-amount",
        "bad-discount",
        "bad-invoice-discount",
        "tax-without-rate",
        "no-id",
        "items-text",
    ],
)
async def test_an_altered_original_certification_is_a_problem_not_a_crash(
    driver: FneDriver, settings: FneSettings, authority_data: dict[str, Any]
) -> None:
    from datetime import UTC, datetime

    from fiscalgate.core.certification import Certification

    # e.g. a --original JSON edited by hand: refuse it before any network instead of a KeyError
    original = Certification(
        authority="ci-fne",
        environment="mock",
        reference="9606123E26000000001",
        certified_at=datetime.now(UTC),
        authority_data=authority_data,
    )
    note = parse_invoice(
        invoice_data(
            kind="credit_note",
            original={"number": "F-1"},
            lines=[{"description": "x", "quantity": "1", "unit_price": "1", "original_line": 1}],
        )
    )
    nowhere = Connection("http://127.0.0.1:9/ws", Environment.MOCK, timeout=1)
    with pytest.raises(InvoiceError) as caught:
        await driver.credit_note(note, original, settings, nowhere)
    assert [(p.field, p.rule) for p in caught.value.problems] == [("original", "refundable")]
