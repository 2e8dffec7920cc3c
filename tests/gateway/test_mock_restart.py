"""The in-process simulators of `mock` outlive a restart of the gateway: their memory is kept in
the gateway's database, so numbering continues, verification URLs handed out before the restart
still open, and credit notes against invoices certified before the restart are accepted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fiscalgate.authorities import descriptor
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
    modules = tuple(descriptor(code).module for code in REAL)
    tenant, api = await new_tenant(first, modules=modules, settings=settings)
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


async def test_the_kept_memory_is_the_simulators_after_every_call(make_app: Callable[..., FastAPI]) -> None:
    """The memory is written entry by entry, only what each call changed: after every call a
    simulator rebuilt from the rows equals the live one, and a certification writes as many rows
    with three invoices certified before it as with one."""
    from fiscalgate.authorities import get_driver

    app = make_app()
    settings = {code: mock_settings(code) for code in REAL}
    modules = tuple(descriptor(code).module for code in REAL)
    _tenant, api = await new_tenant(app, modules=modules, settings=settings)
    gw = gateway(app)
    store = gw.simulators.store
    assert store is not None
    save = store.save
    written: dict[str, list[int]] = {code: [] for code in REAL}

    async def checking(tenant_id: str, authority: str, version: int, changes: Any) -> None:
        await save(tenant_id, authority, version, changes)
        written[authority].append(len(changes.entries) + sum(len(p) for p in changes.parts.values()))
        stored, kept = store.load(tenant_id, authority)
        assert kept and stored is not None
        driver = get_driver(authority)
        rebuilt = driver.mock_app(driver.parse_settings(settings[authority]))
        rebuilt.import_state(stored)  # type: ignore[attr-defined]
        live = gw.simulators.find(tenant_id, authority)
        assert rebuilt.export_state() == live.export_state(), authority  # type: ignore[attr-defined, union-attr]

    store.save = checking  # type: ignore[method-assign]
    async with api:
        certified = {code: [await certify(api, real_invoice(code), code) for _ in range(4)] for code in REAL}
        for code in REAL:
            await credit(api, certified[code][0])
    for code in REAL:
        calls = len(written[code]) // 5  # the writes of one certification (e-MECeF: two calls)
        second, fourth = written[code][calls : 2 * calls], written[code][3 * calls : 4 * calls]
        assert fourth == second, (code, written[code])


async def test_a_memory_kept_whole_by_an_older_version_is_taken_over(
    make_app: Callable[..., FastAPI],
) -> None:
    """A memory stored by a version that kept whole snapshots (`mock_simulator_states`) is read
    at the first call after the upgrade, written entry by entry, and its snapshot deleted."""
    from sqlalchemy import delete, select

    from fiscalgate.gateway.db import utcnow
    from fiscalgate.gateway.settings.models import MockSimulatorEntry, MockSimulatorState

    first = make_app()
    settings = {code: mock_settings(code) for code in REAL}
    modules = tuple(descriptor(code).module for code in REAL)
    tenant, api = await new_tenant(first, modules=modules, settings=settings)
    async with api:
        before = {code: await certify(api, real_invoice(code), code) for code in REAL}
    snapshots = {
        code: gateway(first).simulators.find(tenant["id"], code).export_state()  # type: ignore[union-attr]
        for code in REAL
    }

    def downgrade_to_whole_snapshots(session: Any) -> None:
        session.execute(delete(MockSimulatorEntry).where(MockSimulatorEntry.tenant_id == tenant["id"]))
        for code, state in snapshots.items():
            session.add(
                MockSimulatorState(tenant_id=tenant["id"], authority=code, state=state, saved_at=utcnow())
            )

    gateway(first).db.call(downgrade_to_whole_snapshots)
    gateway(first).db.dispose()

    second = make_app()
    async with client(second, tenant["key"]) as api:
        after = {code: await certify(api, real_invoice(code), code) for code in REAL}
        credits = {code: await credit(api, before[code]) for code in REAL}
    for code in REAL:
        assert after[code]["certification"]["reference"] != before[code]["certification"]["reference"]
        assert credits[code]["status"] == "certified"

    def stored(session: Any) -> tuple[int, int]:
        legacy = session.scalars(
            select(MockSimulatorState).where(MockSimulatorState.tenant_id == tenant["id"])
        )
        entries = session.scalars(
            select(MockSimulatorEntry).where(MockSimulatorEntry.tenant_id == tenant["id"])
        )
        return len(list(legacy)), len(list(entries))

    legacy, entries = gateway(second).db.read_call(stored)
    assert legacy == 0 and entries > 0
