"""Failures on the real simulators (faults injected) and how each authority's `unknown` is resolved."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.gateway.conftest import FAKE_SETTINGS, new_tenant, real_invoice, real_tenant, sample_invoice
from tests.gateway.fake_driver import FakeDriver

pytestmark = pytest.mark.anyio

FAST = {"timeout_seconds": 0.3}  # the simulator "hangs": the gateway gives up quickly
# SFEC's driver resends on a timeout (its invoice_id makes that safe); one attempt leaves it unknown.
SFEC_ONE_SHOT = {**FAST, "max_attempts": 1}


async def _approved(api: httpx.AsyncClient, authority: str) -> dict[str, Any]:
    r = await api.post("/v1/invoices", json={"invoice": real_invoice(authority), "approve": True})
    assert r.status_code == 201, r.text
    return r.json()


async def _certify(api: httpx.AsyncClient, inv: dict[str, Any]) -> httpx.Response:
    return await api.post(f"/v1/invoices/{inv['id']}/certify")


async def _reconcile(api: httpx.AsyncClient, inv: dict[str, Any], **body: Any) -> httpx.Response:
    return await api.post(f"/v1/invoices/{inv['id']}/reconcile", json=body)


async def test_fne_timeout_after_sending_is_unknown_and_resolved_by_hand(real_app: FastAPI) -> None:
    _, api, counter, injector = await real_tenant(real_app, "ci-fne", **FAST)
    injector.add("hang_after_processing", path="/sign")
    async with api:
        inv = await _approved(api, "ci-fne")
        r = await _certify(api, inv)
        assert r.status_code == 504 and r.json()["kind"] == "OutcomeUnknown"
        assert r.json()["invoice_status"] == "unknown" and r.json()["resolution"] == "reconcile"

        # never a blind resend
        r = await _certify(api, inv)
        assert r.status_code == 409 and r.json()["code"] == "invoice.cannot_certify.unknown"
        assert counter.count("POST") == 1

        # FNE has no look-up: asking keeps it unknown, with instructions
        r = await _reconcile(api, inv, action="confirm")
        assert r.status_code == 409 and r.json()["code"] == "invoice.unknown"
        assert r.json()["invoice_status"] == "unknown" and "portal" in r.json()["message"]

        r = await _reconcile(api, inv, action="record_reference")
        assert r.status_code == 422 and r.json()["code"] == "reconcile.reference_required"
        r = await _reconcile(
            api,
            inv,
            action="record_reference",
            reference="9606123E26000000001",
            verification_url="https://www.services.fne.dgi.gouv.ci/fr/verification/abc",
            note="seen on the portal",
        )
        assert r.status_code == 200
        done = r.json()
        assert done["status"] == "certified" and done["reference"] == "9606123E26000000001"
        assert done["certification"]["authority_data"]["recorded_by_hand"] is True
        assert counter.count("POST") == 1
        # the hung call is in the audit log, marked without response
        calls = (
            await api.get("/v1/audit", params={"invoice_id": inv["id"], "kind": "authority_call"})
        ).json()["items"]
        assert [c["outcome"].startswith("no response") for c in calls] == [True]


async def test_fne_declared_not_certified_can_be_certified_again(real_app: FastAPI) -> None:
    _, api, _, injector = await real_tenant(real_app, "ci-fne", **FAST)
    injector.add("drop_before_processing", path="/sign")
    async with api:
        inv = await _approved(api, "ci-fne")
        assert (await _certify(api, inv)).json()["invoice_status"] == "unknown"
        r = await _reconcile(api, inv, action="not_certified", note="absent from the portal")
        assert r.json()["status"] == "failed" and "absent from the portal" in r.json()["status_detail"]
        r = await _certify(api, inv)
        assert r.status_code == 200 and r.json()["status"] == "certified"
        assert r.json()["attempts"] == 2
        assert r.json()["certification"]["sticker_balance"] is not None
    # reconcile only applies to unknown invoices
    async with real_tenant_client(real_app, api) as again:
        r = await _reconcile(again, inv, action="not_certified")
        assert r.status_code == 409 and r.json()["code"] == "invoice.cannot_reconcile.certified"


def real_tenant_client(app: FastAPI, api: httpx.AsyncClient) -> httpx.AsyncClient:
    from tests.gateway.conftest import client

    return client(app, api.headers["Authorization"].removeprefix("Bearer "))


async def test_emecef_lost_submit_answer_is_found_pending_and_confirmed(real_app: FastAPI) -> None:
    _, api, counter, injector = await real_tenant(real_app, "bj-emecef", **FAST)
    injector.add("hang_after_processing", path="/api/invoice", method="POST")
    async with api:
        inv = await _approved(api, "bj-emecef")
        assert (await _certify(api, inv)).json()["invoice_status"] == "unknown"
        r = await _reconcile(api, inv, action="confirm")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "certified" and r.json()["reference"]
        assert counter.count("POST") == 1  # found among the pending requests, not resubmitted
        calls = (
            await api.get("/v1/audit", params={"invoice_id": inv["id"], "kind": "authority_call"})
        ).json()["items"]
        assert {c["trigger"].split(":")[0] for c in calls} == {"api_key", "reconcile"}


@pytest.mark.parametrize(("decision", "final"), [("confirm", "certified"), ("cancel", "failed")])
async def test_emecef_checkpoint_uid_survives_and_decides(
    real_app: FastAPI, decision: str, final: str
) -> None:
    _, api, _, injector = await real_tenant(real_app, "bj-emecef", **FAST)
    injector.add("drop_before_processing", path="/confirm")
    async with api:
        inv = await _approved(api, "bj-emecef")
        r = await _certify(api, inv)
        assert r.json()["invoice_status"] == "unknown"
        stored = (await api.get(f"/v1/invoices/{inv['id']}")).json()
        assert stored["checkpoint"]["uid"]  # persisted by the driver's checkpoint callback
        r = await _reconcile(api, inv, action=decision)
        assert r.status_code == 200 and r.json()["status"] == final
        if final == "failed":
            again = await _certify(api, inv)
            assert again.status_code == 200 and again.json()["status"] == "certified"


async def test_a_new_attempt_starts_with_a_fresh_checkpoint(fake_app: FastAPI) -> None:
    """What a settled attempt checkpointed (a cancelled e-MECeF uid, say) must not reach the next
    attempt's reconciliation: a fresh certify claim empties the checkpoint."""
    from fiscalgate.gateway.invoices.models import InvoiceRow
    from fiscalgate.simkit.faults import FaultInjector
    from tests.gateway.conftest import gateway
    from tests.gateway.fake_driver import FakeSimulator

    tenant, api = await new_tenant(fake_app, settings={"ci-fne": {**FAKE_SETTINGS, **FAST}})
    injector = FaultInjector(FakeSimulator(FAKE_SETTINGS["api_key"]).app)
    gateway(fake_app).simulators.install(tenant["id"], "ci-fne", injector)
    injector.add("error", path="/sign", status=503, body={"message": "Service indisponible"})
    async with api:
        inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})).json()
        assert (await _certify(api, inv)).json()["invoice_status"] == "failed"

        def plant(session: Any) -> None:  # as if an earlier attempt had recorded a uid
            row = session.get(InvoiceRow, inv["id"])
            row.checkpoint = {**(row.checkpoint or {}), "uid": "stale-uid-of-a-cancelled-attempt"}

        gateway(fake_app).db.call(plant)
        injector.add("hang_after_processing", path="/sign")
        assert (await _certify(api, inv)).json()["invoice_status"] == "unknown"
        stored = (await api.get(f"/v1/invoices/{inv['id']}")).json()
    assert stored["checkpoint"] == {"number": inv["number"]}  # this attempt's data only


async def test_sfec_driver_resends_after_a_timeout_and_adopts(real_app: FastAPI) -> None:
    _, api, counter, injector = await real_tenant(real_app, "cg-sfec", **FAST)
    injector.add("hang_after_processing", path="/certify")
    async with api:
        inv = await _approved(api, "cg-sfec")
        r = await _certify(api, inv)
        assert r.status_code == 200 and r.json()["status"] == "certified"
    assert counter.count("POST") == 2  # the resend met 409 and adopted the first certification


async def test_sfec_timeout_is_reconciled_by_invoice_id(real_app: FastAPI) -> None:
    _, api, counter, injector = await real_tenant(real_app, "cg-sfec", **SFEC_ONE_SHOT)
    injector.add("hang_after_processing", path="/certify")
    async with api:
        inv = await _approved(api, "cg-sfec")
        assert (await _certify(api, inv)).json()["invoice_status"] == "unknown"
        r = await _reconcile(api, inv)
        assert r.status_code == 200 and r.json()["status"] == "certified"
        assert r.json()["reference"].startswith("SFEC-")
        assert counter.count("POST") == 1


async def test_sfec_request_that_never_arrived_is_not_certified(real_app: FastAPI) -> None:
    _, api, _, injector = await real_tenant(real_app, "cg-sfec", **SFEC_ONE_SHOT)
    injector.add("drop_before_processing", path="/certify")
    async with api:
        inv = await _approved(api, "cg-sfec")
        assert (await _certify(api, inv)).json()["invoice_status"] == "unknown"
        r = await _reconcile(api, inv)
        assert r.json()["status"] == "failed" and "not certified" in r.json()["status_detail"]
        assert (await _certify(api, inv)).json()["status"] == "certified"


async def test_server_error_fails_retryably(fake_app: FastAPI) -> None:
    from fiscalgate.simkit.faults import FaultInjector
    from tests.gateway.conftest import gateway
    from tests.gateway.fake_driver import FakeSimulator

    tenant, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    sim = FakeSimulator(FAKE_SETTINGS["api_key"])
    injector = FaultInjector(sim.app)
    gateway(fake_app).simulators.install(tenant["id"], "ci-fne", injector)
    injector.add("error", path="/sign", status=503, body={"message": "Service indisponible"})
    async with api:
        inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})).json()
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        body = r.json()
        assert r.status_code == 502 and body["retryable"] is True and body["invoice_status"] == "failed"
        assert body["kind"] == "AuthorityServerError" and body["authority_http_status"] == 503
        stored = (await api.get(f"/v1/invoices/{inv['id']}")).json()
        assert stored["status"] == "failed" and "retryable" in stored["status_detail"]
        assert stored["raw_response"] == {"message": "Service indisponible"}  # kept for diagnosis
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert r.json()["status"] == "certified"


async def test_unreachable_authority_fails_retryably(real_app: FastAPI) -> None:
    _, api, _, _ = await real_tenant(real_app, "ci-fne", base_url="http://127.0.0.1:9")
    async with api:
        inv = await _approved(api, "ci-fne")
        r = await _certify(api, inv)
    assert r.status_code == 503 and r.json()["kind"] == "AuthorityUnreachable"
    assert r.json()["invoice_status"] == "failed" and r.json()["retryable"] is True


async def test_reconcile_that_times_out_stays_unknown(real_app: FastAPI) -> None:
    _, api, _, injector = await real_tenant(real_app, "cg-sfec", **SFEC_ONE_SHOT)
    injector.add("hang_after_processing", path="/certify")
    async with api:
        inv = await _approved(api, "cg-sfec")
        await _certify(api, inv)
        injector.add("drop_before_processing", method="GET", times=5)
        r = await _reconcile(api, inv)
        assert r.status_code == 409 and r.json()["invoice_status"] == "unknown"
        assert "look-up failed" in r.json()["message"]


async def test_record_reference_refuses_a_reference_already_held(real_app: FastAPI) -> None:
    _, api, _, injector = await real_tenant(real_app, "ci-fne", **FAST)
    async with api:
        first = await _approved(api, "ci-fne")
        ref = (await _certify(api, first)).json()["reference"]
        injector.add("drop_before_processing", path="/sign")
        second = await _approved(api, "ci-fne")
        await _certify(api, second)
        r = await _reconcile(api, second, action="record_reference", reference=ref)
    assert r.status_code == 409 and r.json()["code"] == "reference.taken"


async def test_driver_bug_after_sending_is_unknown_not_failed(
    fake_app: FastAPI, fakes: dict[str, FakeDriver]
) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    fakes["ci-fne"].explode = KeyError("reference")
    async with api:
        inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})).json()
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        body = r.json()
        assert (body["kind"], body["code"]) == ("DriverFailedAfterSending", "driver.failed_after_sending")
        assert (r.status_code, body["invoice_status"], body["retryable"]) == (502, "unknown", False)
        # a request may have left: the caller is told to reconcile, and which authority to ask
        assert (body["resolution"], body["authority"]) == ("reconcile", "ci-fne")
        assert "KeyError" in body["message"]
        # the fake authority did certify it: the look-up adopts its reference
        fakes["ci-fne"].explode = None
        r = await api.post(f"/v1/invoices/{inv['id']}/reconcile", json={"action": "confirm"})
        assert r.json()["status"] == "certified" and r.json()["reference"] == "REF000001"


async def test_a_call_cancelled_midway_leaves_the_invoice_unknown(fake_app: FastAPI) -> None:
    import anyio

    from fiscalgate.gateway.certification import certify_invoice
    from fiscalgate.gateway.tenants.service import Caller
    from fiscalgate.simkit.faults import FaultInjector
    from tests.gateway.conftest import gateway
    from tests.gateway.fake_driver import FakeSimulator

    tenant, api = await new_tenant(fake_app, settings={"ci-fne": {**FAKE_SETTINGS, **FAST}})
    injector = FaultInjector(FakeSimulator(FAKE_SETTINGS["api_key"]).app)
    injector.add("hang_after_processing", path="/sign")
    gateway(fake_app).simulators.install(tenant["id"], "ci-fne", injector)
    async with api:
        inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice(), "approve": True})).json()
        with anyio.move_on_after(0.3) as scope:  # e.g. the server shutting down mid-request
            await certify_invoice(
                gateway(fake_app), Caller(tenant["id"], "api_key:test"), tenant["id"], inv["id"]
            )
        assert scope.cancelled_caught
        stored = (await api.get(f"/v1/invoices/{inv['id']}")).json()
    assert stored["status"] == "unknown" and "interrupted" in stored["status_detail"]
