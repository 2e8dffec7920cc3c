"""Contract scenarios: the driver (client side) against the simulator, each run in-process and over a
real socket (the `sim` fixture), so a third-party-like HTTP path is exercised too."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from fiscalgate.authorities.base import Connection, Environment
from fiscalgate.authorities.ci_fne import regime
from fiscalgate.authorities.ci_fne.driver import FneDriver, FneSettings
from fiscalgate.authorities.ci_fne.simulator.state import Taxpayer
from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import (
    AuthorityAuthError,
    AuthorityUnreachable,
    ConfigurationError,
    InvoiceError,
    InvoiceRejected,
    OutcomeUnknown,
    RateLimited,
)
from fiscalgate.core.invoice import Invoice, parse_invoice

from .conftest import Sim, invoice_data

pytestmark = pytest.mark.anyio

YY = f"{datetime.now(UTC).year % 100:02d}"


async def sim_get(sim: Sim, path: str) -> httpx.Response:
    root = sim.connection.base_url.removesuffix("/ws")
    async with httpx.AsyncClient(transport=sim.connection.transport, base_url=root) as http:
        return await http.get(path)


def credit(*lines: dict[str, Any], reference: str | None = None) -> Invoice:
    data = invoice_data(
        number="AV-1",
        kind="credit_note",
        original={"reference": reference} if reference else {"number": "F-1"},
        lines=list(lines),
        payments=[],
    )
    return parse_invoice(data)


def refund_line(quantity: str, **extra: Any) -> dict[str, Any]:
    return {"description": "sac de riz", "quantity": quantity, "unit_price": "20000", **extra}


async def test_b2b_invoice_then_partial_credit_notes(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    invoice = parse_invoice(invoice_data(discount={"value": "10"}))
    cert = await driver.certify(invoice, settings, sim.connection)

    assert cert.reference == f"9606123E{YY}000000001"
    assert regime.parse_reference(cert.reference) == regime.ParsedReference("sale", "9606123E", int(YY), 1)
    root = sim.connection.base_url.removesuffix("/ws")
    assert re.fullmatch(re.escape(root) + r"/fr/verification/[0-9a-f-]{36}", cert.qr_content)
    assert cert.verification_url == cert.qr_content
    assert cert.sticker_balance == 999 and cert.notices == []
    page = await sim_get(sim, cert.qr_content.removeprefix(root))
    assert page.status_code == 200 and cert.reference in page.text and "KPMG" in page.text

    # item ids come back in request order and are kept for the refund
    stored = (await sim_get(sim, f"/_sim/documents/{cert.reference}")).json()
    assert cert.authority_data["item_ids"] == [it["id"] for it in stored["items"]]
    assert [it["description"] for it in stored["items"]] == ["sac de riz", "bidon d'huile"]
    assert cert.authority_data["invoice_id"] == stored["id"]
    # client-side totals == simulator totals, including the custom taxes the API does not return
    t = stored["totals"]
    assert (cert.totals["total_excl_tax"], cert.totals["vat"], cert.totals["total_incl_vat"]) == (
        t["ht"],
        t["vat"],
        t["ttc"],
    )
    assert (cert.totals["other_taxes"], cert.totals["total_to_pay"]) == (t["other_taxes"], t["to_pay"])
    assert cert.totals["total"] == cert.totals["total_to_pay"]

    # partial credit note: 5 of the 30 bags, matched by position
    note = await driver.credit_note(credit(refund_line("5", original_line=1)), cert, settings, sim.connection)
    assert note.reference == f"A9606123E{YY}00000001"
    assert note.kind.value == "credit_note" and note.sticker_balance == 998
    assert note.authority_data["original_invoice_id"] == cert.authority_data["invoice_id"]
    assert note.authority_data["refunded_items"] == [
        {"id": cert.authority_data["item_ids"][0], "quantity": "5"}
    ]
    assert "fne.refund_without_amounts" in {n.code for n in note.notices}
    refund_doc = (await sim_get(sim, f"/_sim/documents/{note.reference}")).json()
    assert refund_doc["parentReference"] == cert.reference
    rt = refund_doc["totals"]
    # 5 x 20 000 - 10 % - 10 % = 81 000 HT; VAT 14 580; GRA 5 % = 4 050
    assert (note.totals["total_excl_tax"], note.totals["vat"], note.totals["other_taxes"]) == (
        Decimal(81000),
        Decimal(14580),
        Decimal(4050),
    )
    assert (rt["ht"], rt["vat"], rt["other_taxes"], rt["to_pay"]) == (
        note.totals["total_excl_tax"],
        note.totals["vat"],
        note.totals["other_taxes"],
        note.totals["total_to_pay"],
    )

    # a second partial refund by reference: 25 refunded out of 30, still fine; separate series
    second = await driver.credit_note(
        credit(refund_line("20", reference="ref009")), cert, settings, sim.connection
    )
    assert second.reference == f"A9606123E{YY}00000002"

    # the sale series is untouched by credit notes
    again = await driver.certify(parse_invoice(invoice_data(number="F-2")), settings, sim.connection)
    assert again.reference == f"9606123E{YY}000000002"

    # cumulative refunds beyond what was sold are refused by the platform, nothing is numbered
    with pytest.raises(InvoiceRejected) as caught:
        await driver.credit_note(credit(refund_line("6", original_line=1)), cert, settings, sim.connection)
    assert caught.value.http_status == 400
    assert [(p.field, p.rule) for p in caught.value.problems] == [("lines[0].quantity", "invalid")]
    assert "exceeds" in caught.value.problems[0].message
    third = await driver.credit_note(
        credit(refund_line("5", original_line=1)), cert, settings, sim.connection
    )
    assert third.reference == f"A9606123E{YY}00000003"


async def test_credit_note_problems_are_local(sim: Sim, driver: FneDriver, settings: FneSettings) -> None:
    cert = await driver.certify(parse_invoice(invoice_data()), settings, sim.connection)
    cases = [
        (credit(refund_line("31", original_line=1)), ("lines[0].quantity", "exceeds_original")),
        (credit(refund_line("1", original_line=7)), ("lines[0].original_line", "not_found")),
        (
            credit({"description": "inconnu", "quantity": "1", "unit_price": "1"}),
            ("lines[0].original_line", "not_found"),
        ),
        (credit(refund_line("1"), refund_line("1")), ("lines[1].original_line", "duplicate")),
        (credit(refund_line("1"), reference="9606123E26999999999"), ("original.reference", "mismatch")),
    ]
    for note, expected in cases:
        with pytest.raises(InvoiceError) as caught:
            await driver.credit_note(note, cert, settings, sim.connection)
        assert expected in {(p.field, p.rule) for p in caught.value.problems}
    # two original lines with the same description: ambiguous without original_line
    twin = invoice_data(number="F-3")
    twin["lines"][1]["description"] = "sac de riz"
    twin["lines"][0].pop("reference")
    twin["lines"][1].pop("reference")
    cert2 = await driver.certify(parse_invoice(twin), settings, sim.connection)
    with pytest.raises(InvoiceError) as caught:
        await driver.credit_note(credit(refund_line("1")), cert2, settings, sim.connection)
    assert ("lines[0].original_line", "ambiguous") in {(p.field, p.rule) for p in caught.value.problems}
    ok = await driver.credit_note(credit(refund_line("1", original_line=2)), cert2, settings, sim.connection)
    assert ok.authority_data["refunded_items"][0]["id"] == cert2.authority_data["item_ids"][1]


async def test_refund_of_unknown_or_foreign_invoice_is_not_found(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    other = Taxpayer("1304777N", "K" * 32, ["Siège Plateau"], ["Caisse 1"])
    sim.app.platform.add_taxpayer(other)
    other_settings = driver.parse_settings(
        {**driver.mock_credentials(), "ncc": other.ncc, "api_key": other.api_key}
    )
    theirs_invoice = invoice_data(seller={"name": "Autre société", "tax_id": other.ncc})
    theirs = await driver.certify(parse_invoice(theirs_invoice), other_settings, sim.connection)
    assert theirs.reference.startswith(f"1304777N{YY}")
    # locally: the stored NCC already says it is not ours, nothing is sent
    with pytest.raises(InvoiceError) as refused:
        await driver.credit_note(credit(refund_line("1", original_line=1)), theirs, settings, sim.connection)
    assert ("original", "ncc") in {(p.field, p.rule) for p in refused.value.problems}
    # the platform too, for a stored certification without its NCC: 404 as for an unknown id
    anonymous = {k: v for k, v in theirs.authority_data.items() if k != "ncc"}
    for original in (
        theirs.model_copy(update={"authority_data": anonymous}),
        theirs.model_copy(update={"authority_data": {**anonymous, "invoice_id": "nope"}}),
    ):
        with pytest.raises(InvoiceRejected) as caught:
            await driver.credit_note(
                credit(refund_line("1", original_line=1)), original, settings, sim.connection
            )
        assert caught.value.http_status == 404
        assert caught.value.authority_message == "Invoice not found"


async def test_wrong_key_is_an_auth_error(sim: Sim, driver: FneDriver, settings: FneSettings) -> None:
    bad = driver.parse_settings({**driver.mock_credentials(), "api_key": "WrongKey000000000000000000000000"})
    with pytest.raises(AuthorityAuthError) as caught:
        await driver.certify(parse_invoice(invoice_data()), bad, sim.connection)
    error = caught.value
    assert (error.http_status, error.authority_code, error.authority_message) == (
        401,
        "unauthorized",
        "Invalid API Key",
    )
    assert error.raw == {
        "message": "Invalid API Key",
        "error": "unauthorized",
        "statusCode": 401,
        "errors": {},
    }
    assert "WrongKey" not in str(error.to_dict())
    assert sim.app.platform.documents == {}


async def test_rejection_maps_field_details(sim: Sim, driver: FneDriver, settings: FneSettings) -> None:
    invoice = parse_invoice(invoice_data(point_of_sale="Caisse 9", establishment="Agence Bouaké"))
    with pytest.raises(InvoiceRejected) as caught:
        await driver.certify(invoice, settings, sim.connection)
    error = caught.value
    assert {(p.field, p.rule) for p in error.problems} == {
        ("point_of_sale", "invalid"),
        ("establishment", "invalid"),
    }
    assert {p.message for p in error.problems} == {
        "Point of sale is not valid (pointOfSale)",
        "Establishment is invalid (establishment)",
    }
    assert error.resolution.value == "fix_input"
    one = parse_invoice(invoice_data(point_of_sale="Caisse 9"))
    with pytest.raises(InvoiceRejected) as caught:
        await driver.certify(one, settings, sim.connection)
    assert caught.value.authority_message == "Point of sale is not valid"


async def test_timeout_after_recording_is_unknown_and_a_resend_burns_a_number(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    sim.app.add("hang_after_processing", path="/invoices/sign", seconds=0.6)
    saved: list[dict[str, Any]] = []

    async def checkpoint(data: dict[str, Any]) -> None:
        saved.append(data)

    invoice = parse_invoice(invoice_data())
    with pytest.raises(OutcomeUnknown) as caught:
        await driver.certify(invoice, settings, sim.with_timeout(0.2), checkpoint=checkpoint)
    assert saved and saved[0]["invoice_number"] == "F-1" and saved[0]["operation"] == "sign"
    assert caught.value.checkpoint == saved[0]
    # the platform did certify it: one number and one sticker are gone
    platform = sim.app.platform
    assert [d.reference for d in platform.documents.values()] == [f"9606123E{YY}000000001"]
    assert next(iter(platform.taxpayers.values())).stickers == 999
    # reconciliation cannot look it up: a person must check the portal
    verdict = await driver.reconcile(invoice, settings, sim.connection, caught.value.checkpoint)
    assert verdict.status == "unknown" and "portal" in verdict.detail and "F-1" in verdict.detail
    # what a blind retry does: a second certification of the same invoice, a second number
    resent = await driver.certify(invoice, settings, sim.connection)
    assert resent.reference == f"9606123E{YY}000000002"
    assert len(platform.documents) == 2


async def test_sticker_exhaustion_is_unknown_and_leaves_a_draft(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    taxpayer = next(iter(sim.app.platform.taxpayers.values()))
    taxpayer.stickers = 1
    last = await driver.certify(parse_invoice(invoice_data()), settings, sim.connection)
    assert last.sticker_balance == 0
    assert [n.code for n in last.notices] == ["fne.low_sticker_stock"]
    with pytest.raises(OutcomeUnknown) as caught:
        await driver.certify(parse_invoice(invoice_data(number="F-2")), settings, sim.connection)
    error = caught.value
    assert (error.http_status, error.authority_code, error.authority_message) == (
        500,
        "invoice_signing_error",
        "Error signing invoice",
    )
    assert error.raw == {
        "message": "Error signing invoice",
        "error": "invoice_signing_error",
        "statusCode": 500,
        "errors": {},
        "extraParams": {},
    }
    assert "stickers" in error.message and error.resolution.value == "reconcile"
    assert len(sim.app.platform.drafts) == 1 and len(sim.app.platform.documents) == 1
    # refunds need a sticker too
    with pytest.raises(OutcomeUnknown):
        await driver.credit_note(credit(refund_line("1", original_line=1)), last, settings, sim.connection)
    # buying stickers (control endpoint) makes signing work again, the series continues
    root = sim.connection.base_url.removesuffix("/ws")
    async with httpx.AsyncClient(transport=sim.connection.transport, base_url=root) as http:
        assert (await http.post("/_sim/stickers", json={"balance": 100})).status_code == 200
    after = await driver.certify(parse_invoice(invoice_data(number="F-2")), settings, sim.connection)
    assert after.reference == f"9606123E{YY}000000002" and after.sticker_balance == 99


async def test_low_stock_warning_becomes_a_notice(sim: Sim, driver: FneDriver, settings: FneSettings) -> None:
    taxpayer = next(iter(sim.app.platform.taxpayers.values()))
    taxpayer.stickers = 51
    first = await driver.certify(parse_invoice(invoice_data()), settings, sim.connection)
    assert first.sticker_balance == 50 and first.raw["sign"]["warning"] is False and first.notices == []
    second = await driver.certify(parse_invoice(invoice_data(number="F-2")), settings, sim.connection)
    assert second.raw["sign"]["warning"] is True
    assert [n.code for n in second.notices] == ["fne.low_sticker_stock"] and "49" in second.notices[0].message
    # our own threshold also warns when the platform's (undocumented) one is lower
    taxpayer.warning_threshold = 5
    strict = driver.parse_settings({**driver.mock_credentials(), "sticker_warning_threshold": 100})
    third = await driver.certify(parse_invoice(invoice_data(number="F-3")), strict, sim.connection)
    assert third.raw["sign"]["warning"] is False and [n.code for n in third.notices] == [
        "fne.low_sticker_stock"
    ]


async def test_purchase_slip_and_b2f_invoice(sim: Sim, driver: FneDriver, settings: FneSettings) -> None:
    purchase = invoice_data(kind="purchase", buyer={**invoice_data()["buyer"], "name": "Coopérative Soubré"})
    for line in purchase["lines"]:
        line.pop("extra_taxes", None)
    slip = await driver.certify(parse_invoice(purchase), settings, sim.connection)
    assert slip.kind.value == "purchase" and slip.totals["vat"] == 0
    assert slip.reference == f"9606123E{YY}000000001"  # purchase slips share the invoice series
    b2f = invoice_data(
        number="F-2",
        buyer={"kind": "foreign", "name": "KPMG FRANCE", "phone": "+33140000000", "email": "fr@kpmg.fr"},
        foreign_currency="EUR",
        exchange_rate="655.957",
    )
    cert = await driver.certify(parse_invoice(b2f), settings, sim.connection)
    assert cert.reference == f"9606123E{YY}000000002"
    stored = cert.raw["sign"]["invoice"]
    assert (stored["template"], stored["foreignCurrency"], stored["foreignCurrencyRate"]) == (
        "B2F",
        "Euro",
        655.957,
    )
    assert stored["clientNcc"] is None


async def test_server_error_and_rate_limit_kinds(sim: Sim, driver: FneDriver, settings: FneSettings) -> None:
    sim.app.add(
        "error",
        path="/sign",
        status=500,
        body={"message": "Internal Server Error", "error": "internal_server_error", "statusCode": 500},
    )
    with pytest.raises(OutcomeUnknown) as unknown:
        await driver.certify(parse_invoice(invoice_data()), settings, sim.connection)
    assert unknown.value.authority_code == "internal_server_error"
    sim.app.add("error", path="/sign", status=429, body={"message": "Too Many Requests", "statusCode": 429})
    with pytest.raises(RateLimited):
        await driver.certify(parse_invoice(invoice_data()), settings, sim.connection)
    sim.app.add("error", path="/sign", status=502, body="<html>Bad gateway</html>")
    with pytest.raises(OutcomeUnknown):  # a POST sign is never assumed unprocessed
        await driver.certify(parse_invoice(invoice_data()), settings, sim.connection)


async def test_connect_failure_is_unreachable(driver: FneDriver, settings: FneSettings) -> None:
    connection = Connection("http://127.0.0.1:9/ws", Environment.MOCK, timeout=2)
    with pytest.raises(AuthorityUnreachable):
        await driver.certify(parse_invoice(invoice_data()), settings, connection)


async def test_funds_balance_and_unreadable_success(driver: FneDriver, settings: FneSettings) -> None:
    app = driver.mock_app(settings)
    connection = Connection(driver.base_url(settings), Environment.MOCK, httpx.ASGITransport(app=app))
    real = await driver.certify(parse_invoice(invoice_data()), settings, connection)
    body = dict(real.raw["sign"])
    body.pop("balance_sticker")
    body["balance_funds"] = 125000
    app.add("error", path="/sign", status=200, body=body)  # a provision-billed account's answer
    funded = await driver.certify(parse_invoice(invoice_data()), settings, connection)
    assert funded.sticker_balance == 125000
    assert funded.authority_data["balance_kind"] == "funds"
    # the platform's totals prevail over ours, with a notice when they differ; item order is checked
    odd = dict(real.raw["sign"])
    odd["invoice"] = {
        **odd["invoice"],
        "amount": odd["invoice"]["amount"] + 1,
        "items": odd["invoice"]["items"][::-1],
    }
    app.add("error", path="/sign", status=200, body=odd)
    differ = await driver.certify(parse_invoice(invoice_data()), settings, connection)
    assert differ.totals["total_incl_vat"] == real.totals["total_incl_vat"] + 1
    assert {"fne.totals_differ", "fne.items_mismatch"} <= {n.code for n in differ.notices}
    assert real.notices == []
    app.add("error", path="/sign", status=200, body={"ncc": "9606123E"})
    with pytest.raises(OutcomeUnknown, match="unreadable"):
        await driver.certify(parse_invoice(invoice_data()), settings, connection)


def test_certification_round_trips_through_json(driver: FneDriver) -> None:
    # The CLI stores a certification with --out and reads it back for --original.
    cert = Certification(
        authority="ci-fne",
        environment="mock",
        reference="9606123E26000000001",
        qr_content="http://x/fr/verification/1",
        certified_at=datetime.now(UTC),
        authority_data={"invoice_id": "i", "items": [{"id": "a", "position": 1, "quantity": "2"}]},
    )
    assert Certification.model_validate_json(cert.model_dump_json()) == cert


# --- review hardening: failure paths of the refund, the URL, masking, leniency ------------------------
async def test_refund_timeout_after_recording_is_unknown(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    cert = await driver.certify(parse_invoice(invoice_data()), settings, sim.connection)
    sim.app.add("hang_after_processing", path="/refund", seconds=0.6)
    saved: list[dict[str, Any]] = []

    async def checkpoint(data: dict[str, Any]) -> None:
        saved.append(data)

    note = credit(refund_line("5", original_line=1))
    with pytest.raises(OutcomeUnknown) as caught:
        await driver.credit_note(note, cert, settings, sim.with_timeout(0.2), checkpoint=checkpoint)
    assert saved and saved[0]["operation"] == "refund" and caught.value.checkpoint == saved[0]
    assert saved[0]["items"] == [{"id": cert.authority_data["item_ids"][0], "quantity": "5"}]
    # the platform did number the credit note and count the 5 bags as refunded
    stored = (await sim_get(sim, f"/_sim/documents/{cert.reference}")).json()
    assert stored["items"][0]["refunded"] == "5"
    assert (await sim_get(sim, f"/_sim/documents/A9606123E{YY}00000001")).status_code == 200
    verdict = await driver.reconcile(note, settings, sim.connection, caught.value.checkpoint)
    assert verdict.status == "unknown" and "credit note AV-1" in verdict.detail


async def test_drop_before_processing_is_unknown_too(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    # From the client's side a dropped request looks exactly like one processed then lost: it cannot
    # tell, so it must not resend (FNE has no idempotency).
    sim.app.add("drop_before_processing", path="/sign", seconds=0.6)
    with pytest.raises(OutcomeUnknown):
        await driver.certify(parse_invoice(invoice_data()), settings, sim.with_timeout(0.2))
    assert sim.app.platform.documents == {}
    # latency under the timeout is just a slow answer
    sim.app.add("latency", path="/sign", seconds=0.05)
    cert = await driver.certify(parse_invoice(invoice_data()), settings, sim.with_timeout(2))
    assert cert.reference == f"9606123E{YY}000000001"


async def test_refund_connect_failure_is_unreachable(driver: FneDriver, settings: FneSettings) -> None:
    original = Certification(
        authority="ci-fne",
        environment="mock",
        reference=f"9606123E{YY}000000001",
        qr_content="http://x/fr/verification/1",
        certified_at=datetime.now(UTC),
        authority_data={
            "invoice_id": "i",
            "items": [
                {
                    "id": "a",
                    "position": 1,
                    "quantity": "30",
                    "amount": "20000",
                    "discount": "0",
                    "vat_code": "TVA",
                    "custom_taxes": [],
                }
            ],
        },
    )
    connection = Connection("http://127.0.0.1:9/ws", Environment.MOCK, timeout=2)
    with pytest.raises(AuthorityUnreachable):
        await driver.credit_note(credit(refund_line("1", original_line=1)), original, settings, connection)


async def test_a_base_url_without_ws_is_a_configuration_error(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    root = sim.connection.base_url.removesuffix("/ws")
    wrong = Connection(root, Environment.MOCK, sim.connection.transport, 5.0)
    with pytest.raises(ConfigurationError) as caught:
        await driver.certify(parse_invoice(invoice_data()), settings, wrong)
    assert "/ws" in caught.value.message and "404" in caught.value.message
    assert sim.app.platform.documents == {}


async def test_a_key_echoed_in_an_error_body_is_masked(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    key = settings.api_key.get_secret_value()
    sim.app.add(
        "error",
        path="/sign",
        status=401,
        body={
            "message": f"Invalid API Key {key}",
            "error": "unauthorized",
            "headers": {"Authorization": key},
        },
    )
    with pytest.raises(AuthorityAuthError) as caught:
        await driver.certify(parse_invoice(invoice_data()), settings, sim.connection)
    dumped = str(caught.value.to_dict()) + caught.value.message
    assert key not in dumped
    assert caught.value.authority_message is not None
    assert caught.value.authority_message.startswith("Invalid API Key ")


async def test_a_credit_note_is_never_sent_to_sign(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    note = credit(refund_line("5", original_line=1))
    with pytest.raises(InvoiceError) as caught:
        await driver.certify(note, settings, sim.connection)
    assert [(p.field, p.rule) for p in caught.value.problems] == [("kind", "credit_note_needs_original")]
    with pytest.raises(InvoiceError):
        driver.build_payload(note, settings)
    assert sim.app.platform.documents == {}


async def test_blank_echoed_fields_do_not_make_a_certified_invoice_unknown(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    real = await driver.certify(parse_invoice(invoice_data()), settings, sim.connection)
    odd = dict(real.raw["sign"])
    odd["warning"] = None  # the DOC types `warning` as a string; an absent value is no warning
    odd["invoice"] = {**odd["invoice"], "foreignCurrencyRate": "", "fiscalStamp": "", "discount": ""}
    sim.app.add("error", path="/sign", status=200, body=odd)
    cert = await driver.certify(parse_invoice(invoice_data(number="F-2")), settings, sim.connection)
    assert cert.reference == real.reference and cert.notices == []
    assert cert.totals["fiscal_stamp"] == 0
    # what we need to refund is still required: without item ids the answer is unreadable
    broken = {**odd, "invoice": {**odd["invoice"], "items": [{"quantity": 1, "amount": 1}]}}
    sim.app.add("error", path="/sign", status=200, body=broken)
    with pytest.raises(OutcomeUnknown, match="unreadable"):
        await driver.certify(parse_invoice(invoice_data(number="F-3")), settings, sim.connection)


async def test_credit_note_of_another_environment_is_refused(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    cert = await driver.certify(parse_invoice(invoice_data()), settings, sim.connection)
    from_sandbox = cert.model_copy(update={"environment": "sandbox"})
    with pytest.raises(InvoiceError) as caught:
        await driver.credit_note(
            credit(refund_line("1", original_line=1)), from_sandbox, settings, sim.connection
        )
    assert [(p.field, p.rule) for p in caught.value.problems] == [("original", "environment")]
    assert len(sim.app.platform.documents) == 1  # nothing was sent


async def test_a_key_of_another_taxpayer_is_flagged_on_the_result(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    # settings say 9606123E, but the key belongs to 1304777N: FNE numbers it in 1304777N's series
    other = Taxpayer("1304777N", "K" * 32, ["Siège Plateau"], ["Caisse 1"])
    sim.app.platform.add_taxpayer(other)
    mixed = driver.parse_settings({**driver.mock_credentials(), "api_key": other.api_key})
    cert = await driver.certify(parse_invoice(invoice_data()), mixed, sim.connection)
    assert cert.reference.startswith("1304777N")
    notice = next(n for n in cert.notices if n.code == "fne.ncc_differs")
    assert notice.severity == "warning" and "1304777N" in notice.message and "9606123E" in notice.message


async def test_a_redirecting_url_is_a_configuration_error(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    sim.app.add("error", path="/sign", status=301, body={"message": "Moved Permanently"})
    with pytest.raises(ConfigurationError) as caught:
        await driver.certify(parse_invoice(invoice_data()), settings, sim.connection)
    assert "301" in caught.value.message and "redirige" in caught.value.message
    assert sim.app.platform.documents == {}  # never followed: the POST was not replayed elsewhere


async def test_wrong_key_on_a_refund_is_an_auth_error(
    sim: Sim, driver: FneDriver, settings: FneSettings
) -> None:
    cert = await driver.certify(parse_invoice(invoice_data()), settings, sim.connection)
    bad = driver.parse_settings({**driver.mock_credentials(), "api_key": "WrongKey000000000000000000000000"})
    with pytest.raises(AuthorityAuthError) as caught:
        await driver.credit_note(credit(refund_line("1", original_line=1)), cert, bad, sim.connection)
    assert (caught.value.http_status, caught.value.authority_code) == (401, "unauthorized")
    assert "refund" in caught.value.message
    stored = (await sim_get(sim, f"/_sim/documents/{cert.reference}")).json()
    assert stored["items"][0]["refunded"] == "0"  # nothing refunded, no credit note numbered
