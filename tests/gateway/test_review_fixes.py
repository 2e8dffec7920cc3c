"""Behaviour around the fixes of the issue-5 review that `test_review_issue5.py` does not pin:
the edges of the claim lease, of the secret masking, of the environment rules and of the
authority inference."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import InvoiceRejected, Problem
from fiscalgate.gateway.certification.by_hand import resolve_by_hand
from fiscalgate.gateway.certification.claim import Attempt, claim
from fiscalgate.gateway.certification.outcome import Outcome
from fiscalgate.gateway.certification.record import record_outcome
from fiscalgate.gateway.invoices import lifecycle
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.schemas import ReconcileRequest
from fiscalgate.gateway.tenants.service import Caller
from tests.gateway.conftest import (
    FAKE_SETTINGS,
    gateway,
    mock_settings,
    new_tenant,
    real_invoice,
    real_tenant,
    sample_invoice,
)
from tests.gateway.fake_driver import FakeDriver
from tests.gateway.gates import Gate, wait_until

pytestmark = pytest.mark.anyio

SECRET = FAKE_SETTINGS["api_key"]


# --- the claim lease ----------------------------------------------------------------------------------
Meanwhile = Callable[[httpx.AsyncClient, str], Awaitable[dict[str, httpx.Response]]]


async def _certification_outliving_its_lease(
    real_app: FastAPI, monkeypatch: pytest.MonkeyPatch, meanwhile: Meanwhile
) -> tuple[dict[str, httpx.Response], dict[str, Any], list[dict[str, Any]], list[str], Any]:
    """An FNE certification whose sign answer arrives after its claim lease (100 ms) ran out;
    `meanwhile(api, invoice path)` runs while it is in flight. Returns every answer (the
    certify's under "certify"), the invoice as it ends, its authority calls and its audit events,
    and the simulator's request counter."""
    monkeypatch.setattr(lifecycle, "claim_lease", lambda _settings: timedelta(milliseconds=100))
    tenant, api, counter, _ = await real_tenant(real_app, "ci-fne")
    gate = Gate(counter, "POST", "/sign")  # the sign answer waits for the test's word
    gateway(real_app).simulators.install(tenant["id"], "ci-fne", gate)
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne"), "approve": True})
        ).json()
        path = f"/v1/invoices/{inv['id']}"
        answers: dict[str, httpx.Response] = {}

        async def certify() -> None:
            answers["certify"] = await api.post(f"{path}/certify")

        async def stale() -> bool:
            detail: str = (await api.get(path)).json()["status_detail"] or ""
            return detail.startswith("stale")

        async with anyio.create_task_group() as tg:
            tg.start_soon(certify)
            with anyio.fail_after(30):
                await gate.arrived.wait()  # the call is on its way...
            await wait_until(stale)  # ...and its lease is over
            answers.update(await meanwhile(api, path))
            gate.release.set()
        final = (await api.get(path)).json()
        audit = (await api.get("/v1/audit", params={"invoice_id": inv["id"]})).json()["items"]
    calls = [e for e in audit if e["kind"] == "authority_call"]
    return answers, final, calls, [e["event"] for e in audit], counter


async def test_a_slow_call_past_its_lease_still_writes_its_reference(
    real_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def look_then_reconcile(api: httpx.AsyncClient, path: str) -> dict[str, httpx.Response]:
        # the user sees a "stale" invoice and reconciles it; FNE has no look-up: it stays unknown
        return {
            "seen": await api.get(path),
            "reconcile": await api.post(f"{path}/reconcile", json={"action": "confirm"}),
        }

    answers, final, _, _, counter = await _certification_outliving_its_lease(
        real_app, monkeypatch, look_then_reconcile
    )
    seen = answers["seen"].json()
    assert seen["status"] == "submitting" and seen["status_detail"].startswith("stale")
    assert answers["reconcile"].status_code == 409  # still unknown: never a 2xx
    assert answers["reconcile"].json()["invoice_status"] == "unknown"
    # the live caller finished after all: its reference lands, nothing was signed twice
    assert answers["certify"].status_code == 200, answers["certify"].text
    assert final["status"] == "certified" and final["reference"]
    assert counter.count("POST") == 1


@pytest.mark.parametrize(
    ("resolution", "final_status", "certify_status"),
    [
        # the user wrongly declared it not certified: the authority's late answer is the fact
        ({"action": "not_certified", "note": "not seen on the portal"}, "certified", 200),
        # the user recorded a reference by hand: it stands; the late answer goes to the audit log
        ({"action": "record_reference", "reference": "PORTAL-0001"}, "certified", 409),
    ],
    ids=["over-not-certified", "after-record-reference"],
)
async def test_a_late_answer_after_a_resolution_by_hand(
    real_app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
    resolution: dict[str, str],
    final_status: str,
    certify_status: int,
) -> None:
    async def resolve_by_hand(api: httpx.AsyncClient, path: str) -> dict[str, httpx.Response]:
        return {"by_hand": await api.post(f"{path}/reconcile", json=resolution)}

    answers, final, calls, events, counter = await _certification_outliving_its_lease(
        real_app, monkeypatch, resolve_by_hand
    )
    assert answers["by_hand"].status_code == 200, answers["by_hand"].text
    assert answers["certify"].status_code == certify_status, answers["certify"].text
    assert final["status"] == final_status
    assert counter.count("POST") == 1 and [c["method"] for c in calls] == ["POST"]  # audited either way
    if certify_status == 409:
        assert answers["certify"].json()["code"] == "invoice.claim_lost"
        assert final["reference"] == "PORTAL-0001" and "invoice.certify.claim_lost" in events
    else:
        assert final["reference"] and final["reference"] != "PORTAL-0001"


async def test_a_claim_within_its_lease_is_not_taken_away(fake_app: FastAPI) -> None:
    tenant, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})).json()
        assert gateway(fake_app).db.call(claim, tenant["id"], inv["id"], "alive", lifecycle.CERTIFIABLE)
        r = await api.post(f"/v1/invoices/{inv['id']}/reconcile", json={"action": "not_certified"})
        assert r.status_code == 409 and r.json()["code"] == "invoice.cannot_reconcile.submitting"
        shown = (await api.get(f"/v1/invoices/{inv['id']}")).json()
    assert shown["status"] == "submitting" and not (shown["status_detail"] or "").startswith("stale")


# --- secrets --------------------------------------------------------------------------------------------
async def test_secrets_in_authority_messages_and_problems_are_masked_without_touching_the_driver_error(
    fake_app: FastAPI, fakes: dict[str, FakeDriver]
) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    error = InvoiceRejected(
        f"refused for key {SECRET}",
        authority="ci-fne",
        authority_message=f"clé {SECRET} refusée",
        problems=[Problem("buyer.name", "echo", f"header was {SECRET}", expected=SECRET)],
        raw={"echo": SECRET},
    )
    fakes["ci-fne"].explode = error
    async with api:
        inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})).json()
        answer = await api.post(f"/v1/invoices/{inv['id']}/certify")
        stored = await api.get(f"/v1/invoices/{inv['id']}")
    assert answer.status_code == 422 and stored.json()["status"] == "rejected"
    for text in (answer.text, stored.text):
        assert SECRET not in text
    body = answer.json()
    assert body["authority_message"].startswith("clé fake") and body["problems"][0]["field"] == "buyer.name"
    # the driver's own object is left as it was (it may be raised again elsewhere)
    assert SECRET in error.message and error.problems[0].expected == SECRET


# --- environments -------------------------------------------------------------------------------------
LIVE_FNE = {
    **mock_settings("ci-fne"),
    "environment": "production",
    "production_url": "https://www.services.fne.dgi.gouv.ci/ws",
    "api_key": "LIVEkey0123456789abcdefghijklmnop",
}


@pytest.mark.parametrize("target", ["sandbox", "mock"])
async def test_leaving_production_takes_the_new_secrets(real_app: FastAPI, target: str) -> None:
    _, api = await new_tenant(real_app, country="CI", settings={"ci-fne": LIVE_FNE})
    async with api:
        masked = (await api.get("/v1/settings/ci-fne")).json()["settings"]["api_key"]
        refused = await api.put("/v1/settings/ci-fne", json={"environment": target, "api_key": masked})
        kept = await api.get("/v1/settings/ci-fne")
        fresh = await api.put(
            "/v1/settings/ci-fne", json={"environment": target, "api_key": "TESTkey-0123456789"}
        )
        # staying in production still keeps the stored key when it is not sent
        _, api2 = await new_tenant(real_app, country="CI", settings={"ci-fne": LIVE_FNE})
        async with api2:
            stay = await api2.put("/v1/settings/ci-fne", json={"timeout_seconds": 20})
    assert refused.status_code == 422 and refused.json()["code"] == "settings.secrets_required"
    assert kept.json()["environment"] == "production"  # nothing was saved
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["environment"] == target and fresh.json()["settings"]["api_key"].startswith("TEST")
    assert stay.status_code == 200 and stay.json()["settings"]["api_key"].startswith("LIVE")


async def test_an_invoice_sent_to_another_environment_can_still_be_resolved_by_hand(
    real_app: FastAPI,
) -> None:
    _, api, _, injector = await real_tenant(real_app, "cg-sfec", timeout_seconds=0.3, max_attempts=1)
    injector.add("hang_after_processing", path="/certify")
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice("cg-sfec"), "approve": True})
        ).json()
        await api.post(f"/v1/invoices/{inv['id']}/certify")
        before = (await api.get(f"/v1/invoices/{inv['id']}")).json()
        await api.put(
            "/v1/settings/cg-sfec", json={"environment": "sandbox", "base_url": "http://127.0.0.1:9"}
        )
        refused = await api.post(f"/v1/invoices/{inv['id']}/reconcile", json={"action": "confirm"})
        after = (await api.get(f"/v1/invoices/{inv['id']}")).json()
        by_hand = await api.post(
            f"/v1/invoices/{inv['id']}/reconcile",
            json={"action": "record_reference", "reference": "SFEC-PORTAL-1"},
        )
    body = refused.json()
    assert (refused.status_code, body["code"]) == (422, "reconcile.environment_changed")
    assert (body["invoice_id"], body["invoice_status"]) == (inv["id"], "unknown")
    # the refused reconcile changed nothing: same attempts, same error, same environment
    assert (after["attempts"], after["error"], after["environment"]) == (
        before["attempts"],
        before["error"],
        "mock",
    )
    assert by_hand.status_code == 200 and by_hand.json()["status"] == "certified"


# --- authority inference ---------------------------------------------------------------------------
async def test_the_currency_picks_between_configured_authorities(real_app: FastAPI) -> None:
    _, api = await new_tenant(
        real_app,
        country="CI",
        modules=("fne", "sfec"),
        settings={"ci-fne": mock_settings("ci-fne"), "cg-sfec": mock_settings("cg-sfec")},
    )
    async with api:
        xaf = await api.post("/v1/invoices", json={"invoice": real_invoice("cg-sfec")})
        xof = await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne")})
    assert xaf.status_code == 201 and xaf.json()["authority"] == "cg-sfec"
    assert xof.status_code == 201 and xof.json()["authority"] == "ci-fne"


async def test_an_ambiguous_authority_is_refused_with_the_candidates(real_app: FastAPI) -> None:
    both = {"ci-fne": mock_settings("ci-fne"), "bj-emecef": mock_settings("bj-emecef")}
    _, api = await new_tenant(real_app, country="CI", modules=("fne", "mecef"), settings=both)
    _, bare = await new_tenant(real_app, country="CI", modules=("fne", "mecef"))
    async with api, bare:
        several = await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne")})
        off = await api.put("/v1/settings/bj-emecef", json={"active": False})
        one = await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne")})
        none = await bare.post("/v1/invoices", json={"invoice": real_invoice("ci-fne")})
    assert several.status_code == 422 and several.json()["code"] == "invoice.authority_required"
    assert "ci-fne" in several.json()["message"] and "bj-emecef" in several.json()["message"]
    assert off.status_code == 200
    assert one.status_code == 201 and one.json()["authority"] == "ci-fne"  # inactive settings do not count
    assert none.status_code == 422 and "active settings" in none.json()["message"]


async def test_creating_an_approved_invoice_without_settings_is_still_allowed(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app)
    bad = sample_invoice(buyer={"kind": "individual", "name": "INVALID"})
    async with api:
        r = await api.post("/v1/invoices", json={"invoice": bad, "approve": True, "authority": "ci-fne"})
    assert r.status_code == 201 and r.json()["status"] == "approved"


# --- credit notes ----------------------------------------------------------------------------------------
async def test_a_refused_credit_note_edit_leaves_delete_and_recreate(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})).json()
        original = (await api.post(f"/v1/invoices/{inv['id']}/certify")).json()
        credit = (
            await api.post(f"/v1/invoices/{original['id']}/credit-notes", json={"number": "AV-1"})
        ).json()
        edit = await api.put(f"/v1/invoices/{credit['id']}", json={"invoice": credit["invoice"]})
        deleted = await api.delete(f"/v1/invoices/{credit['id']}")
        again = await api.post(f"/v1/invoices/{original['id']}/credit-notes", json={"number": "AV-1"})
    assert (edit.status_code, edit.json()["code"]) == (409, "invoice.credit_note_fixed")
    assert (edit.json()["invoice_id"], edit.json()["invoice_status"]) == (credit["id"], "draft")
    assert deleted.status_code == 204 and again.status_code == 201


# --- a reference taken by a concurrent transaction --------------------------------------------------------
async def test_an_answered_reference_held_by_a_concurrent_invoice_leaves_ours_unknown(
    fake_app: FastAPI,
) -> None:
    tenant, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    ids = []
    async with api:
        for _ in range(2):
            r = await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})
            ids.append(r.json()["id"])
    gw = gateway(fake_app)

    def setup(session: Any) -> None:
        session.execute(update(InvoiceRow).where(InvoiceRow.id == ids[0]).values(status="unknown"))
        session.execute(update(InvoiceRow).where(InvoiceRow.id.in_(ids)).values(environment="mock"))

    gw.db.call(setup)
    assert gw.db.call(claim, tenant["id"], ids[1], "ours", lifecycle.CERTIFIABLE)
    reference = "9606123E26000000077"
    cert = Certification(
        authority="ci-fne",
        environment="mock",
        reference=reference,
        qr_content=f"https://verify.fake/{reference}",
        certified_at=datetime.now(UTC),
        totals={"total_excl_tax": Decimal(0), "total_tax": Decimal(0), "total": Decimal(0)},
    )
    held, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def by_hand() -> None:  # holds the reference, uncommitted, while our answer arrives
        try:
            with gw.db.sessions.begin() as session:
                body = ReconcileRequest(action="record_reference", reference=reference)
                resolve_by_hand(session, Caller(tenant["id"], "api_key:t"), tenant["id"], ids[0], body)
                held.set()
                release.wait(5)
        finally:
            held.set()

    def finish() -> None:
        try:
            outcome = Outcome("certified", "certified", certification=cert)
            row = gw.db.call(
                record_outcome,
                gw.box,
                Attempt(tenant["id"], ids[1], "api_key:t", "invoice.certify", lifecycle.CERTIFIABLE, "ours"),
                outcome,
                None,
                None,
            )
            results["status"], results["detail"] = row.status, row.status_detail
        except Exception as exc:
            results["error"] = repr(exc)

    a = threading.Thread(target=by_hand)
    a.start()
    held.wait(5)
    b = threading.Thread(target=finish)
    b.start()
    b.join(0.3)
    release.set()
    a.join(10)
    b.join(10)
    assert results.get("status") == "unknown", results
    assert reference in results["detail"]


# --- minor answers -----------------------------------------------------------------------------------
async def test_a_refusal_names_the_invoice_and_its_status(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice()})).json()
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
    body = r.json()
    assert (r.status_code, body["code"]) == (409, "invoice.cannot_certify.draft")
    assert (body["invoice_id"], body["invoice_status"]) == (inv["id"], "draft")


async def test_a_replayed_answer_keeps_the_already_certified_header(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})).json()
        path = f"/v1/invoices/{inv['id']}/certify"
        fresh = await api.post(path, headers={"Idempotency-Key": "c-1"})
        fresh_replayed = await api.post(path, headers={"Idempotency-Key": "c-1"})
        again = await api.post(path, headers={"Idempotency-Key": "c-2"})  # already certified
        again_replayed = await api.post(path, headers={"Idempotency-Key": "c-2"})
    assert "Fiscalgate-Already-Certified" not in fresh.headers
    assert "Fiscalgate-Already-Certified" not in fresh_replayed.headers
    assert fresh_replayed.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Fiscalgate-Already-Certified"] == "true"
    assert again_replayed.headers["Fiscalgate-Already-Certified"] == "true"
    assert again_replayed.headers["Idempotent-Replayed"] == "true"
    assert again_replayed.json() == again.json()
