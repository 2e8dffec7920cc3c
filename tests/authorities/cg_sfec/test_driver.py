"""Driver error paths that need no socket: local refusals, odd answers, adoption failures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from fiscalgate.authorities.base import Connection
from fiscalgate.authorities.cg_sfec.client import SfecClient
from fiscalgate.authorities.cg_sfec.driver import SfecDriver
from fiscalgate.authorities.cg_sfec.settings import SfecSettings
from fiscalgate.authorities.cg_sfec.simulator.app import Simulator, create_simulator
from fiscalgate.core.errors import (
    AlreadyCertified,
    AuthorityAuthError,
    AuthorityServerError,
    AuthorityUnreachable,
    ConfigurationError,
    InvoiceError,
    InvoiceRejected,
    RateLimited,
)
from fiscalgate.core.invoice import Invoice

from .conftest import invoice_from

pytestmark = pytest.mark.anyio


@pytest.fixture
def sim(settings: SfecSettings) -> Simulator:
    return create_simulator(settings.niu, settings.api_key.get_secret_value())


@pytest.fixture
def connection(sim: Simulator, settings: SfecSettings) -> Connection:
    return Connection(
        "http://cg-sfec.mock", settings.environment, httpx.ASGITransport(app=sim.app), timeout=2
    )


async def test_an_answer_without_a_certification_number_is_retried(
    driver: SfecDriver, settings: SfecSettings, sim: Simulator, connection: Connection, sale: Invoice
) -> None:
    sim.app.add("error", path="/invoices/certify", status=201, body={"status": "pending"})
    cert = await driver.certify(sale, settings, connection)
    assert cert.reference.startswith("SFEC-API-")


async def test_rate_limit_is_retried(
    driver: SfecDriver, settings: SfecSettings, sim: Simulator, connection: Connection, sale: Invoice
) -> None:
    fault = sim.app.add(
        "error", path="/invoices/certify", status=429, body={"message": "Too many requests"}, times=4
    )
    with pytest.raises(RateLimited) as caught:
        await driver.certify(sale, settings, connection)
    assert fault.times == 1  # three attempts, then it gave up
    assert caught.value.authority_message == "Too many requests"
    assert sim.platform.journal == []


async def test_409_without_a_record_is_not_adopted(
    driver: SfecDriver, settings: SfecSettings, sim: Simulator, connection: Connection, sale: Invoice
) -> None:
    sim.app.add("error", path="/invoices/certify", status=409, body={"message": "Facture déjà certifiée"})
    with pytest.raises(AlreadyCertified, match="nor the invoice list shows it") as caught:
        await driver.certify(sale, settings, connection)
    assert caught.value.authority_message == "Facture déjà certifiée"
    assert caught.value.raw["lookup"]["lookup"]["status"] == 404
    assert caught.value.raw["lookup"]["pages"] == 1  # the (empty) list was read too


async def test_409_adopts_through_the_list_when_get_by_id_knows_only_sfec_ids(
    driver: SfecDriver, settings: SfecSettings, sim: Simulator, connection: Connection, sale: Invoice
) -> None:
    # spec §2: GET /invoices/{id} takes SFEC's identifier; our invoice_id is then found in the list
    for n in range(45):  # others before it, so that the scan has to turn pages
        other = sale.model_copy(update={"number": f"OTHER-{n:03d}"})
        await driver.certify(other, settings, connection)
    first = await driver.certify(sale, settings, connection)
    sim.app.add("error", path="/invoices/FAC-2026-0042", method="GET", status=404, times=-1)
    again = await driver.certify(sale, settings, connection)
    assert again.reference == first.reference
    assert [n.code for n in again.notices] == ["sfec.adopted"]
    assert again.raw["lookup"]["pages"] == 3 and again.raw["lookup"]["match"]["invoice_id"] == "FAC-2026-0042"
    # reconcile the same way; the list is read page by page, and an unread rest proves nothing
    result = await driver.reconcile(sale, settings, connection, {"invoice_id": "FAC-2026-0042"})
    assert result.status == "certified" and result.certification is not None
    missing = sale.model_copy(update={"number": "NEVER-SENT"})
    sim.app.add("error", path="/invoices/NEVER-SENT", method="GET", status=404, times=-1)
    gone = await driver.reconcile(missing, settings, connection, {})
    assert gone.status == "not_certified"
    short = settings.model_copy(update={"lookup_max_pages": 2})
    partial = await driver.reconcile(missing, short, connection, {})
    assert partial.status == "unknown" and "first 2 pages" in partial.detail


async def test_409_whose_look_up_fails_stays_already_certified(
    driver: SfecDriver, settings: SfecSettings, sim: Simulator, connection: Connection, sale: Invoice
) -> None:
    await driver.certify(sale, settings, connection)
    sim.app.add("error", path="/invoices/FAC-2026-0042", method="GET", status=503)
    with pytest.raises(AlreadyCertified, match="reconcile later") as caught:
        await driver.certify(sale, settings, connection)
    assert caught.value.http_status == 409 and caught.value.raw["lookup_error"]["status"] == 503


async def test_invalid_invoice_is_refused_before_any_network(
    driver: SfecDriver, settings: SfecSettings, sim: Simulator, connection: Connection
) -> None:
    bad = invoice_from("invoice.json", currency="EUR")
    with pytest.raises(InvoiceError) as caught:
        await driver.certify(bad, settings, connection)
    assert [p.field for p in caught.value.problems] == ["currency"]
    with pytest.raises(InvoiceError, match="goes through credit_note"):
        await driver.certify(invoice_from("credit_note.json"), settings, connection)
    assert sim.platform.journal == []


async def test_credit_note_local_rules(
    driver: SfecDriver,
    settings: SfecSettings,
    sim: Simulator,
    connection: Connection,
    sale: Invoice,
    credit: Invoice,
) -> None:
    cert = await driver.certify(sale, settings, connection)
    foreign = cert.model_copy(update={"authority": "ci-fne"})
    with pytest.raises(InvoiceError) as caught:
        await driver.credit_note(credit, foreign, settings, connection)
    assert caught.value.problems[0].rule == "original_authority"
    usd = cert.model_copy(update={"authority_data": {**cert.authority_data, "currency": "USD"}})
    with pytest.raises(InvoiceError) as caught:
        await driver.credit_note(credit, usd, settings, connection)
    assert caught.value.problems[0].expected == "USD"
    small = cert.model_copy(update={"totals": {**cert.totals, "total": Decimal(100)}})
    with pytest.raises(InvoiceError, match="exceeds the original") as caught:
        await driver.credit_note(credit, small, settings, connection)
    uncertified = cert.model_copy(update={"authority_data": {}})
    with pytest.raises(InvoiceError) as caught:
        await driver.credit_note(credit, uncertified, settings, connection)
    assert caught.value.problems[0].rule == "original_certified"
    with pytest.raises(InvoiceError) as caught:
        await driver.credit_note(sale, cert, settings, connection)
    assert caught.value.problems[0].field == "kind"
    assert len(sim.platform.journal) == 1  # only the original's certification went out


async def test_lookup_with_a_bad_key_and_unreachable_platform(
    settings: SfecSettings, connection: Connection
) -> None:
    from pydantic import SecretStr

    bad = settings.model_copy(update={"api_key": SecretStr("nope")})
    async with SfecClient(bad, connection) as client:
        with pytest.raises(AuthorityAuthError):
            await client.lookup("X")
        with pytest.raises(AuthorityAuthError):
            await client.list()
    nowhere = Connection("http://127.0.0.1:9", settings.environment, timeout=1)
    async with SfecClient(settings, nowhere) as client:
        with pytest.raises(AuthorityUnreachable):
            await client.lookup("X")


async def test_reconcile_when_the_lookup_fails_is_unknown(
    driver: SfecDriver, settings: SfecSettings, sale: Invoice
) -> None:
    nowhere = Connection("http://127.0.0.1:9", settings.environment, timeout=1)
    result = await driver.reconcile(sale, settings, nowhere, {})
    assert result.status == "unknown" and "look-up failed" in result.detail


async def test_client_outside_a_context(settings: SfecSettings, connection: Connection) -> None:
    # (Settings of another authority are a type error now: SfecDriver is Driver[SfecSettings].)
    with pytest.raises(RuntimeError, match="async with"):
        _ = SfecClient(settings, connection).http


async def test_unreadable_successes_are_server_errors(
    settings: SfecSettings, sim: Simulator, connection: Connection
) -> None:
    sim.app.add("error", path="/invoices/X", status=200, body={"invoice_id": "X"})
    sim.app.add("error", path="/invoices", method="GET", status=200, body={"invoices": "none"})
    async with SfecClient(settings, connection) as client:
        with pytest.raises(AuthorityServerError, match="without an invoice record") as caught:
            await client.lookup("X")
        assert caught.value.retryable and caught.value.raw["body"] == {"invoice_id": "X"}
        with pytest.raises(AuthorityServerError, match="without a page of invoices"):
            await client.list()


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, {"errors": {"recipient_niu": ["Le champ est obligatoire."]}}, InvoiceRejected),
        (422, {"error": {"code": "TOTALS_MISMATCH", "message": "Totaux incohérents"}}, InvoiceRejected),
        (401, {"message": "Clé invalide"}, AuthorityAuthError),
    ],
    ids=["400", "422", "401"],
)
async def test_4xx_answers_are_never_retried(
    driver: SfecDriver,
    settings: SfecSettings,
    sim: Simulator,
    connection: Connection,
    sale: Invoice,
    status: int,
    body: dict[str, Any],
    kind: type[Exception],
) -> None:
    # one refusal only: a retry would reach the simulator and certify
    sim.app.add("error", path="/invoices/certify", status=status, body=body)
    with pytest.raises(kind) as caught:
        await driver.certify(sale, settings, connection)
    assert sim.platform.records == {} and sim.platform.journal == []
    error = caught.value
    assert isinstance(error, InvoiceRejected | AuthorityAuthError)
    assert error.http_status == status and error.raw == {"status": status, "body": body}
    if status == 400:
        assert [(p.field, p.message) for p in error.problems] == [
            ("recipient_niu", "Le champ est obligatoire.")
        ]
        assert error.field == "recipient_niu"
    if status == 422:
        assert (error.authority_code, error.authority_message) == ("TOTALS_MISMATCH", "Totaux incohérents")


async def test_a_key_echoed_by_the_platform_is_masked_everywhere(
    driver: SfecDriver, settings: SfecSettings, sim: Simulator, connection: Connection, sale: Invoice
) -> None:
    key = settings.api_key.get_secret_value()
    sim.app.add(
        "error",
        path="/invoices/certify",
        status=401,
        body={"error": {"message": f"clé {key} inconnue", "field": "X-API-Key", "details": [f"key={key}"]}},
    )
    with pytest.raises(AuthorityAuthError) as caught:
        await driver.certify(sale, settings, connection)
    error = caught.value
    seen = [str(error), error.authority_message, str(error.raw), str(error.to_dict())]
    seen += [p.message for p in error.problems]
    assert error.authority_message is not None and "inconnue" in error.authority_message
    assert all(key not in text for text in seen)


async def test_a_wrong_path_is_a_configuration_error_not_a_rejected_invoice(
    driver: SfecDriver, settings: SfecSettings, sim: Simulator, connection: Connection, sale: Invoice
) -> None:
    wrong = settings.model_copy(update={"path_prefix": "/api/v2"})
    with pytest.raises(ConfigurationError, match="no such endpoint") as caught:
        await driver.certify(sale, wrong, connection)
    assert caught.value.problems[0].field == "path_prefix"
    assert sim.platform.records == {}


async def test_a_408_is_retried(
    driver: SfecDriver, settings: SfecSettings, sim: Simulator, connection: Connection, sale: Invoice
) -> None:
    sim.app.add("error", path="/invoices/certify", status=408, body={"message": "Request Timeout"})
    cert = await driver.certify(sale, settings, connection)
    assert cert.reference.startswith("SFEC-API-") and cert.notices == []


async def test_an_answer_in_a_data_envelope_is_read(
    driver: SfecDriver, settings: SfecSettings, sim: Simulator, connection: Connection, sale: Invoice
) -> None:
    body = {"success": True, "data": {"certification_number": "N-9", "identifier": "i-9", "qr_code": "q"}}
    sim.app.add("error", path="/invoices/certify", status=201, body=body)
    cert = await driver.certify(sale, settings, connection)
    assert (cert.reference, cert.authority_data["identifier"], cert.qr_image) == ("N-9", "i-9", "q")


async def test_reconcile_scans_only_the_days_of_the_claim_and_says_when_it_gives_up(
    driver: SfecDriver,
    settings: SfecSettings,
    sim: Simulator,
    connection: Connection,
    sale: Invoice,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import dataclasses
    from datetime import UTC, datetime, timedelta

    for n in range(45):  # certified a week ago: outside the window of today's claim
        await driver.certify(sale.model_copy(update={"number": f"OLD-{n:03d}"}), settings, connection)
    week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    for key, record in list(sim.platform.records.items()):
        sim.platform.records[key] = dataclasses.replace(record, certification_date=week_ago)
    sent_at = datetime.now(UTC).isoformat()
    missing = sale.model_copy(update={"number": "NEVER-SENT"})
    sim.app.add("error", path="/invoices/NEVER-SENT", method="GET", status=404, times=-1)
    # the look-up by id first; then the list of the claim's days only: one page (unfiltered, the
    # 45 old ones take three), read to its end, which proves the invoice absent
    short = settings.model_copy(update={"lookup_max_pages": 1})
    gone = await driver.reconcile(
        missing, short, connection, {"invoice_id": "NEVER-SENT", "sent_at": sent_at}
    )
    assert gone.status == "not_certified"
    # without the claim's time the whole list would be read: past its bound it is left to a person
    with caplog.at_level("ERROR", logger="fiscalgate.authorities.cg_sfec.driver"):
        partial = await driver.reconcile(missing, short, connection, {"invoice_id": "NEVER-SENT"})
    assert partial.status == "unknown" and "a person must check" in partial.detail
    assert any("waits for a person" in r.getMessage() for r in caplog.records)


def test_the_scan_window_runs_from_the_day_before_the_first_send() -> None:
    from datetime import UTC, datetime

    from fiscalgate.authorities.cg_sfec.driver import scan_window

    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert scan_window("2026-03-09T23:30:00+00:00", now) == ("2026-03-08", "2026-03-11")
    assert scan_window(None, now) is None
    assert scan_window("yesterday", now) is None
    assert scan_window("2026-03-09T23:30:00", now) is None  # a naive time says nothing certain
