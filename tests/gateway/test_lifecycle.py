"""The invoice lifecycle through the REST API, with the fake authority (see fake_driver.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from tests.gateway.conftest import FAKE_SETTINGS, new_tenant, sample_invoice
from tests.gateway.fake_driver import FakeDriver

pytestmark = pytest.mark.anyio


async def test_create_approve_certify_get(fake_app: FastAPI, fakes: dict[str, FakeDriver]) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        r = await api.post("/v1/invoices", json={"invoice": sample_invoice("F-1")})
        assert r.status_code == 201, r.text
        inv = r.json()
        assert (inv["status"], inv["authority"], inv["number"]) == ("draft", "ci-fne", "F-1")

        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert r.status_code == 409 and r.json()["code"] == "invoice.cannot_certify.draft"

        assert (await api.post(f"/v1/invoices/{inv['id']}/approve")).json()["status"] == "approved"
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["status"] == "certified"
        assert done["reference"] == "REF000001"
        assert done["certification"]["qr_content"] == "https://verify.fake/REF000001"
        assert done["checkpoint"] == {"number": "F-1"}
        assert fakes["ci-fne"].simulators[0].calls == 1

        again = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert again.status_code == 200 and again.headers["Fiscalgate-Already-Certified"] == "true"
        assert again.json()["reference"] == "REF000001"
        assert fakes["ci-fne"].simulators[0].calls == 1, "a certified invoice is never sent again"

        got = (await api.get(f"/v1/invoices/{inv['id']}")).json()
        assert got["status"] == "certified" and got["certification"]["totals"]["total"] == "48000"


async def test_invalid_invoice_reports_every_problem_with_its_path(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app)
    async with api:
        bad = sample_invoice(lines=[{"description": "x", "quantity": "0", "unit_price": "-1"}])
        r = await api.post("/v1/invoices", json={"invoice": bad})
    assert r.status_code == 422
    body = r.json()
    assert body["kind"] == "InvoiceError"
    fields = {p["field"] for p in body["problems"]}
    assert {"invoice.lines[0].quantity", "invoice.lines[0].unit_price"} <= fields


async def test_authority_is_inferred_only_when_unambiguous(fake_app: FastAPI) -> None:
    _, single = await new_tenant(fake_app, country="Bénin")
    _, multi = await new_tenant(fake_app, country="CI", modules=("sfec",))
    async with single, multi:
        r = await single.post("/v1/invoices", json={"invoice": sample_invoice()})
        assert r.status_code == 201 and r.json()["authority"] == "bj-emecef"
        r = await multi.post("/v1/invoices", json={"invoice": sample_invoice()})
        assert r.status_code == 422 and r.json()["code"] == "invoice.authority_required"
        r = await multi.post("/v1/invoices", json={"invoice": sample_invoice(), "authority": "sfec"})
        assert r.status_code == 201 and r.json()["authority"] == "cg-sfec"
        r = await multi.post("/v1/invoices", json={"invoice": sample_invoice(), "authority": "bj-emecef"})
        assert r.status_code == 422 and r.json()["code"] == "settings.authority_unavailable"


async def test_duplicate_number_is_refused(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app)
    async with api:
        assert (await api.post("/v1/invoices", json={"invoice": sample_invoice("D-1")})).status_code == 201
        r = await api.post("/v1/invoices", json={"invoice": sample_invoice("D-1")})
    assert r.status_code == 409 and r.json()["code"] == "invoice.number_taken"


async def test_certified_invoice_is_immutable(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": sample_invoice("I-1"), "approve": True})
        ).json()
        assert (await api.post(f"/v1/invoices/{inv['id']}/certify")).status_code == 200
        r = await api.put(f"/v1/invoices/{inv['id']}", json={"invoice": sample_invoice("I-1")})
        assert r.status_code == 409 and r.json()["code"] == "invoice.cannot_edit.certified"
        r = await api.post(f"/v1/invoices/{inv['id']}/approve")
        assert r.status_code == 409
        r = await api.delete(f"/v1/invoices/{inv['id']}")
        assert r.status_code == 409 and r.json()["code"] == "invoice.cannot_delete.certified"
        assert (await api.get(f"/v1/invoices/{inv['id']}")).json()["status"] == "certified"


async def test_edit_and_delete_a_draft(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app)
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": sample_invoice("E-1"), "approve": True})
        ).json()
        changed = sample_invoice("E-1", notes="corrigée")
        r = await api.put(f"/v1/invoices/{inv['id']}", json={"invoice": changed})
        assert (
            r.status_code == 200
            and r.json()["status"] == "draft"
            and r.json()["invoice"]["notes"] == "corrigée"
        )
        r = await api.put(f"/v1/invoices/{inv['id']}", json={"invoice": sample_invoice("E-2")})
        assert r.status_code == 422 and r.json()["code"] == "invoice.number_fixed"
        assert (await api.delete(f"/v1/invoices/{inv['id']}")).status_code == 204
        assert (await api.get(f"/v1/invoices/{inv['id']}")).status_code == 404


async def test_approve_runs_the_authority_validation(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": sample_invoice(buyer={"name": "INVALID"})})
        ).json()
        r = await api.post(f"/v1/invoices/{inv['id']}/approve")
    assert r.status_code == 422
    assert r.json()["problems"][0]["field"] == "invoice.buyer.name"


async def test_rejection_keeps_the_authority_code_message_and_raw(
    fake_app: FastAPI, fakes: dict[str, FakeDriver]
) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": sample_invoice("REJECT-1"), "approve": True})
        ).json()
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert r.status_code == 422
        body = r.json()
        assert body["kind"] == "InvoiceRejected"
        assert (body["authority_code"], body["authority_message"]) == ("E42", "Facture refusée")
        assert (body["invoice_id"], body["invoice_status"]) == (inv["id"], "rejected")
        stored = (await api.get(f"/v1/invoices/{inv['id']}")).json()
        assert stored["status"] == "rejected"
        assert stored["raw_response"] == {"code": "E42", "message": "Facture refusée"}
        assert stored["error"]["authority_code"] == "E42"
        # A rejected invoice is fixed, approved again and certified.
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert r.status_code == 409 and r.json()["code"] == "invoice.cannot_certify.rejected"


async def test_our_validation_rejects_before_sending(fake_app: FastAPI, fakes: dict[str, FakeDriver]) -> None:
    _, api = await new_tenant(fake_app)
    async with api:
        # approved before settings exist, so approve could not validate
        inv = (
            await api.post(
                "/v1/invoices", json={"invoice": sample_invoice(buyer={"name": "INVALID"}), "approve": True}
            )
        ).json()
        assert (await api.put("/v1/settings/ci-fne", json=FAKE_SETTINGS)).status_code == 200
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
    assert r.status_code == 422 and r.json()["kind"] == "InvoiceError"
    assert r.json()["invoice_status"] == "rejected"
    # The driver's own message, field by field (the driver validates: the gateway does not again).
    problems = [(p["field"], p["rule"], p["message"]) for p in r.json()["problems"]]
    assert problems == [("buyer.name", "fake_rule", "this buyer is refused by the fake authority")]
    assert not fakes["ci-fne"].simulators or fakes["ci-fne"].simulators[0].calls == 0

    from sqlalchemy import select

    from fiscalgate.gateway.audit.models import AuditEntry
    from fiscalgate.gateway.invoices.models import InvoiceRow

    def read(session: Any) -> tuple[tuple[Any, ...], list[tuple[str, str | None, Any]]]:
        row = session.get(InvoiceRow, inv["id"])
        state = (row.status, row.claim_token, row.claim_holder, row.reference, row.error["code"])
        entries = session.execute(
            select(AuditEntry.kind, AuditEntry.event, AuditEntry.detail).where(
                AuditEntry.invoice_id == inv["id"]
            )
        ).all()
        return state, [tuple(e) for e in entries]

    state, entries = await fake_app.state.gateway.db.read(read)
    # Rejected, with no claim left over, and nothing sent: no authority_call in the audit log, only
    # the lifecycle events (created, then the certify attempt that ended rejected).
    assert state == ("rejected", None, None, None, "invoice.invalid.fake_rule")
    assert [kind for kind, _, _ in entries if kind == "authority_call"] == []
    certify_events = [detail for kind, event, detail in entries if event == "invoice.certify"]
    assert certify_events and certify_events[-1]["status"] == "rejected"
    assert certify_events[-1]["error"] == "invoice.invalid.fake_rule"


@pytest.mark.parametrize(
    ("settings", "code", "status"),
    [
        (None, "settings.missing", 422),
        ({**FAKE_SETTINGS, "active": False}, "settings.inactive", 422),
    ],
    ids=["no-settings", "inactive"],
)
async def test_configuration_errors_fail_the_invoice(
    fake_app: FastAPI, settings: dict[str, Any] | None, code: str, status: int
) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": settings} if settings else None)
    async with api:
        inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})).json()
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert r.status_code == status and r.json()["code"] == code
        assert r.json()["invoice_status"] == "failed"
        # failed is retryable once the settings are fixed
        assert (
            await api.put("/v1/settings/ci-fne", json={**FAKE_SETTINGS, "active": True})
        ).status_code == 200
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert r.status_code == 200 and r.json()["status"] == "certified"


async def test_wrong_credentials_fail_with_a_clear_message(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        first = (await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})).json()
        assert (await api.post(f"/v1/invoices/{first['id']}/certify")).status_code == 200
        # the tenant's simulator was configured with the first key; a new one is refused
        await api.put("/v1/settings/ci-fne", json={"api_key": "another-key-9876543210"})
        inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})).json()
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
    body = r.json()
    assert r.status_code == 502 and body["kind"] == "AuthorityAuthError"
    assert body["invoice_status"] == "failed" and body["resolution"] == "fix_configuration"
    assert body["authority_message"] == "Clé API invalide"


async def test_list_filters(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, country="CI", modules=("mecef",), settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        a = (
            await api.post(
                "/v1/invoices", json={"invoice": sample_invoice("L-1"), "authority": "fne", "approve": True}
            )
        ).json()
        await api.post("/v1/invoices", json={"invoice": sample_invoice("L-2"), "authority": "mecef"})
        await api.post(f"/v1/invoices/{a['id']}/certify")
        numbers = lambda r: sorted(i["number"] for i in r.json()["items"])  # noqa: E731
        assert numbers(await api.get("/v1/invoices")) == ["L-1", "L-2"]
        assert numbers(await api.get("/v1/invoices", params={"status": "certified"})) == ["L-1"]
        assert numbers(await api.get("/v1/invoices", params={"authority": "bj-emecef"})) == ["L-2"]
        assert numbers(await api.get("/v1/invoices", params={"number": "L-2"})) == ["L-2"]
        assert numbers(await api.get("/v1/invoices", params={"limit": 1})) in (["L-1"], ["L-2"])
        r = await api.get("/v1/invoices", params={"status": "nonsense"})
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "status"


async def test_an_unexpected_bug_answers_the_same_json_body(
    fake_app: FastAPI, fakes: dict[str, FakeDriver]
) -> None:
    import httpx

    tenant, _ = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})

    def broken(*_: Any) -> list[Any]:
        raise ZeroDivisionError("boom")

    fakes["ci-fne"].validate = broken  # type: ignore[method-assign]
    transport = httpx.ASGITransport(app=fake_app, raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {tenant['key']}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers=headers) as api:
        inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice()})).json()
        r = await api.post(f"/v1/invoices/{inv['id']}/approve")
    assert r.status_code == 500
    assert (r.json()["kind"], r.json()["code"]) == ("InternalError", "internal")
    assert "boom" not in r.text
