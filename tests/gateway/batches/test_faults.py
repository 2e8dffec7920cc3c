"""A bulk run while the three simulators fail 30 % of their submissions (503, timeout after the
authority recorded the request, dropped connection): every invoice ends certified or surfaced,
nothing is certified twice, and e-MECeF / SFEC unknowns are resolved without a person. Bounded:
120 invoices, about 20 s."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.cg_sfec.simulator.app import create_simulator
from fiscalgate.gateway.limits import BreakerPolicy, Limits
from fiscalgate.simkit.chaos import RandomFaults
from tests.gateway.batches.test_batch_api import wait_done
from tests.gateway.conftest import gateway, mock_settings, new_tenant, real_invoice

pytestmark = pytest.mark.anyio
PER_AUTHORITY = 40
# The three authorities whose recovery rules this test checks one by one (FNE has no look-up,
# e-MECeF and SFEC reconcile), not the registry: an authority added by `fiscalgate new-authority`
# has placeholder rules, and the assertions below name these three.
AUTHORITIES = ("ci-fne", "bj-emecef", "cg-sfec")


def _simulator(authority: str) -> tuple[Any, Any]:
    """(fault injector, platform state) of a fresh simulator."""
    driver = get_driver(authority)
    settings = driver.parse_settings(mock_settings(authority))
    if authority == "cg-sfec":
        sim = create_simulator(settings.niu, settings.api_key.get_secret_value())  # type: ignore[attr-defined]
        return sim.app, sim.platform
    app: Any = driver.mock_app(settings)
    return app, app.platform


def distinct_invoice(authority: str, n: int) -> dict[str, Any]:
    """Invoices that differ in content, not only in number. e-MECeF's payload carries no invoice
    number, so its reconciliation without a uid recognises a pending request by its content: two
    identical invoices in flight at once could not be told apart (see the README)."""
    lines = [{"description": f"Article {n}", "quantity": str(n + 1), "unit_price": str(1000 + 7 * n)}]
    return real_invoice(authority, lines=lines)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the gateway's logic, once
async def test_thirty_percent_faults_over_120_invoices(real_app: FastAPI) -> None:
    # A breaker that recovers within the run (the queue's retries are quick in wait_done).
    limits = Limits(breaker=BreakerPolicy(threshold=5, cooldown=timedelta(seconds=0.5)))
    tenant, api = await new_tenant(
        real_app,
        country="CI",
        modules=("fne", "mecef", "sfec"),
        settings={code: mock_settings(code, timeout_seconds=0.5) for code in AUTHORITIES},
    )
    faults: dict[str, RandomFaults] = {}
    platforms: dict[str, Any] = {}
    for seed, code in enumerate(AUTHORITIES):
        injector, platforms[code] = _simulator(code)
        faults[code] = RandomFaults(injector, code, rate=0.3, hang=0.7, seed=seed)
        gateway(real_app).simulators.install(tenant["id"], code, faults[code])
    invoices = [
        {"authority": code, "invoice": distinct_invoice(code, n)}
        for code in AUTHORITIES
        for n in range(PER_AUTHORITY)
    ]
    async with api:
        r = await api.post(
            "/v1/invoices/batch", json={"invoices": invoices, "approve": True, "certify": True}
        )
        assert r.status_code == 201, r.text
        done = await wait_done(api, r.json()["id"], real_app, deadline=120, limits=limits)
        trails = {}  # for a failure message: the calls made for each invoice not certified
        for item in done["items"]:
            if item["status"] != "certified":
                audit = (await api.get("/v1/audit", params={"invoice_id": item["invoice_id"]})).json()[
                    "items"
                ]
                trails[item["number"]] = [
                    (e["event"], e.get("method"), e.get("outcome")) for e in reversed(audit)
                ]
    items = done["items"]
    by: dict[str, list[dict[str, Any]]] = {
        code: [i for i in items if i["authority"] == code] for code in AUTHORITIES
    }
    assert sum(f.injected["hang_after_processing"] for f in faults.values()) > 0
    assert sum(sum(f.injected.values()) for f in faults.values()) >= 0.2 * sum(
        f.submissions for f in faults.values()
    )

    # e-MECeF and SFEC: every invoice certified, unknowns reconciled by themselves.
    for code in ("bj-emecef", "cg-sfec"):
        assert {i["status"] for i in by[code]} == {"certified"}, [
            (i["status"], i["status_detail"], i["error"], trails[i["number"]])
            for i in by[code]
            if i["status"] != "certified"
        ]
    # FNE has no look-up: an unknown waits for a person, named as such; the rest is certified.
    assert {i["status"] for i in by["ci-fne"]} <= {"certified", "unknown"}
    for item in by["ci-fne"]:
        if item["status"] == "unknown":
            assert "reconcile" in item["status_detail"]

    # 0 duplicates at the simulators.
    assert len(platforms["bj-emecef"].invoices) == PER_AUTHORITY
    assert not platforms["bj-emecef"].pending  # nothing left pending either
    assert len(platforms["cg-sfec"].records) == PER_AUTHORITY
    fne_certified = [i for i in by["ci-fne"] if i["status"] == "certified"]
    fne_unknown = [i for i in by["ci-fne"] if i["status"] == "unknown"]
    references = {d.reference for d in platforms["ci-fne"].documents.values()}
    assert {i["reference"] for i in fne_certified} <= references
    # Each FNE document is a certified invoice, or the recorded half of an unknown one: never two
    # for one invoice.
    assert len(fne_certified) <= len(platforms["ci-fne"].documents) <= len(fne_certified) + len(fne_unknown)
    assert done["counts"]["certified"] + done["counts"]["waiting_for_person"] == 3 * PER_AUTHORITY
