"""`POST /v1/invoices/batch` and `GET /v1/batches/{id}`: each invoice answered on its own, nothing
half-written, safe resubmission, progress until every invoice is final or waits for a person."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from fiscalgate.authorities import descriptor
from fiscalgate.gateway.limits import Limits
from fiscalgate.gateway.queue import RetryPolicy, run_background
from tests.gateway.conftest import (
    FAKE_SETTINGS,
    REAL,
    client,
    gateway,
    install_simulator,
    mock_settings,
    new_tenant,
    real_invoice,
    sample_invoice,
)
from tests.gateway.fake_driver import FakeDriver

pytestmark = pytest.mark.anyio


# Quick retries, so that a test's faults settle in seconds; the same rules otherwise.
FAST = RetryPolicy(max_attempts=8, base_seconds=0.05, cap_seconds=0.2, reconcile_seconds=0.05)


async def wait_done(
    api: httpx.AsyncClient,
    batch_id: str,
    app: FastAPI,
    deadline: float = 60,
    *,
    limits: Limits | None = None,
) -> dict[str, Any]:
    """Run a queue worker for the app (batches are certified only through the queue) and poll the
    batch until it says done (a generous deadline; no fixed sleep decides anything)."""
    end = time.monotonic() + deadline
    async with run_background(
        gateway(app), concurrency=8, poll=0.05, policy=FAST, heartbeat=0.2, limits=limits
    ):
        while True:
            r = await api.get(f"/v1/batches/{batch_id}")
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            if body["status"] == "done":
                return body
            assert time.monotonic() < end, f"batch not done in {deadline}s: {body['counts']}"
            await anyio.sleep(0.05)


def _item(number: str, **overrides: Any) -> dict[str, Any]:
    return {"authority": "ci-fne", "invoice": sample_invoice(number, **overrides)}


async def test_each_invoice_is_answered_on_its_own_and_the_good_ones_certified(
    fake_app: FastAPI, fakes: dict[str, FakeDriver]
) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    bad_lines = sample_invoice("B-3")
    bad_lines["lines"][1]["quantity"] = "-1"
    invoices = [
        _item("B-1"),
        {"authority": "ci-fne", "invoice": bad_lines},  # our validation
        _item("B-1", notes="other content"),  # the same number twice in one batch, different content
        {"invoice": sample_invoice("B-4"), "colour": "red"},  # not an item
        {"authority": "xx-nope", "invoice": sample_invoice("B-5")},
        _item("B-6", buyer={"name": "INVALID"}),  # the driver's own check at approval
        _item("B-7", kind="credit_note", original={"number": "B-0", "reference": "R"}),
        "not even an object",
        _item("REJECT-8"),  # refused by the authority later, at certification
        _item("B-9"),
        _item("B-9"),  # an exact repeat: the same invoice, answered with the same id
    ]
    async with api:
        r = await api.post(
            "/v1/invoices/batch", json={"invoices": invoices, "approve": True, "certify": True}
        )
        assert r.status_code == 201, r.text
        batch = r.json()
        assert batch["counts"]["total"] == 11
        assert [i["outcome"] for i in batch["items"]] == [
            "accepted",
            "refused",
            "refused",
            "refused",
            "refused",
            "refused",
            "refused",
            "refused",
            "accepted",
            "accepted",
            "accepted",
        ]
        items = batch["items"]
        assert [i["position"] for i in items] == list(range(11))
        assert items[10]["existing"] and items[10]["invoice_id"] == items[9]["invoice_id"]
        assert items[1]["number"] == "B-3"
        assert {p["field"] for p in items[1]["error"]["problems"]} == {"invoice.lines[1].quantity"}
        assert items[2]["error"]["code"] == "invoice.number_taken"
        assert items[3]["error"]["problems"][0]["field"] == "colour"
        assert items[4]["error"]["code"] == "authority.unknown"
        assert items[5]["error"]["problems"][0] == {
            "field": "invoice.buyer.name",
            "rule": "fake_rule",
            "message": "this buyer is refused by the fake authority",
        }
        assert items[6]["error"]["code"] == "invoice.credit_note_via_original"
        assert items[7]["error"]["problems"][0]["field"] == "(item)"
        # Nothing half-written: exactly the accepted invoices exist.
        listed = (await api.get("/v1/invoices")).json()["items"]
        assert sorted(i["number"] for i in listed) == ["B-1", "B-9", "REJECT-8"]
        assert {i["id"] for i in listed} == {items[k]["invoice_id"] for k in (0, 8, 9)}

        done = await wait_done(api, batch["id"], fake_app)
    counts = done["counts"]
    assert (counts["accepted"], counts["refused"]) == (4, 7)
    assert (counts["certified"], counts["rejected"], counts["in_progress"], counts["final"]) == (3, 1, 0, 4)
    by_number = {i["number"]: i for i in done["items"] if i["outcome"] == "accepted"}
    assert by_number["B-1"]["status"] == "certified" and by_number["B-1"]["reference"].startswith("REF")
    assert by_number["REJECT-8"]["status"] == "rejected"
    assert by_number["REJECT-8"]["error"]["authority_code"] == "E42"
    assert fakes["ci-fne"].simulators[0].calls == 3


async def test_resubmitting_the_same_batch_certifies_nothing_twice(
    fake_app: FastAPI, fakes: dict[str, FakeDriver]
) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    invoices = [_item(f"R-{n}") for n in range(5)]
    body = {"invoices": invoices, "approve": True, "certify": True}
    async with api:
        first = (await api.post("/v1/invoices/batch", json=body)).json()
        await wait_done(api, first["id"], fake_app)
        again = (await api.post("/v1/invoices/batch", json=body)).json()
        assert [i["outcome"] for i in again["items"]] == ["accepted"] * 5
        assert all(i["existing"] for i in again["items"])
        assert [i["invoice_id"] for i in again["items"]] == [i["invoice_id"] for i in first["items"]]
        assert again["status"] == "done" and again["counts"]["certified"] == 5
        assert "already submitted (status certified)" in again["items"][0]["note"]
        # Same number, different content: refused, the stored invoice untouched.
        changed = _item("R-0", lines=[{"description": "Autre", "quantity": "1", "unit_price": "5"}])
        third = (await api.post("/v1/invoices/batch", json={"invoices": [changed]})).json()
        assert third["items"][0]["outcome"] == "refused"
        assert third["items"][0]["error"]["code"] == "invoice.number_taken"
        assert len((await api.get("/v1/invoices")).json()["items"]) == 5
    assert fakes["ci-fne"].simulators[0].calls == 5


async def test_a_resubmission_takes_drafts_and_failures_further(
    fake_app: FastAPI, fakes: dict[str, FakeDriver]
) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    invoices = [_item("D-1"), _item("D-2")]
    certify = {"approve": True, "certify": True}
    async with api:
        drafts = (await api.post("/v1/invoices/batch", json={"invoices": invoices})).json()
        assert drafts["status"] == "done"  # nothing asked beyond creating them
        assert [i["status"] for i in drafts["items"]] == ["draft", "draft"]
        r = await api.post("/v1/invoices/batch", json={"invoices": invoices[:1], **certify})
        assert (await wait_done(api, r.json()["id"], fake_app))["counts"]["certified"] == 1
        # D-2's first certification fails (the authority refuses the key): it ends failed.
        wrong = {"api_key": "wrong-key-0123456789abcdef"}
        assert (await api.put("/v1/settings/ci-fne", json=wrong)).status_code == 200
        r = await api.post("/v1/invoices/batch", json={"invoices": invoices[1:], **certify})
        failed = await wait_done(api, r.json()["id"], fake_app)
        assert failed["items"][0]["status"] == "failed" and failed["counts"]["waiting_for_person"] == 1
        assert failed["items"][0]["error"]["code"] == "authority.auth"
        assert (await api.put("/v1/settings/ci-fne", json=FAKE_SETTINGS)).status_code == 200
        r = await api.post("/v1/invoices/batch", json={"invoices": invoices, **certify})
        done = await wait_done(api, r.json()["id"], fake_app)
    assert [i["status"] for i in done["items"]] == ["certified", "certified"]
    assert [i["existing"] for i in done["items"]] == [True, True]
    assert "queued for certification again" in done["items"][1]["note"]
    assert len(fakes["ci-fne"].simulators[0].certified) == 2
    assert fakes["ci-fne"].simulators[0].calls == 3  # D-1 once, D-2 refused then certified


async def test_whole_request_refusals(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        r = await api.post("/v1/invoices/batch", json={"invoices": [_item("X-1")], "certify": True})
        assert r.status_code == 422 and r.json()["code"] == "batch.certify_needs_approve"
        r = await api.post("/v1/invoices/batch", json={"invoices": [_item(f"X-{n}") for n in range(1001)]})
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "invoices"
        r = await api.post("/v1/invoices/batch", json={"invoices": []})
        assert r.status_code == 422
        assert (await api.get("/v1/invoices")).json()["items"] == []
        r = await api.get("/v1/batches/nope")
        assert r.status_code == 404 and r.json()["code"] == "batch.not_found"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # not about the database
async def test_idempotency_key_replays_the_first_answer(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    body = {"invoices": [_item("K-1")], "approve": True}
    async with api:
        first = await api.post("/v1/invoices/batch", json=body, headers={"Idempotency-Key": "k1"})
        second = await api.post("/v1/invoices/batch", json=body, headers={"Idempotency-Key": "k1"})
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.json()["id"] == first.json()["id"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # not about the database
async def test_batch_isolation(fake_app: FastAPI) -> None:
    """B submitting A's numbers gets invoices of its own, never A's; A's batch is 404 to B."""
    _, api_a = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    b, api_b = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    body = {"invoices": [_item("S-1"), _item("S-2")], "approve": True}
    async with api_a, api_b:
        a_batch = (await api_a.post("/v1/invoices/batch", json=body)).json()
        b_batch = (await api_b.post("/v1/invoices/batch", json=body)).json()
        assert [i["existing"] for i in b_batch["items"]] == [False, False]
        a_ids = {i["invoice_id"] for i in a_batch["items"]}
        assert a_ids.isdisjoint(i["invoice_id"] for i in b_batch["items"])
        assert (await api_b.get(f"/v1/batches/{a_batch['id']}")).status_code == 404
        for invoice_id in a_ids:
            assert (await api_b.get(f"/v1/invoices/{invoice_id}")).status_code == 404
    async with client(fake_app, b["key"]) as again:
        assert len((await again.get("/v1/invoices")).json()["items"]) == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # not about the database
async def test_a_batch_across_the_three_real_authorities(real_app: FastAPI) -> None:
    tenant, api = await new_tenant(
        real_app,
        country="CI",
        modules=tuple(descriptor(code).module for code in REAL),
        settings={code: mock_settings(code) for code in REAL},
    )
    counters = {code: install_simulator(real_app, tenant["id"], code)[0] for code in REAL}
    invoices = [{"authority": code, "invoice": real_invoice(code)} for code in REAL for _ in range(3)]
    async with api:
        r = await api.post(
            "/v1/invoices/batch", json={"invoices": invoices, "approve": True, "certify": True}
        )
        assert r.status_code == 201, r.text
        done = await wait_done(api, r.json()["id"], real_app)
    assert done["counts"]["certified"] == 3 * len(REAL), done["items"]
    assert {i["authority"] for i in done["items"]} == set(REAL)
    assert counters["ci-fne"].count("POST") == 3
    assert counters["cg-sfec"].count("POST") == 3
