"""The in-process simulators of `mock` outlive a restart of the gateway: their memory is kept in
the gateway's database, so numbering continues, verification URLs handed out before the restart
still open, and credit notes against invoices certified before the restart are accepted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.gateway.conftest import REAL, client, gateway, mock_settings, new_tenant, real_invoice

pytestmark = pytest.mark.anyio

PUBLIC = "http://gw.test:8000"


async def certify(api: httpx.AsyncClient, invoice: dict[str, Any], authority: str) -> dict[str, Any]:
    created = await api.post(
        "/v1/invoices", json={"authority": authority, "invoice": invoice, "approve": True}
    )
    assert created.status_code == 201, created.text
    r = await api.post(f"/v1/invoices/{created.json()['id']}/certify")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "certified", body
    return body


async def credit(api: httpx.AsyncClient, original: dict[str, Any]) -> dict[str, Any]:
    r = await api.post(
        f"/v1/invoices/{original['id']}/credit-notes",
        json={"number": f"AV-{original['number']}", "approve": True},
    )
    assert r.status_code == 201, r.text
    r = await api.post(f"/v1/invoices/{r.json()['id']}/certify")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "certified", body
    return body


async def test_two_gateways_in_a_row_on_one_database(make_app: Callable[..., FastAPI]) -> None:
    first = make_app(public_url=PUBLIC)
    settings = {code: mock_settings(code) for code in REAL}
    tenant, api = await new_tenant(first, modules=("fne", "mecef", "sfec"), settings=settings)
    async with api:
        before = {code: await certify(api, real_invoice(code), code) for code in REAL}
    gateway(first).db.dispose()  # the first process is gone; its simulators with it

    second = make_app(public_url=PUBLIC)
    assert all(gateway(second).simulators.find(tenant["id"], code) is None for code in REAL)
    async with client(second, tenant["key"]) as api:
        # An FNE verification URL printed before the restart opens (no key: it is public).
        url = before["ci-fne"]["certification"]["verification_url"]
        async with client(second, None) as anyone:
            page = await anyone.get(url.removeprefix(PUBLIC))
        assert page.status_code == 200 and before["ci-fne"]["certification"]["reference"] in page.text

        after = {code: await certify(api, real_invoice(code), code) for code in REAL}
        credits = {code: await credit(api, before[code]) for code in REAL}

    for code in REAL:
        old, new = before[code]["certification"], after[code]["certification"]
        assert new["reference"] != old["reference"], code
    # FNE numbers its invoices in one uninterrupted series: the restart continued it.
    assert int(after["ci-fne"]["certification"]["reference"][-9:]) == (
        int(before["ci-fne"]["certification"]["reference"][-9:]) + 1
    )
    # e-MECeF counters went on from 1/1 to 2/2 (and the credit note is the first FA).
    assert before["bj-emecef"]["certification"]["counters"] == "1/1 FV"
    assert after["bj-emecef"]["certification"]["counters"] == "2/2 FV"
    assert credits["bj-emecef"]["certification"]["counters"] == "1/3 FA"


async def test_a_simulator_remembers_a_certification_whose_answer_was_lost(
    make_app: Callable[..., FastAPI],
) -> None:
    """The snapshot is stored when the simulator has processed the request, before its answer
    leaves: SFEC's look-up finds, after a restart, an invoice whose answer never arrived."""
    first = make_app()
    tenant, api = await new_tenant(first, country="CG", settings={"cg-sfec": mock_settings("cg-sfec")})
    async with api:
        created = await api.post("/v1/invoices", json={"invoice": real_invoice("cg-sfec"), "approve": True})
        invoice_id = created.json()["id"]
        # The first certification creates the simulator; then every request hangs after
        # processing (the driver's look-up after its timeout too), until this process goes.
        await certify(api, real_invoice("cg-sfec"), "cg-sfec")
        sim = gateway(first).simulators.find(tenant["id"], "cg-sfec")
        assert sim is not None
        sim.add("hang_after_processing", times=-1, seconds=30)  # type: ignore[attr-defined]
        await api.put(
            "/v1/settings/cg-sfec", json={"timeout_seconds": 0.3, "max_attempts": 1, "lookup_max_pages": 0}
        )
        r = await api.post(f"/v1/invoices/{invoice_id}/certify")
        assert r.status_code == 504 and r.json()["invoice_status"] == "unknown", r.text
    gateway(first).db.dispose()

    second = make_app()
    async with client(second, tenant["key"]) as api:
        r = await api.post(f"/v1/invoices/{invoice_id}/reconcile")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "certified", r.text


async def test_an_answer_that_cannot_be_recorded_is_never_a_2xx(make_app: Callable[..., FastAPI]) -> None:
    """The old restart bug, made on purpose: a simulator that forgot its numbering answers a
    reference another invoice holds. The invoice stays unknown, and the answer says so (409)."""
    from fiscalgate.authorities import get_driver

    app = make_app()
    tenant, api = await new_tenant(app, settings={"ci-fne": mock_settings("ci-fne")})
    async with api:
        await certify(api, real_invoice("ci-fne"), "ci-fne")
        driver = get_driver("ci-fne")
        fresh = driver.mock_app(driver.parse_settings(mock_settings("ci-fne")))
        gateway(app).simulators.install(tenant["id"], "ci-fne", fresh)  # numbering from 1 again
        created = await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne"), "approve": True})
        r = await api.post(f"/v1/invoices/{created.json()['id']}/certify")
    assert r.status_code == 409, r.text
    body = r.json()
    assert (body["code"], body["invoice_status"]) == ("invoice.unknown", "unknown")
    assert "already held by" in body["message"]
