"""Neutral invoice -> SFEC payload, local validation, and answers -> Certification."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from fiscalgate.authorities.cg_sfec import convert, printing
from fiscalgate.authorities.cg_sfec.driver import SfecDriver
from fiscalgate.authorities.cg_sfec.schemas import (
    CertificationResponse,
    InvoicePage,
    InvoiceRecord,
    ReportRequest,
)
from fiscalgate.authorities.cg_sfec.settings import SfecSettings
from fiscalgate.core.invoice import parse_invoice

from .conftest import example

D = Decimal


def invoice(**changes: Any) -> Any:
    return parse_invoice({**example("invoice.json"), **changes})


def fields(problems: list[Any]) -> set[str]:
    return {p.field for p in problems}


def test_the_example_payload(driver: SfecDriver, settings: SfecSettings) -> None:
    payload = driver.build_payload(invoice(), settings)
    assert payload["taxpayer_niu"] == "M2400000000001A"
    assert payload["invoice_id"] == "FAC-2026-0042"
    assert (payload["invoice_type"], payload["invoice_status"], payload["reference_invoice_id"]) == (
        "salesInvoice",
        "pending",
        None,
    )
    assert (payload["recipient_type"], payload["is_recipient_taxable"]) == ("business", True)
    assert payload["payment_method"] == "bank_transfer"
    assert payload["invoice_due_date"] == "2026-04-01T00:00:00Z"
    assert [i["tax_rate"] for i in payload["items"]] == ["18", "5", "0", "18"]
    assert [i["type"] for i in payload["items"]] == ["product", "product", "product", "service"]
    assert (
        payload["items"][1]["discount_type"] == "percentage" and payload["items"][1]["discount_amount"] == 5
    )
    assert (payload["total_amount"], payload["discount_amount"], payload["electronic_stamp_duty"]) == (
        1189469,
        0,
        0,
    )
    assert all(isinstance(v, int) for v in (payload["subtotal"], payload["amount_due"]))  # JSON numbers
    assert driver.validate(invoice(), settings) == []


def test_walk_in_customer_and_overrides(driver: SfecDriver, settings: SfecSettings) -> None:
    inv = invoice(
        buyer={"kind": "individual"},
        point_of_sale="CAISSE-3",
        payments=[{"method": "cash", "amount": "1189469", "date": "2026-03-02T10:00:00+01:00"}],
        authority_options={"cg-sfec": {"invoice_id": "ERP-77", "payment_method": "4", "sciet": "25-B-1"}},
    )
    payload = driver.build_payload(inv, settings)
    assert payload["recipient_name"] == "Client particulier"
    assert payload["is_recipient_taxable"] is False
    assert (payload["invoice_id"], payload["terminal_identifier"], payload["sciet"]) == (
        "ERP-77",
        "CAISSE-3",
        "25-B-1",
    )
    assert payload["payment_method"] == "mobile_money"  # the seed's numeric 4
    assert payload["payment_date"] == "2026-03-02T09:00:00Z"
    assert payload["amount_due"] == 0
    assert driver.validate(inv, settings) == []


def test_invoice_discount_is_pushed_down_and_vat_follows(driver: SfecDriver, settings: SfecSettings) -> None:
    inv = invoice(discount={"kind": "amount", "value": "31470"})
    payload = driver.build_payload(inv, settings)
    assert payload["discount_amount"] == 0
    assert payload["subtotal"] == 1000000
    assert all(i["discount_type"] == "fixed" for i in payload["items"])
    assert payload["total_line_discount_amount"] == 27500 + 31470
    assert driver.validate(inv, settings) == []


def test_prices_including_tax_become_ht(driver: SfecDriver, settings: SfecSettings) -> None:
    inv = invoice(
        lines=[{"description": "x", "quantity": "1", "unit_price": "11800", "price_includes_tax": True}]
    )
    item = driver.build_payload(inv, settings)["items"][0]
    assert (item["unit_price"], item["tax_amount"], item["total_amount"]) == (10000, 1800, 11800)


def test_seller_without_vat_sends_every_line_exempt(driver: SfecDriver, settings: SfecSettings) -> None:
    inv = invoice(seller={"name": "Petit commerce", "regime": "tps"})
    payload = driver.build_payload(inv, settings)
    assert {i["tax_rate"] for i in payload["items"]} == {"0"}
    assert payload["total_tax_amount"] == 0


def test_every_local_problem_is_listed_under_neutral_fields(
    driver: SfecDriver, settings: SfecSettings
) -> None:
    inv = invoice(
        kind="purchase",
        currency="EUR",
        seller={"name": "S", "tax_id": "M2500000000009B"},
        payments=[{"method": "deferred"}],
        lines=[
            {"description": "a", "quantity": "1", "unit_price": "10", "tax_code": "TVA"},
            {
                "description": "b",
                "quantity": "1",
                "unit_price": "10",
                "extra_taxes": [{"name": "x", "rate": "1"}],
            },
        ],
    )
    problems = driver.validate(inv, settings)
    assert fields(problems) == {
        "kind",
        "currency",
        "seller.tax_id",
        "lines[0].tax_code",
        "lines[1].extra_taxes",
        "payments[0].method",
    }
    assert next(p for p in problems if p.field == "seller.tax_id").expected == "M2400000000001A"


@pytest.mark.parametrize(
    ("buyer", "missing"),
    [
        ({"kind": "business", "name": "B"}, {"buyer.tax_id"}),
        (
            {"kind": "government", "name": "Ministère"},
            {"buyer.tax_id", "buyer.phone", "buyer.email", "buyer.address"},
        ),
        ({"kind": "foreign", "name": "Acme Ltd", "email": "a@acme.com"}, {"buyer.phone", "buyer.address"}),
        ({"kind": "business", "tax_id": "P000001212112130"}, {"buyer.name"}),
        # (an e-mail that is not one is refused by parse_invoice itself: tests/core)
        ({"kind": "individual", "phone": "abc"}, {"buyer.phone"}),
        ({"kind": "business", "name": "B", "tax_id": "NIU-WITH-DASHES"}, {"buyer.tax_id"}),
        # the placeholder name is for walk-in individuals only (seed: recipient_name required)
        (
            {"kind": "foreign", "email": "a@acme.com", "phone": "+33 1 23 45 67 89", "address": "Paris"},
            {"buyer.name"},
        ),
        ({"kind": "individual"}, set()),
    ],
)
def test_recipient_rules_by_type(
    driver: SfecDriver, settings: SfecSettings, buyer: dict[str, str], missing: set[str]
) -> None:
    assert fields(driver.validate(invoice(buyer=buyer), settings)) == missing


def test_payload_problems_on_a_payload_built_elsewhere(driver: SfecDriver, settings: SfecSettings) -> None:
    payload = driver.build_payload(invoice(), settings)
    payload.update(invoice_type="creditNote", currency="EUR", payment_method="paypal")
    payload["items"][0]["tax_amount"] = 1
    problems = convert.payload_problems(payload)
    assert {"reference_invoice_id", "currency", "payment_method", "items[0].tax_amount"} <= fields(problems)
    assert (
        convert.payload_problems({**driver.build_payload(invoice(), settings), "recipient_type": "1"}) == []
    )


def test_both_response_spellings_are_parsed() -> None:
    seed = CertificationResponse.model_validate(
        {
            "sfec_certification_number": "SFEC-API-2025-0000123456",
            "invoice_number": "INV-2025-12",
            "certification_date": "2025-01-15T10:30:00.000Z",
            "sfec_identifier": "SFEC-API-001",
            "sfec_qr_code": "data:image/png;base64,iVBOR",
        }
    )
    sandbox = CertificationResponse.model_validate(
        {
            "certification_number": "N-1",
            "identifier": "id-1",
            "signature": "a" * 64,
            "short_signature": "AAAA",
            "qr_code": "data:image/png;base64,xyz",
            "certification_date": "2026-01-01T00:00:00",
        }
    )
    assert (seed.certification_number, seed.identifier, seed.qr_code) == (
        "SFEC-API-2025-0000123456",
        "SFEC-API-001",
        "data:image/png;base64,iVBOR",
    )
    assert (sandbox.certification_number, sandbox.signature, sandbox.short_signature) == (
        "N-1",
        "a" * 64,
        "AAAA",
    )
    cert = convert.to_certification(
        sandbox,
        {"invoice_id": "I", "total_amount": 10},
        environment="mock",
        raw={},
        kind=parse_invoice(example("invoice.json")).kind,
    )
    assert cert.certified_at.tzinfo is not None  # a date without zone is read as UTC
    assert cert.totals["total"] == D(10) and cert.authority_data["identifier"] == "id-1"


def test_list_page_under_either_spelling() -> None:
    page = InvoicePage.model_validate(
        {"invoices": [], "page": 2, "pageSize": 20, "totalPages": 3, "total_count": 41}
    )
    assert (page.page, page.page_size, page.total_pages, page.total) == (2, 20, 3, 41)


def test_record_matching(driver: SfecDriver, settings: SfecSettings) -> None:
    payload = driver.build_payload(invoice(), settings)
    same = InvoiceRecord.model_validate({**payload, "certification_number": "N", "recipient_type": "1"})
    assert convert.record_mismatches(same, payload) == []
    other = InvoiceRecord.model_validate({**payload, "certification_number": "N", "total_amount": 5})
    assert convert.record_mismatches(other, payload) == ["total_amount: certified 5, this invoice 1189469"]
    bare = InvoiceRecord.model_validate({"certification_number": "N"})
    assert "cannot be verified" in convert.record_mismatches(bare, payload)[0]


def test_printed_mentions_for_a_credit_note(driver: SfecDriver, settings: SfecSettings) -> None:
    answer = CertificationResponse.model_validate(
        {"certification_number": "N-2", "short_signature": "ABCD", "qr_code": "data:image/png;base64,x"}
    )
    payload = {
        "invoice_id": "AV-1",
        "invoice_type": "creditNote",
        "reference_invoice_id": "FAC-1",
        "total_amount": 5,
    }
    cert = convert.to_certification(
        answer, payload, environment="mock", raw={}, kind=parse_invoice(example("credit_note.json")).kind
    )
    printed = printing.mentions(cert)
    assert (printed.title, printed.original_reference, printed.short_signature) == (
        "FACTURE D'AVOIR",
        "FAC-1",
        "ABCD",
    )
    assert ("Total TTC", D(5)) in printed.totals
    assert printed.qr_image.startswith("data:image/png")


def test_an_unnamed_recipient_is_reported_with_its_rule(driver: SfecDriver, settings: SfecSettings) -> None:
    buyer = {"kind": "foreign", "email": "a@acme.com", "phone": "+33 1 23 45 67 89", "address": "Paris"}
    [problem] = driver.validate(invoice(buyer=buyer), settings)
    assert (problem.field, problem.rule) == ("buyer.name", "recipient_required")
    assert driver.build_payload(invoice(buyer=buyer), settings)["recipient_name"] is None


def test_fixed_discounts_are_whole_francs_in_xaf(driver: SfecDriver, settings: SfecSettings) -> None:
    line = {
        "description": "a",
        "quantity": "1",
        "unit_price": "1000",
        "discount": {"kind": "amount", "value": "100.5"},
    }
    item = driver.build_payload(invoice(lines=[line]), settings)["items"][0]
    assert (item["discount_amount"], item["net_amount"], item["tax_amount"], item["total_amount"]) == (
        101,
        899,
        162,
        1061,
    )
    pushed = driver.build_payload(
        invoice(lines=[line], discount={"kind": "amount", "value": "10.4"}), settings
    )
    assert pushed["items"][0]["discount_amount"] == 111 and pushed["subtotal"] == 889


def test_an_invoice_discount_above_the_subtotal_is_refused(
    driver: SfecDriver, settings: SfecSettings
) -> None:
    problems = driver.validate(invoice(discount={"kind": "amount", "value": "1031471"}), settings)
    assert [(p.field, p.expected) for p in problems] == [("discount.value", "<= 1031470")]
    assert driver.validate(invoice(discount={"kind": "amount", "value": "1031470"}), settings) == []


def test_a_report_without_a_signature_is_refused_before_sending(
    driver: SfecDriver, settings: SfecSettings
) -> None:
    answer = CertificationResponse.model_validate({"sfec_certification_number": "N-1", "sfec_qr_code": "x"})
    sale = invoice()
    payload = driver.build_payload(sale, settings)
    cert = convert.to_certification(answer, payload, environment="mock", raw={}, kind=sale.kind)
    report = convert.report_payload(sale, settings, cert)
    assert report["certification_signature"] is None  # never the certification number in its place
    problems = convert.payload_problems(report, model=ReportRequest)
    assert [p.field for p in problems] == ["certification_signature"]


def test_optional_fields_some_clients_send_are_accepted_and_checked(
    driver: SfecDriver, settings: SfecSettings
) -> None:
    payload = driver.build_payload(invoice(), settings)
    assert "invoice_number" not in payload and "amount_after_discount" not in payload["items"][0]
    payload["invoice_number"] = "FAC-2026-0042"
    for item in payload["items"]:
        item["amount_after_discount"] = item["net_amount"]
    assert convert.payload_problems(payload) == []
    payload["items"][0]["amount_after_discount"] = 700000
    payload["items"][0]["colour"] = "red"
    problems = {p.field: p.expected for p in convert.payload_problems(payload)}
    assert problems == {"items[0].amount_after_discount": "685000", "items[0].colour": None}
