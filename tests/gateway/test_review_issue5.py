"""Independent review of the gateway against issue 5.

Each test in the first groups pinned one confirmed defect (then marked `xfail(strict=True)`); the
defects are fixed and the marks removed, so these now guard against their return. The last group
pins behaviour that was correct but untested.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from fiscalgate.core.errors import ConfigurationError
from fiscalgate.gateway.api.models import IdempotencyRecord
from fiscalgate.gateway.certification.claim import claim as _claim
from fiscalgate.gateway.countries import normalise_country
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.invoices.credit_notes import create_credit_note
from fiscalgate.gateway.invoices.lifecycle import CERTIFIABLE
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.schemas import CreditNoteCreate
from fiscalgate.gateway.tenants.service import Caller
from fiscalgate.simkit.serve import free_port
from tests.gateway.conftest import (
    ADMIN,
    FAKE_SETTINGS,
    client,
    gateway,
    mock_settings,
    new_tenant,
    real_invoice,
    real_tenant,
    sample_invoice,
)
from tests.gateway.fake_driver import FakeDriver
from tests.gateway.gates import Gate

pytestmark = pytest.mark.anyio

SECRET = FAKE_SETTINGS["api_key"]


async def _certified(api: httpx.AsyncClient, authority: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"approve": True}
    body["invoice"] = real_invoice(authority) if authority else sample_invoice()
    r = await api.post("/v1/invoices", json=body)
    assert r.status_code == 201, r.text
    r = await api.post(f"/v1/invoices/{r.json()['id']}/certify")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "certified"
    return r.json()


def _backdate(app: FastAPI, model: Any, column: str, row_filter: Any) -> None:
    """Time travel: pretend a row was last touched a day ago (a lease or expiry would have run out)."""

    def work(session: Any) -> None:
        session.execute(update(model).where(row_filter).values({column: utcnow() - timedelta(days=1)}))

    gateway(app).db.call(work)


# --- failure and crash paths ----------------------------------------------------------------------
async def test_a_claim_left_by_a_crashed_process_can_be_resolved(make_app: Callable[..., FastAPI]) -> None:
    first = make_app()
    tenant, api, counter, _ = await real_tenant(first, "ci-fne")
    async with api:
        r = await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne"), "approve": True})
        inv = r.json()
    # A certify claimed the row, then the process died (kill -9, OOM, deploy) before writing any
    # outcome. The authority may well have certified it: FNE burns a number on every sign.
    assert gateway(first).db.call(_claim, tenant["id"], inv["id"], "dead-process", CERTIFIABLE)
    _backdate(first, InvoiceRow, "claim_expires_at", InvoiceRow.id == inv["id"])  # its expiry has passed

    restarted = make_app()
    async with client(restarted, tenant["key"]) as api:
        # never a blind resend...
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert r.status_code == 409, r.text
        # ...but a day later the user, having checked the FNE portal, must be able to say what happened
        r = await api.post(
            f"/v1/invoices/{inv['id']}/reconcile",
            json={"action": "not_certified", "note": "not on the portal"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "failed"
    assert counter.count("POST") == 0


async def test_an_abandoned_idempotency_key_does_not_block_its_retry_forever(fake_app: FastAPI) -> None:
    tenant, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    body = json.dumps({"invoice": sample_invoice("POS-42")}).encode()
    headers = {"Idempotency-Key": "pos-42", "Content-Type": "application/json"}
    # The first attempt claimed the key, then its process died before answering.
    scope = hashlib.sha256(f"Bearer {tenant['key']}".encode()).hexdigest()
    digest = hashlib.sha256(b"\n".join([b"POST", b"/v1/invoices", b"", body])).hexdigest()

    def claim(session: Any) -> None:
        session.add(
            IdempotencyRecord(
                scope=scope, key="pos-42", request_hash=digest, method="POST", path="/v1/invoices"
            )
        )

    gateway(fake_app).db.call(claim)
    _backdate(fake_app, IdempotencyRecord, "created_at", IdempotencyRecord.key == "pos-42")
    async with api:
        r = await api.post("/v1/invoices", content=body, headers=headers)
    assert r.status_code == 201, r.text


async def test_a_revoked_key_gets_no_idempotent_replay(fake_app: FastAPI) -> None:
    tenant, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    body = {"invoice": sample_invoice("IDEM-REVOKED")}
    async with api:
        r = await api.post("/v1/invoices", json=body, headers={"Idempotency-Key": "k1"})
        assert r.status_code == 201
        async with client(fake_app, ADMIN) as adm:
            keys = (await adm.get(f"/v1/admin/tenants/{tenant['id']}/api-keys")).json()["items"]
            assert (await adm.delete(f"/v1/admin/tenants/{tenant['id']}/api-keys/{keys[0]['id']}")).is_success
        assert (
            await api.post("/v1/invoices", json=body, headers={"Idempotency-Key": "k2"})
        ).status_code == 401
        r = await api.post("/v1/invoices", json=body, headers={"Idempotency-Key": "k1"})
    assert r.status_code == 401, r.text
    assert "IDEM-REVOKED" not in r.text


async def test_a_rate_limited_certify_can_be_retried_with_its_idempotency_key(real_app: FastAPI) -> None:
    _, api, counter, injector = await real_tenant(real_app, "ci-fne")
    injector.add("error", status=429, path="/sign", body={"message": "Too Many Requests"})
    headers = {"Idempotency-Key": "certify-F-1"}
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne"), "approve": True})
        ).json()
        first = await api.post(f"/v1/invoices/{inv['id']}/certify", headers=headers)
        assert first.status_code == 429 and first.json()["retryable"] is True
        retry = await api.post(f"/v1/invoices/{inv['id']}/certify", headers=headers)
    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "certified"
    assert counter.count("POST") == 2


async def test_an_in_progress_answer_is_not_replayed_after_the_certification(real_app: FastAPI) -> None:
    tenant, api, counter, _ = await real_tenant(real_app, "ci-fne")
    gate = Gate(counter, "POST", "/sign")
    gateway(real_app).simulators.install(tenant["id"], "ci-fne", gate)
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne"), "approve": True})
        ).json()
        path = f"/v1/invoices/{inv['id']}/certify"
        answers: dict[str, httpx.Response] = {}

        async def erp() -> None:  # another client certifies it first
            answers["erp"] = await api.post(path)

        async with anyio.create_task_group() as tg:
            tg.start_soon(erp)
            with anyio.fail_after(30):
                await gate.arrived.wait()  # the ERP's call holds the claim, its answer not back
            answers["till"] = await api.post(path, headers={"Idempotency-Key": "till-7"})
            gate.release.set()
        assert answers["erp"].status_code == 200
        assert answers["till"].status_code == 409
        # the till retries its request, as told, with the same key
        retry = await api.post(path, headers={"Idempotency-Key": "till-7"})
    assert retry.status_code == 200, retry.text
    assert retry.json()["reference"] == answers["erp"].json()["reference"]


# --- secrets ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "error",
    [
        # what authorities/http.send raises for h11's LocalProtocolError: it quotes the header value
        ConfigurationError(
            f"ci-fne: cannot build the request POST /sign: Illegal header value b'Bearer {SECRET}\\x7f'; "
            "check the settings (key, token, URL)",
            code="settings.unusable",
        ),
        RuntimeError(f"unexpected answer to Authorization: Bearer {SECRET}"),  # a driver bug
    ],
    ids=["configuration-error", "driver-bug"],
)
async def test_a_secret_inside_an_error_message_is_masked(
    fake_app: FastAPI, fakes: dict[str, FakeDriver], error: Exception
) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    fakes["ci-fne"].explode = error
    async with api:
        inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})).json()
        answer = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert answer.status_code >= 400
        stored = await api.get(f"/v1/invoices/{inv['id']}")
        audit = await api.get("/v1/audit", params={"invoice_id": inv["id"]})
    for text in (answer.text, stored.text, audit.text):
        assert SECRET not in text


async def test_changing_environment_does_not_carry_the_live_key_over(real_app: FastAPI) -> None:
    live = {
        **mock_settings("ci-fne"),
        "environment": "production",
        "production_url": "https://www.services.fne.dgi.gouv.ci/ws",
        "api_key": "LIVEkey0123456789abcdefghijklmnop",
    }
    _, api = await new_tenant(real_app, country="CI", settings={"ci-fne": live})
    async with api:
        r = await api.put("/v1/settings/ci-fne", json={"environment": "sandbox"})
    assert r.status_code == 422, r.text
    assert "api_key" in [p["field"] for p in r.json()["problems"]]


# --- environments -----------------------------------------------------------------------------------
def _closed_local_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there: any call is refused at once


async def test_a_credit_note_goes_to_the_environment_of_its_original(real_app: FastAPI) -> None:
    _, api, _, _ = await real_tenant(real_app, "cg-sfec", max_attempts=1)
    async with api:
        original = await _certified(api, "cg-sfec")
        assert original["environment"] == "mock"
        # the tenant moves on to the official test platform (a local stand-in here)
        r = await api.put(
            "/v1/settings/cg-sfec", json={"environment": "sandbox", "base_url": _closed_local_url()}
        )
        assert r.status_code == 200, r.text
        credit = await api.post(
            f"/v1/invoices/{original['id']}/credit-notes", json={"number": "AV-ENV-1", "approve": True}
        )
        assert credit.status_code == 201, credit.text
        r = await api.post(f"/v1/invoices/{credit.json()['id']}/certify")
        calls = (
            await api.get("/v1/audit", params={"invoice_id": credit.json()["id"], "kind": "authority_call"})
        ).json()["items"]
    # refused before sending, saying the original lives in `mock`
    assert r.status_code in (409, 422), r.text
    assert "mock" in r.json()["message"]
    assert calls == []


async def test_reconcile_asks_the_environment_the_call_went_to(real_app: FastAPI) -> None:
    _, api, _, injector = await real_tenant(real_app, "cg-sfec", timeout_seconds=0.3, max_attempts=1)
    injector.add("hang_after_processing", path="/certify")
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice("cg-sfec"), "approve": True})
        ).json()
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert r.status_code == 504 and r.json()["invoice_status"] == "unknown"
        r = await api.put(
            "/v1/settings/cg-sfec", json={"environment": "sandbox", "base_url": _closed_local_url()}
        )
        assert r.status_code == 200, r.text

        await api.post(f"/v1/invoices/{inv['id']}/reconcile", json={"action": "confirm"})
        after = (await api.get(f"/v1/invoices/{inv['id']}")).json()
        calls = (
            await api.get("/v1/audit", params={"invoice_id": inv["id"], "kind": "authority_call"})
        ).json()["items"]
    assert after["status"] == "unknown"
    assert after["environment"] == "mock"  # where the uncertain call went
    assert {c["environment"] for c in calls} == {"mock"}  # nobody asked the sandbox about it


# --- concurrency --------------------------------------------------------------------------------------
async def test_two_concurrent_full_credit_notes_credit_the_original_once(
    fake_app: FastAPI, database_url: str
) -> None:
    tenant, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        original = await _certified(api)
    gw = gateway(fake_app)
    who = Caller(tenant["id"], "api_key:review")
    first_done, release = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def contender(name: str, hold: bool) -> None:
        try:
            with gw.db.sessions.begin() as session:
                create_credit_note(session, who, tenant["id"], original["id"], CreditNoteCreate(number=name))
                if hold:  # stay inside the transaction while the other one runs
                    first_done.set()
                    release.wait(5)
            outcomes[name] = "created"
        except Exception as exc:  # whatever the refusal (InvoiceError, Conflict...), it is one
            outcomes[name] = type(exc).__name__
        finally:
            first_done.set()

    a = threading.Thread(target=contender, args=("AV-A", True))
    b = threading.Thread(target=contender, args=("AV-B", False))
    a.start()
    first_done.wait(5)
    b.start()
    b.join(0.3)  # on PostgreSQL B finishes at once; with a lock it waits for A
    release.set()
    a.join(10)
    b.join(10)
    assert sorted(outcomes.values()).count("created") == 1, outcomes


async def test_two_hand_recorded_references_cannot_collide(fake_app: FastAPI, database_url: str) -> None:
    from fiscalgate.gateway.certification.by_hand import resolve_by_hand as _resolve_by_hand
    from fiscalgate.gateway.errors import Conflict
    from fiscalgate.gateway.invoices.schemas import ReconcileRequest

    tenant, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    ids = []
    async with api:
        for _ in range(2):
            r = await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})
            ids.append(r.json()["id"])
    gw = gateway(fake_app)

    def unknown(session: Any) -> None:  # both had a timeout after sending
        session.execute(
            update(InvoiceRow).where(InvoiceRow.id.in_(ids)).values(status="unknown", environment="mock")
        )

    gw.db.call(unknown)
    who = Caller(tenant["id"], "api_key:review")
    body = ReconcileRequest(action="record_reference", reference="9606123E26000000042")
    first_done, release = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def contender(invoice_id: str, hold: bool) -> None:
        try:
            with gw.db.sessions.begin() as session:
                _resolve_by_hand(session, who, tenant["id"], invoice_id, body)
                if hold:
                    first_done.set()
                    release.wait(5)
            outcomes[invoice_id] = "certified"
        except Conflict:
            outcomes[invoice_id] = "conflict"
        except Exception as exc:  # the defect: a database error instead of the API's Conflict
            outcomes[invoice_id] = type(exc).__name__
        finally:
            first_done.set()

    a = threading.Thread(target=contender, args=(ids[0], True))
    b = threading.Thread(target=contender, args=(ids[1], False))
    a.start()
    first_done.wait(5)
    b.start()
    b.join(0.3)
    release.set()
    a.join(10)
    b.join(10)
    assert sorted(outcomes.values()) == ["certified", "conflict"], outcomes


async def test_the_authority_is_picked_from_the_configured_settings(real_app: FastAPI) -> None:
    _, api = await new_tenant(
        real_app, country="CI", modules=("fne", "mecef"), settings={"ci-fne": mock_settings("ci-fne")}
    )
    async with api:
        r = await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne")})
    assert r.status_code == 201, r.text
    assert r.json()["authority"] == "ci-fne"


@pytest.mark.parametrize(
    "change",
    [
        {
            "lines": [
                {"description": "Riz 25 kg", "quantity": "50", "unit_price": "15000", "original_line": 1}
            ]
        },
        {"original": {"number": "ANOTHER-INVOICE", "reference": "REF999999"}},
    ],
    ids=["quantity-beyond-the-original", "another-original"],
)
async def test_editing_a_credit_note_keeps_the_credit_note_rules(
    fake_app: FastAPI, change: dict[str, Any]
) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        original = await _certified(api)  # line 1: quantity 2
        r = await api.post(
            f"/v1/invoices/{original['id']}/credit-notes",
            json={"number": "AV-1", "lines": [{"original_line": 1, "quantity": "1"}]},
        )
        credit = r.json()
        edited = await api.put(
            f"/v1/invoices/{credit['id']}", json={"invoice": {**credit["invoice"], **change}}
        )
    # (FNE and e-MECeF refuse a cumulative over-credit themselves; the gateway promises to refuse it first)
    assert edited.status_code in (409, 422), edited.text


# --- precise errors and filters -------------------------------------------------------------------
async def test_a_settings_error_names_the_settings_field(real_app: FastAPI) -> None:
    _, api = await new_tenant(real_app, country="CG")
    async with api:
        r = await api.put(
            "/v1/settings/cg-sfec", json=mock_settings("cg-sfec", base_url="https://api.sfec.gouv.cg")
        )
    assert r.status_code == 422
    assert [p["field"] for p in r.json()["problems"]] == ["base_url"]


async def test_the_audit_filter_accepts_the_authority_aliases(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        await _certified(api)
        canonical = (
            await api.get("/v1/audit", params={"authority": "ci-fne", "kind": "authority_call"})
        ).json()["items"]
        assert len(canonical) == 1
        alias = await api.get("/v1/audit", params={"authority": "fne", "kind": "authority_call"})
    assert alias.status_code == 200 and alias.json()["items"] == canonical


async def test_the_audit_log_keeps_the_order_of_the_calls(real_app: FastAPI) -> None:
    _, api, _, injector = await real_tenant(real_app, "bj-emecef")
    injector.add("latency", seconds=0.05, path="/api/invoice", method="POST")
    async with api:
        inv = await _certified(api, "bj-emecef")
        calls = (
            await api.get("/v1/audit", params={"invoice_id": inv["id"], "kind": "authority_call"})
        ).json()["items"]
    by_method = {c["method"]: c for c in calls}
    assert set(by_method) == {"POST", "PUT"}  # submit, then confirm
    assert by_method["POST"]["created_at"] < by_method["PUT"]["created_at"]


async def test_creating_an_approved_invoice_validates_like_approve(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    bad = sample_invoice(buyer={"kind": "individual", "name": "INVALID"})
    async with api:
        r = await api.post("/v1/invoices", json={"invoice": bad, "approve": True})
    assert r.status_code == 422, r.text
    assert [p["field"] for p in r.json()["problems"]] == ["invoice.buyer.name"]


# --- correct behaviour that had no test --------------------------------------------------------------
@pytest.mark.parametrize(
    "spelling",
    [
        "Congo (Kinshasa)",
        "Congo, Democratic Republic of the",
        "Congo (the Democratic Republic of the)",  # the ISO 3166 English short name
        "Congo (la République démocratique du)",  # the ISO 3166 French short name
        "RD Congo",
        "R.D. Congo",
        "DR Congo",
        "République Démocratique du Congo (RDC)",
        "Zaïre",
    ],
)
def test_no_spelling_of_the_drc_ever_means_the_republic_of_the_congo(spelling: str) -> None:
    try:
        code = normalise_country(spelling)
    except ValueError:
        return  # refused with the accepted forms: acceptable, the user picks another spelling
    assert code == "CD"


@pytest.mark.parametrize(
    ("spelling", "code"),
    [("Côte d’Ivoire", "CI"), ("CÔTE-D'IVOIRE", "CI"), ("Congo (Brazzaville)", "CG"), ("bénin", "BJ")],
)
def test_typographic_apostrophes_case_and_brackets_are_ignored(spelling: str, code: str) -> None:
    assert normalise_country(spelling) == code


async def test_another_tenants_invoice_cannot_be_used_as_filter_or_credit_original(fake_app: FastAPI) -> None:
    _, api_a = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    _, api_b = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api_a, api_b:
        original = await _certified(api_a)
        await api_a.post(f"/v1/invoices/{original['id']}/credit-notes", json={"number": "AV-A-1"})
        # B learns A's id somehow: every route still answers as if it did not exist
        assert (await api_b.get("/v1/invoices", params={"original_id": original["id"]})).json()["items"] == []
        assert (await api_b.get("/v1/audit", params={"invoice_id": original["id"]})).json()["items"] == []
        r = await api_b.post(f"/v1/invoices/{original['id']}/credit-notes", json={"number": "AV-B-1"})
        assert r.status_code == 404
        # the same Idempotency-Key in both tenants never crosses over
        ra = await api_a.post(
            "/v1/invoices", json={"invoice": sample_invoice("K-A")}, headers={"Idempotency-Key": "shared"}
        )
        rb = await api_b.post(
            "/v1/invoices", json={"invoice": sample_invoice("K-B")}, headers={"Idempotency-Key": "shared"}
        )
        assert (ra.status_code, rb.status_code) == (201, 201)
        assert rb.json()["number"] == "K-B" and "Idempotent-Replayed" not in rb.headers


async def test_a_production_write_cannot_be_replayed_even_after_switching_back_to_mock(
    fake_app: FastAPI,
) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    from fiscalgate.gateway.audit.models import AuditEntry

    async with api:
        await _certified(api)
        entry = (await api.get("/v1/audit", params={"kind": "authority_call"})).json()["items"][0]

        # Mark the recorded call as made in production (as if the tenant had been live then).
        def to_production(session: Any) -> None:
            session.execute(
                update(AuditEntry).where(AuditEntry.id == entry["id"]).values(environment="production")
            )

        gateway(fake_app).db.call(to_production)
        listed = (await api.get(f"/v1/audit/{entry['id']}")).json()
        r = await api.post(f"/v1/audit/{entry['id']}/replay")
    assert listed["replayable"] is False
    assert r.status_code == 403 and r.json()["code"] == "replay.production_write"
