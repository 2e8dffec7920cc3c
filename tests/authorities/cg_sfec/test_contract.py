"""Contract scenarios: the driver against the simulator, in-process and over a socket.

Each scenario is one async function taking the driver, settings and a target; the `target`
fixture runs it both ways.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from decimal import Decimal

import pytest
from pydantic import SecretStr

from fiscalgate.authorities.cg_sfec import convert, errors
from fiscalgate.authorities.cg_sfec.client import SfecClient
from fiscalgate.authorities.cg_sfec.driver import SfecDriver
from fiscalgate.authorities.cg_sfec.settings import SfecSettings
from fiscalgate.core.errors import (
    AlreadyCertified,
    AuthorityAuthError,
    AuthorityServerError,
    InvoiceError,
    InvoiceRejected,
    OutcomeUnknown,
)
from fiscalgate.core.invoice import Invoice

from .conftest import Target, invoice_from

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n"


async def test_mixed_invoice_then_credit_note_then_second_credit_note_refused(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice, credit: Invoice
) -> None:
    cert = await driver.certify(sale, settings, target.connection)
    assert re.fullmatch(r"SFEC-API-\d{4}-\d{10}", cert.reference)
    assert re.fullmatch(r"[0-9a-f]{64}", cert.authority_data["signature"])
    assert cert.authority_data["short_signature"]
    assert cert.qr_content == ""  # SFEC gives an image, not a text to encode
    assert cert.qr_image is not None
    head, _, data = cert.qr_image.partition(",")
    assert head == "data:image/png;base64"
    assert base64.b64decode(data).startswith(PNG)
    assert cert.certified_at.tzinfo is not None
    # the client's totals are what the simulator accepted and stored
    stored = target.sim.platform.records["FAC-2026-0042"].invoice
    assert Decimal(stored["total_amount"]) == cert.totals["total"] == Decimal(1189469)
    assert cert.totals["vat_18"] == Decimal(138600) and cert.totals["vat_5"] == Decimal(11875)
    assert cert.totals["exempt_base"] == Decimal(23970)

    note = await driver.credit_note(credit, cert, settings, target.connection)
    assert note.kind.value == "credit_note"
    assert note.authority_data["reference_invoice_id"] == "FAC-2026-0042"
    assert target.sim.platform.records["FAC-2026-0042"].credit_note_id == "AV-2026-0007"

    second = invoice_from("credit_note.json", number="AV-2026-0008")
    with pytest.raises(InvoiceRejected) as caught:
        await driver.credit_note(second, cert, settings, target.connection)
    assert caught.value.http_status == 422
    assert caught.value.authority_code == "CREDIT_NOTE_EXISTS"
    assert caught.value.field == "reference_invoice_id"


async def test_duplicate_invoice_id_is_adopted_when_it_matches(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    first = await driver.certify(sale, settings, target.connection)
    again = await driver.certify(sale, settings, target.connection)
    assert again.reference == first.reference
    assert again.authority_data["signature"] == first.authority_data["signature"]
    assert [n.code for n in again.notices] == ["sfec.adopted"]
    assert len(target.sim.platform.records) == 1


async def test_duplicate_invoice_id_is_refused_when_it_differs(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    await driver.certify(sale, settings, target.connection)
    other = sale.model_copy(update={"lines": sale.lines[:1]})
    with pytest.raises(AlreadyCertified, match="DIFFERENT invoice") as caught:
        await driver.certify(other, settings, target.connection)
    assert caught.value.http_status == 409
    assert caught.value.authority_message == "Facture déjà certifiée ou déclarée"
    assert "total_amount" in {p.field for p in caught.value.problems}


async def test_wrong_api_key_is_an_auth_error(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    bad = settings.model_copy(update={"api_key": SecretStr("not-the-key")})
    with pytest.raises(AuthorityAuthError) as caught:
        await driver.certify(sale, bad, target.connection)
    assert caught.value.http_status == 401
    assert caught.value.authority_message == "Clé d’authentification invalide ou manquante"
    assert "not-the-key" not in str(caught.value.raw)


async def test_malformed_payload_is_400_with_fields(settings: SfecSettings, target: Target) -> None:
    async with SfecClient(settings, target.connection) as client:
        response = await client.http.post(
            "/api/invoices/certify", json={"invoice_id": "X-1", "items": [{"tax_rate": "7"}]}
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_DATA"
    fields = {d["field"] for d in error["details"]}
    assert {"taxpayer_niu", "items[0].tax_rate", "items[0].designation", "currency"} <= fields


async def test_platform_400_maps_to_rejected_with_problems(
    settings: SfecSettings, target: Target, driver: SfecDriver, sale: Invoice
) -> None:
    # a payload our validator accepts but the platform does not: an unknown NIU-type recipient
    payload = driver.build_payload(sale, settings)
    payload["recipient_type"] = "3"  # no numeric code 3 in the online-report page
    async with SfecClient(settings, target.connection) as client:
        with pytest.raises(InvoiceError) as local:
            await client.certify(payload)
    assert local.value.problems[0].field == "recipient_type"
    assert target.sim.platform.journal == []  # refused before sending
    payload["recipient_type"] = "business"
    payload["recipient_niu"] = None
    async with SfecClient(settings, target.connection) as client:
        response = await client.http.post("/api/invoices/certify", json=payload)
    assert response.status_code == 400
    err = errors.classify(400, response.json(), what="POST", raw=None)
    assert isinstance(err, InvoiceRejected) and err.field == "recipient_niu"


async def test_totals_that_do_not_add_up_are_422_on_the_platform(
    settings: SfecSettings, target: Target, driver: SfecDriver, sale: Invoice
) -> None:
    payload = driver.build_payload(sale, settings)
    payload["items"][1]["tax_amount"] += 1
    payload["total_amount"] += 5
    async with SfecClient(settings, target.connection) as client:
        response = await client.http.post("/api/invoices/certify", json=payload)
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert [(d["field"], d["expected"]) for d in details] == [
        ("items[1].tax_amount", "11875"),
        ("total_amount", "1189469"),
    ]


async def test_inconsistent_payload_is_refused_locally_with_every_problem(
    settings: SfecSettings, target: Target, driver: SfecDriver, sale: Invoice
) -> None:
    payload = driver.build_payload(sale, settings)
    payload["items"][0]["net_amount"] = 600000
    payload["total_tax_r_amount"] = 0
    payload["additional_cent_tax"] = 1
    async with SfecClient(settings, target.connection) as client:
        with pytest.raises(InvoiceError) as caught:
            await client.certify(payload)
    fields = {p.field: p.expected for p in caught.value.problems}
    assert fields == {
        "items[0].net_amount": "685000",
        "total_tax_r_amount": "11875",
        "additional_cent_tax": "7524",
    }
    assert target.sim.platform.journal == []  # the simulator received nothing


async def test_5xx_then_success_is_retried(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    target.sim.app.add("error", path="/invoices/certify", status=503, times=2)
    cert = await driver.certify(sale, settings, target.connection)
    assert cert.reference.startswith("SFEC-API-")
    assert cert.notices == []


async def test_5xx_every_time_gives_up_after_max_attempts(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    # one more failure queued than attempts allowed: exactly max_attempts (3) are made
    fault = target.sim.app.add("error", path="/invoices/certify", status=500, times=4)
    with pytest.raises(AuthorityServerError) as caught:
        await driver.certify(sale, settings, target.connection)
    assert caught.value.http_status == 500
    assert caught.value.retryable
    assert fault.times == 1 and target.sim.platform.records == {}


async def test_timeout_after_recording_then_retry_adopts_via_409(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    target.sim.app.add("hang_after_processing", path="/invoices/certify", seconds=0.6)
    seen: list[dict[str, object]] = []

    async def checkpoint(data: dict[str, object]) -> None:
        seen.append(data)

    cert = await driver.certify(sale, settings, target.with_timeout(0.3), checkpoint=checkpoint)
    assert [{k: v for k, v in c.items() if k != "sent_at"} for c in seen] == [
        {"invoice_id": "FAC-2026-0042", "invoice_type": "salesInvoice"}
    ]
    assert all(datetime.fromisoformat(c["sent_at"]).tzinfo is not None for c in seen)  # the scan's window
    assert [n.code for n in cert.notices] == ["sfec.adopted"]
    assert "after a resend" in cert.notices[0].message
    assert cert.reference == target.sim.platform.records["FAC-2026-0042"].certification_number


async def test_timeouts_every_time_leave_the_outcome_unknown(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    one_try = settings.model_copy(update={"max_attempts": 1})
    target.sim.app.add("hang_after_processing", path="/invoices/certify", seconds=0.6)
    with pytest.raises(OutcomeUnknown) as caught:
        await driver.certify(sale, one_try, target.with_timeout(0.3))
    # the same data the checkpoint callback received before the send
    assert caught.value.checkpoint == {"invoice_id": "FAC-2026-0042", "invoice_type": "salesInvoice"}
    # reconcile: the simulator did record it
    result = await driver.reconcile(sale, settings, target.connection, caught.value.checkpoint)
    assert result.status == "certified"
    assert result.certification is not None
    assert result.certification.reference == target.sim.platform.records["FAC-2026-0042"].certification_number


async def test_timeout_then_5xx_stays_unknown(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    two_tries = settings.model_copy(update={"max_attempts": 2})
    target.sim.app.add("hang_after_processing", path="/invoices/certify", seconds=0.6)
    target.sim.app.add("error", path="/invoices/certify", status=502)
    with pytest.raises(OutcomeUnknown, match="may have been certified") as caught:
        await driver.certify(sale, two_tries, target.with_timeout(0.3))
    assert caught.value.http_status == 502
    assert caught.value.checkpoint == {"invoice_id": "FAC-2026-0042", "invoice_type": "salesInvoice"}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (422, {"error": {"code": "DUPLICATE", "message": "Facture déjà certifiée"}}),
        (400, {"message": "Données invalides"}),
        (401, {"message": "Clé invalide"}),
    ],
    ids=["422", "400", "401"],
)
async def test_a_refusal_after_a_timeout_stays_unknown_then_reconciles(
    driver: SfecDriver,
    settings: SfecSettings,
    target: Target,
    sale: Invoice,
    status: int,
    body: dict[str, object],
) -> None:
    # the first attempt was recorded then timed out; the platform refuses the resend for a
    # reason that does not prove the first one failed: never "rejected", always reconcile
    target.sim.app.add("hang_after_processing", path="/invoices/certify", seconds=0.6)
    target.sim.app.add("error", path="/invoices/certify", status=status, body=body)
    with pytest.raises(OutcomeUnknown, match="may have been certified") as caught:
        await driver.certify(sale, settings, target.with_timeout(0.3))
    assert caught.value.http_status == status
    result = await driver.reconcile(sale, settings, target.connection, caught.value.checkpoint)
    assert result.status == "certified"


async def test_reconcile_not_certified_and_mismatch(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    result = await driver.reconcile(sale, settings, target.connection, {"invoice_id": "FAC-2026-0042"})
    assert result.status == "not_certified"
    assert "resending is safe" in result.detail
    await driver.certify(sale, settings, target.connection)
    other = sale.model_copy(update={"lines": sale.lines[1:]})
    mismatch = await driver.reconcile(other, settings, target.connection, {"invoice_id": "FAC-2026-0042"})
    assert mismatch.status == "unknown" and "differs" in mismatch.detail


async def test_report_endpoint(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    cert = await driver.certify(sale, settings, target.connection)
    ack = await driver.report(sale, cert, settings, target.connection)
    # the report answer uses the seed's sfec_* spelling; same certification
    assert ack.reference == cert.reference
    assert ack.authority_data["reported"] is True
    assert "sfec_certification_number" in ack.raw["report"]["body"]
    assert target.sim.platform.records["FAC-2026-0042"].reported
    with pytest.raises(AlreadyCertified):  # reported twice
        await driver.report(sale, cert, settings, target.connection)
    tcc = {**cert.authority_data, "signature": "0" * 64, "invoice_id": "FAC-2026-0043"}
    forged = cert.model_copy(update={"authority_data": tcc})
    other = sale.model_copy(update={"number": "FAC-2026-0043"})
    # an invoice certified elsewhere (a TCC, say) is archived as reported
    elsewhere = await driver.report(other, forged, settings, target.connection)
    assert elsewhere.reference != cert.reference
    assert target.sim.platform.records["FAC-2026-0043"].source == "report"


async def test_report_with_a_signature_that_does_not_match_is_refused(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    cert = await driver.certify(sale, settings, target.connection)
    forged = cert.model_copy(update={"authority_data": {**cert.authority_data, "signature": "f" * 64}})
    with pytest.raises(InvoiceRejected) as caught:
        await driver.report(sale, forged, settings, target.connection)
    assert caught.value.authority_code == "SIGNATURE_MISMATCH"


async def test_lookup_and_list(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice, credit: Invoice
) -> None:
    cert = await driver.certify(sale, settings, target.connection)
    await driver.credit_note(credit, cert, settings, target.connection)
    async with SfecClient(settings, target.connection) as client:
        record, _ = await client.lookup("FAC-2026-0042")
        assert record is not None and record.certification_number == cert.reference
        by_identifier, _ = await client.lookup(str(cert.authority_data["identifier"]))
        assert by_identifier is not None and by_identifier.invoice_id == "FAC-2026-0042"
        missing, raw = await client.lookup("NOPE/1")
        assert missing is None and raw["status"] == 404
        page = await client.list(page=1, page_size=1)
        assert (page.page, page.page_size, page.total_pages, page.total) == (1, 1, 2, 2)
        notes = await client.list(invoice_type="creditNote")
        assert [i["invoice_id"] for i in notes.invoices] == ["AV-2026-0007"]
        # Above the maximum: served with the maximum, as the platform does, not refused.
        capped = await client.list(page_size=500)
        assert capped.page_size == 100 and len(capped.invoices) == 2
        # Records carry the ERP's number, which clients use to recover after a 409.
        assert sorted(i["invoice_number"] for i in capped.invoices) == ["AV-2026-0007", "FAC-2026-0042"]
        _, looked_up = await client.lookup("FAC-2026-0042")
        assert looked_up["body"]["invoice_number"] == "FAC-2026-0042"
        with pytest.raises(InvoiceRejected):
            await client.list(page_size=0)


async def test_versioned_paths(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    v1 = settings.model_copy(update={"path_prefix": "/api/v1", "certify_path": "/invoices"})
    cert = await driver.certify(sale, v1, target.connection)
    result = await driver.reconcile(
        sale, v1, target.connection, {"invoice_id": cert.authority_data["invoice_id"]}
    )
    assert result.status == "certified"


async def test_credit_note_against_an_unknown_original_is_refused(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice, credit: Invoice
) -> None:
    other_sim_cert = await driver.certify(sale, settings, target.connection)
    ghost = other_sim_cert.model_copy(
        update={"authority_data": {**other_sim_cert.authority_data, "invoice_id": "NEVER-CERTIFIED"}}
    )
    with pytest.raises(InvoiceRejected) as caught:
        await driver.credit_note(credit, ghost, settings, target.connection)
    assert caught.value.authority_code == "REFERENCE_NOT_FOUND"
    assert convert.invoice_id(credit) not in target.sim.platform.records


async def test_printed_mentions_of_a_certified_invoice(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    from fiscalgate.authorities.cg_sfec import printing

    cert = await driver.certify(sale, settings, target.connection)
    printed = printing.mentions(cert, invoice=sale)
    assert printed.title == "FACTURE" and printed.original_reference is None
    assert printed.seller_ids == [("NIU", "M2400000000001A"), ("RCCM", "CG-BZV-01-2024-B12-00042")]
    assert (printed.invoice_number, printed.certification_number) == ("FAC-2026-0042", cert.reference)
    assert printed.qr_image == cert.qr_image and printed.signature == cert.authority_data["signature"]
    labels = [label for label, _ in printed.totals]
    assert labels.index("TVA 18 %") < labels.index("TVA 5 %") < labels.index("Total TTC")
    assert dict(printed.totals)["Centimes additionnels (5 % de la TVA)"] == Decimal(7524)


async def test_latency_within_the_timeout_is_only_slower(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    target.sim.app.add("latency", path="/invoices/certify", seconds=0.1)
    cert = await driver.certify(sale, settings, target.with_timeout(2))
    assert cert.notices == [] and len(target.sim.platform.records) == 1


async def test_latency_beyond_the_timeout_still_certifies_once(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    # the first attempt times out; depending on the transport it is processed late or never:
    # either way the resends end with exactly one certification
    target.sim.app.add("latency", path="/invoices/certify", seconds=0.5)
    cert = await driver.certify(sale, settings, target.with_timeout(0.3))
    assert list(target.sim.platform.records) == ["FAC-2026-0042"]
    assert cert.reference == target.sim.platform.records["FAC-2026-0042"].certification_number


async def test_a_request_dropped_before_processing_is_simply_resent(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    target.sim.app.add("drop_before_processing", path="/invoices/certify", seconds=0.5)
    cert = await driver.certify(sale, settings, target.with_timeout(0.3))
    assert cert.notices == []  # nothing to adopt: the first never reached the platform
    assert len(target.sim.platform.records) == 1
