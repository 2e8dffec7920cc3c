"""Contract scenarios: the driver and client against the simulator, in-process and over a socket."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from fiscalgate.authorities.bj_emecef.errors import ERRORS
from fiscalgate.authorities.bj_emecef.simulator.state import mint_token
from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import (
    AuthorityAuthError,
    AuthorityServerError,
    InvoiceRejected,
    RateLimited,
)

from .conftest import Emecef
from .samples import JUICE, credit_note, official_example

pytestmark = pytest.mark.anyio

# The official texts as the spec prints them (§13), typed here a third time on purpose.
OFFICIAL = {
    "1": "Le nombre maximum de factures en attente est dépassé",
    "3": "Type de facture n'est pas valide",
    "4": "La référence de la facture originale est manquante",
    "5": "La référence de la facture originale ne comporte pas 24 caractères",
    "6": "La valeur de l'AIB n'est pas valide",
    "7": "Le type de paiement n'est pas valide",
    "8": "La facture doit contenu les articles",
    "9": "La groupe de taxation au niveau des articles n'est pas valide",
    "10": "La référence de la facture originale ne peut pas être validée, veuillez réessayer plus tard",
    "11": "La référence de la facture originale n'est pas valide (la facture originale est introuvable)",
    "12": "La référence de la facture originale n'est pas valide (le montant sur la facture d'avoir dépassé "
    "le montant de la facture originale)",
    "20": "La facture n'existe pas ou elle est déjà finalisée / annulée",
    "99": "Erreur lors du traitement de la demande",
}


async def _certify(env: Emecef, aib: str | None = "B", **extra: Any) -> Certification:
    return await env.driver.certify(official_example(aib=aib, **extra), env.settings, env.connection)


def _raw(env: Emecef, **change: Any) -> dict[str, Any]:
    body = env.driver.build_payload(official_example(), env.settings)
    body.update(change)
    return body


async def test_sale_with_aib(emecef: Emecef) -> None:
    seen: list[dict[str, Any]] = []

    async def checkpoint(data: dict[str, Any]) -> None:
        # persisted while the request is still pending, i.e. before the confirm
        assert data["uid"] in emecef.platform.pending
        seen.append(data)

    cert = await emecef.driver.certify(
        official_example(aib="B"), emecef.settings, emecef.connection, checkpoint=checkpoint
    )
    assert seen == [
        {
            "uid": cert.authority_data["uid"],
            "submitted_totals": {k: int(cert.totals[k]) for k in seen[0]["submitted_totals"]},
        }
    ]
    assert seen[0]["submitted_totals"]["total"] == 5170
    assert re.fullmatch(r"TEST(-[A-Z2-7]{4}){5}", cert.reference)
    code = cert.reference.replace("-", "")
    assert cert.qr_content == f"F;TS01000001;{code};{emecef.settings.ifu};20260716110000"
    assert cert.certified_at.isoformat() == "2026-07-16T11:00:00+01:00"
    assert cert.counters == "1/1 FV"
    assert (cert.totals["total"], cert.totals["aib"], cert.totals["hab"], cert.totals["vab"]) == (
        5170,
        220,
        3051,
        549,
    )
    assert (cert.totals["total_excl_tax"], cert.totals["total_tax"]) == (4401, 769)
    assert cert.authority_data | {"uid": None} == {
        "uid": None,
        "nim": "TS01000001",
        "code": code,
        "type": "FV",
        "ifu": emecef.settings.ifu,
        "aib": "B",
        "date_time": "16/07/2026 11:00:00",
        "counter_type": 1,
        "counter_total": 1,
        "invoice_number": "TS01000001-1",
        "totals_source": "e-mcf",
    }
    assert emecef.settings.token.get_secret_value() not in str(cert.raw)
    assert emecef.platform.finalised[cert.authority_data["uid"]] == "confirmed"
    assert cert.notices == []  # whole-franc prices: nothing was rounded


async def test_a_total_changed_by_whole_franc_prices_is_certified_with_a_notice(emecef: Emecef) -> None:
    water = {
        "description": "Sachet d'eau",
        "quantity": "1000",
        "unit_price": "1.4",
        "price_includes_tax": True,
    }
    invoice = official_example(aib="B", lines=[water])
    cert = await emecef.driver.certify(invoice, emecef.settings, emecef.connection)
    # 1 000 x 1 F in B: HT 847, AIB B round(42.35) = 42
    assert (cert.totals["tab"], cert.totals["hab"], cert.totals["aib"], cert.totals["total"]) == (
        1000,
        847,
        42,
        1042,
    )
    assert [n.code for n in cert.notices] == ["emecef.unit_prices_rounded"]


async def test_export_sale(emecef: Emecef) -> None:
    await _certify(emecef)
    invoice = official_example(buyer={"kind": "foreign", "name": "ACME Ltd", "country": "NG"})
    invoice.lines[0].tax_category = invoice.lines[0].tax_category.EXPORT
    cert = await emecef.driver.certify(invoice, emecef.settings, emecef.connection)
    assert cert.authority_data["type"] == "EV" and cert.counters == "1/2 EV"
    assert cert.totals["tac"] == 3600 and cert.totals["vab"] == 0


async def test_credit_note_against_a_sale_with_aib(emecef: Emecef) -> None:
    sale = await _certify(emecef, aib="B")
    credit = await emecef.driver.credit_note(
        credit_note([JUICE], aib="B"), sale, emecef.settings, emecef.connection
    )
    assert credit.kind == "credit_note" and credit.counters == "1/2 FA"
    assert credit.authority_data["original_code"] == sale.authority_data["code"]
    assert credit.totals["total"] == 1800 + 76
    # two more juices would exceed what remains of the original (cumulative check on the e-MCF)
    again = credit_note([{**JUICE, "quantity": "2"}], aib="B")
    with pytest.raises(InvoiceRejected) as info:
        await emecef.driver.credit_note(again, sale, emecef.settings, emecef.connection)
    assert (info.value.authority_code, info.value.authority_message) == ("12", OFFICIAL["12"])
    assert info.value.field == "original.reference"


async def test_totals_mismatch_cancels_and_never_confirms(emecef: Emecef) -> None:
    emecef.platform.next_totals_skew.update({"tab": 1, "total": 1})
    with pytest.raises(InvoiceRejected) as info:
        await _certify(emecef, aib=None)
    error = info.value
    assert error.code == "authority.totals_mismatch"
    assert {p.field: (p.message, p.expected) for p in error.problems} == {
        "totals.tab": ("e-MCF says tab=3601, fiscalgate computed 3600", "3600"),
        "totals.total": ("e-MCF says total=4951, fiscalgate computed 4950", "4950"),
    }
    assert "cancelled" in error.message
    assert list(emecef.platform.finalised.values()) == ["cancelled"]
    assert emecef.platform.total_counter == 0


async def test_expired_request_cannot_be_confirmed(emecef: Emecef) -> None:
    async with emecef.client() as client:
        answer = await client.submit(_raw(emecef))
        emecef.clock.advance(121)
        with pytest.raises(InvoiceRejected) as info:
            await client.confirm(str(answer.uid))
    assert (info.value.authority_code, info.value.authority_message) == ("20", OFFICIAL["20"])
    assert emecef.platform.finalised[str(answer.uid)] == "expired"


async def test_too_many_pending_is_back_pressure(emecef: Emecef) -> None:
    async with emecef.client() as client:
        for _ in range(10):
            await client.submit(_raw(emecef))
        status = await client.status()
    assert status.pending_requests_count == 10 and len(status.pending_requests_list) == 10
    with pytest.raises(RateLimited) as info:
        await _certify(emecef)
    assert info.value.retryable and info.value.authority_message == OFFICIAL["1"]


class Crash(Exception):
    pass


async def test_resume_after_crash_with_the_uid(emecef: Emecef) -> None:
    saved: dict[str, Any] = {}

    async def crash(data: dict[str, Any]) -> None:
        saved.update(data)
        raise Crash  # the process dies right after persisting the checkpoint

    invoice = official_example(aib="A")
    with pytest.raises(Crash):
        await emecef.driver.certify(invoice, emecef.settings, emecef.connection, checkpoint=crash)
    assert saved["uid"] in emecef.platform.pending
    result = await emecef.driver.reconcile(invoice, emecef.settings, emecef.connection, saved)
    assert result.status == "certified" and result.certification is not None
    assert result.certification.totals["total"] == 4994 and result.certification.counters == "1/1 FV"
    assert result.certification.authority_data["totals_source"] == "e-mcf"  # from the checkpoint
    # asking again: the e-MCF cannot say more about a finalised request
    again = await emecef.driver.reconcile(invoice, emecef.settings, emecef.connection, saved)
    assert again.status == "unknown" and "can neither say which" in again.detail


async def test_resume_after_crash_never_confirms_totals_that_differed(emecef: Emecef) -> None:
    saved: dict[str, Any] = {}

    async def crash(data: dict[str, Any]) -> None:
        saved.update(data)
        raise Crash  # died before comparing the e-MCF's totals with ours

    emecef.platform.next_totals_skew.update({"vab": 1, "hab": -1})
    invoice = official_example()
    with pytest.raises(Crash):
        await emecef.driver.certify(invoice, emecef.settings, emecef.connection, checkpoint=crash)
    result = await emecef.driver.reconcile(invoice, emecef.settings, emecef.connection, saved)
    assert result.status == "not_certified" and "totals.hab, totals.vab" in result.detail
    assert emecef.platform.finalised[saved["uid"]] == "cancelled" and emecef.platform.total_counter == 0


async def test_resume_without_uid_finds_the_pending_request(emecef: Emecef) -> None:
    invoice = official_example(aib="B")
    async with emecef.client() as client:
        await client.submit(
            _raw(emecef, items=[{"name": "Autre", "price": 5, "quantity": 1, "taxGroup": "A"}])
        )
        ours = await client.submit(emecef.driver.build_payload(invoice, emecef.settings))
    result = await emecef.driver.reconcile(invoice, emecef.settings, emecef.connection, {})
    assert result.status == "certified"
    assert result.certification is not None and result.certification.authority_data["uid"] == ours.uid
    # the POST answer was never seen: the totals are ours, computed from the payload the e-MCF holds
    assert result.certification.authority_data["totals_source"] == "local"
    assert result.certification.totals["total"] == ours.total == 5170
    assert len(emecef.platform.pending) == 1  # the other one was left alone
    nothing = await emecef.driver.reconcile(invoice, emecef.settings, emecef.connection, {})
    assert nothing.status == "not_certified" and "safe to resubmit" in nothing.detail


async def test_resume_without_uid_never_takes_another_tills_identical_sale(emecef: Emecef) -> None:
    invoice = official_example(aib="B")
    body = emecef.driver.build_payload(invoice, emecef.settings)
    async with emecef.client() as client:
        # the same articles, rung up at the same time by another cashier on the same e-MCF
        other = await client.submit({**body, "operator": {"id": "2", "name": "Awa"}})
    result = await emecef.driver.reconcile(invoice, emecef.settings, emecef.connection, {})
    assert result.status == "not_certified"
    assert str(other.uid) in emecef.platform.pending and emecef.platform.total_counter == 0


async def test_reconcile_can_cancel(emecef: Emecef) -> None:
    invoice = official_example()
    async with emecef.client() as client:
        answer = await client.submit(emecef.driver.build_payload(invoice, emecef.settings))
    result = await emecef.driver.reconcile(
        invoice, emecef.settings, emecef.connection, {"uid": answer.uid}, decision="cancel"
    )
    assert result.status == "not_certified"
    assert emecef.platform.finalised[str(answer.uid)] == "cancelled"


@pytest.mark.parametrize(
    ("code", "change", "kind"),
    [
        ("3", {"type": "XX"}, InvoiceRejected),
        ("4", {"type": "FA"}, InvoiceRejected),
        ("5", {"type": "FA", "reference": "TS01019550-1"}, InvoiceRejected),
        ("6", {"aib": "C"}, InvoiceRejected),
        ("7", {"payment": [{"name": "BITCOIN", "amount": 1}]}, InvoiceRejected),
        ("8", {"items": []}, InvoiceRejected),
        ("9", {"items": [{"name": "x", "price": 1, "quantity": 1, "taxGroup": "Z"}]}, InvoiceRejected),
        ("11", {"type": "FA", "reference": "TESTAAAAAAAAAAAAAAAAAAAA"}, InvoiceRejected),
        ("99", {"ifu": "9999999999999"}, AuthorityServerError),
    ],
)
async def test_submit_error_codes(emecef: Emecef, code: str, change: dict[str, Any], kind: type) -> None:
    async with emecef.client() as client:
        with pytest.raises(kind) as info:
            await client.submit(_raw(emecef, **change))
    error = info.value
    assert type(error) is kind
    assert (error.http_status, error.authority_code, error.authority_message) == (200, code, OFFICIAL[code])
    assert error.code == ERRORS[code].code and error.raw["errorCode"] == code
    assert OFFICIAL[code] in error.message


async def test_code_10_on_a_credit_note_is_retryable(emecef: Emecef) -> None:
    sale = await _certify(emecef)
    async with httpx.AsyncClient(
        base_url=emecef.connection.base_url, transport=emecef.connection.transport
    ) as raw:
        assert (await raw.post("/_sim/emecef", json={"next_credit_errors": [10]})).status_code == 200
    with pytest.raises(AuthorityServerError) as info:
        await emecef.driver.credit_note(
            credit_note([JUICE], aib="B"), sale, emecef.settings, emecef.connection
        )
    assert info.value.retryable and (info.value.authority_code, info.value.authority_message) == (
        "10",
        OFFICIAL["10"],
    )
    retried = await emecef.driver.credit_note(
        credit_note([JUICE], aib="B"), sale, emecef.settings, emecef.connection
    )
    assert retried.counters == "1/2 FA"


async def test_finalising_or_reading_a_non_pending_request_is_code_20(emecef: Emecef) -> None:
    cert = await _certify(emecef)
    uid = cert.authority_data["uid"]
    async with emecef.client() as client:
        raws = []
        for call in (client.confirm, client.cancel, client.details):
            with pytest.raises(InvoiceRejected) as info:
                await call(uid)
            assert (info.value.authority_code, info.value.authority_message) == ("20", OFFICIAL["20"])
            raws.append(info.value.raw)
    # The live platform's answers: the error fields and nothing more, no security field set to null.
    error = {"errorCode": "20", "errorDesc": "La facture n'existe pas ou elle est déjà finalisée / annulée"}
    assert raws == [{**error, "refundWithAibPayment": False}] * 2 + [error]


async def test_code_1_and_every_code_are_in_the_clients_table_with_the_official_text() -> None:
    assert {code: entry.message for code, entry in ERRORS.items()} == OFFICIAL


async def test_wrong_or_missing_token_is_401(emecef: Emecef) -> None:
    other = mint_token(emecef.settings.ifu, "TS01000001", "another-secret-of-at-least-32-bytes-long")
    for token in (other, "garbage"):
        async with emecef.client(token) as client:
            with pytest.raises(AuthorityAuthError) as info:
                await client.status()
        assert info.value.http_status == 401
    async with httpx.AsyncClient(
        base_url=emecef.connection.base_url, transport=emecef.connection.transport
    ) as raw:
        assert (await raw.get("/api/info/taxGroups")).status_code == 401


async def test_details_echo_a_pending_request(emecef: Emecef) -> None:
    body = _raw(
        emecef, items=[{"name": "Riz", "price": 650, "quantity": 2.5, "taxGroup": "B", "taxSpecific": 10}]
    )
    async with emecef.client() as client:
        answer = await client.submit(body)
        details = await client.details(str(answer.uid))
    assert details.ifu == emecef.settings.ifu and details.type == "FV"
    assert details.items is not None and details.items[0].quantity == Decimal("2.5")
    assert details.items[0].tax_specific == 10
    assert answer.tab == round(Decimal(650) * Decimal("2.5") + Decimal("11.8"))


async def test_information_api(emecef: Emecef) -> None:
    async with emecef.client() as client:
        status = await client.status()
        info = await client.info_status()
        groups = await client.tax_groups()
        types = await client.invoice_types()
        payments = await client.payment_types()
    assert status.status and status.nim == "TS01000001" and status.ifu == emecef.settings.ifu
    assert status.token_valid is not None
    assert abs(status.token_valid - emecef.settings.token_expires_at) < timedelta(seconds=1)
    assert info.emcf_list[0].nim == "TS01000001" and info.emcf_list[0].status == "Actif"
    assert (groups.a, groups.b, groups.c, groups.d, groups.e, groups.f, groups.aib_a, groups.aib_b) == (
        0,
        18,
        0,
        18,
        0,
        0,
        1,
        5,
    )
    assert [t.type for t in types] == ["FV", "FA", "EV", "EA"]
    assert [p.type for p in payments] == [
        "ESPECES",
        "CHEQUES",
        "MOBILEMONEY",
        "CARTEBANCAIRE",
        "VIREMENT",
        "CREDIT",
        "AUTRE",
    ]


async def test_put_is_canonical_and_post_is_accepted_for_finalisation(emecef: Emecef) -> None:
    headers = {"Authorization": f"Bearer {emecef.settings.token.get_secret_value()}"}
    async with httpx.AsyncClient(
        base_url=emecef.connection.base_url, transport=emecef.connection.transport, headers=headers
    ) as raw:
        first = (await raw.post("/api/invoice", json=_raw(emecef))).json()["uid"]
        second = (await raw.post("/api/invoice", json=_raw(emecef))).json()["uid"]
        assert (await raw.put(f"/api/invoice/{first}/confirm")).json()["counters"] == "1/1 FV"
        assert (await raw.post(f"/api/invoice/{second}/cancel")).json()["codeMECeFDGI"] == ""
        empty = await raw.post("/api/invoice", content=b"")
        assert empty.status_code == 400


async def test_reconcile_never_finalises_a_request_holding_another_invoice(emecef: Emecef) -> None:
    async with emecef.client() as client:
        other = await client.submit(
            _raw(emecef, items=[{"name": "Autre", "price": 5, "quantity": 1, "taxGroup": "A"}])
        )
    result = await emecef.driver.reconcile(
        official_example(), emecef.settings, emecef.connection, {"uid": other.uid}
    )
    assert result.status == "unknown" and "different invoice" in result.detail
    assert str(other.uid) in emecef.platform.pending


ALL_PATHS = [
    ("GET", "/api/invoice"),
    ("POST", "/api/invoice"),
    ("GET", "/api/invoice/0b6f6b1e-0000-4000-8000-000000000000"),
    ("PUT", "/api/invoice/0b6f6b1e-0000-4000-8000-000000000000/confirm"),
    ("PUT", "/api/invoice/0b6f6b1e-0000-4000-8000-000000000000/cancel"),
    ("GET", "/api/info/status"),
    ("GET", "/api/info/taxGroups"),
    ("GET", "/api/info/invoiceTypes"),
    ("GET", "/api/info/paymentTypes"),
]


async def test_every_endpoint_wants_this_e_mcfs_token(emecef: Emecef) -> None:
    good = emecef.settings.token.get_secret_value()
    wrong_secret = mint_token(emecef.settings.ifu, "TS01000001", "another-secret-of-at-least-32-bytes-long")
    other_emcf = mint_token(emecef.settings.ifu, "TS01000002", emecef.platform.token_secret)
    async with httpx.AsyncClient(
        base_url=emecef.connection.base_url, transport=emecef.connection.transport
    ) as raw:
        for method, path in ALL_PATHS:
            body = _raw(emecef) if method == "POST" else None
            for header in (
                {},
                {"Authorization": good},
                {"Authorization": f"Bearer {wrong_secret}"},
                {"Authorization": f"Bearer {other_emcf}"},
            ):
                answer = await raw.request(method, path, json=body, headers=header)
                assert answer.status_code == 401, (method, path, header)
            answer = await raw.request(method, path, json=body, headers={"Authorization": f"Bearer {good}"})
            assert answer.status_code == 200, (method, path)
    assert emecef.platform.pending  # the authorised POST went through


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b"null", b'{"ifu": "0202300000001", "items": [{"name": "x", "price": "abc"}]}'],
    ids=["syntax", "array", "null", "wrong-type"],
)
async def test_a_body_that_does_not_bind_is_http_400_and_records_nothing(
    emecef: Emecef, content: bytes
) -> None:
    headers = {
        "Authorization": f"Bearer {emecef.settings.token.get_secret_value()}",
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient(
        base_url=emecef.connection.base_url, transport=emecef.connection.transport, headers=headers
    ) as raw:
        answer = await raw.post("/api/invoice", content=content)
    assert answer.status_code == 400
    assert answer.json()["title"] == "One or more validation errors occurred."
    assert emecef.platform.pending == {}


async def test_certifying_with_a_token_about_to_expire_warns(emecef: Emecef) -> None:
    token = mint_token(
        emecef.settings.ifu, "TS01000001", emecef.platform.token_secret, lifetime=timedelta(days=5)
    )
    settings = emecef.settings.model_copy(update={"token": SecretStr(token)})
    cert = await emecef.driver.certify(official_example(), settings, emecef.connection)
    assert [n.code for n in cert.notices] == ["emecef.token_expires_soon"]
