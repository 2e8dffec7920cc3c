"""/metrics after certifications: counters of this process (read as differences, since every app
of the test session shares them) and the gauges read from the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from fiscalgate.gateway.stickers.service import record_balance
from fiscalgate.gateway.webhooks.dispatcher import DeliveryPolicy, running_dispatcher
from tests.gateway.conftest import ADMIN, FAKE_SETTINGS, client, gateway, new_tenant, sample_invoice
from tests.gateway.fake_driver import FakeDriver
from tests.gateway.webhook_receiver import Receiver, eventually

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(app: FastAPI) -> Samples:
    async with client(app, ADMIN) as c:
        r = await c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def certify(api: httpx.AsyncClient, number: str | None = None) -> tuple[str, httpx.Response]:
    inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice(number), "approve": True})).json()
    return inv["id"], await api.post(f"/v1/invoices/{inv['id']}/certify")


async def test_metrics_after_certifications(
    fake_app: FastAPI, fakes: dict[str, FakeDriver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FISCALGATE_ALLOW_PRIVATE_URLS", "1")
    t, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    receiver = Receiver()
    before = await scrape(fake_app)
    fne: Callable[..., dict[str, str]] = lambda **kw: {"authority": "ci-fne", "environment": "mock", **kw}  # noqa: E731
    try:
        async with api, running_dispatcher(gateway(fake_app), DeliveryPolicy(poll_interval=0.05)):
            r = await api.post("/v1/webhooks", json={"url": receiver.url, "events": ["invoice.certified"]})
            assert r.status_code == 201
            for _ in range(2):
                assert (await certify(api))[1].status_code == 200
            assert (await certify(api, "REJECT-9"))[1].status_code == 422
            fakes["ci-fne"].explode = KeyError("reference")
            unknown_id, r = await certify(api)
            assert r.json()["invoice_status"] == "unknown"
            fakes["ci-fne"].explode = None
            r = await api.post(f"/v1/invoices/{unknown_id}/reconcile", json={"action": "confirm"})
            assert r.json()["status"] == "certified"
            # a failed attempt, then a retry that certifies
            await api.put("/v1/settings/ci-fne", json={"api_key": "another-key-0123456789"})
            failed_id, r = await certify(api)
            assert r.json()["invoice_status"] == "failed"
            await api.put("/v1/settings/ci-fne", json={"api_key": FAKE_SETTINGS["api_key"]})
            assert (await api.post(f"/v1/invoices/{failed_id}/certify")).status_code == 200
            # four invoice.certified events: 2 + the reconciled one + the retried one
            await anyio.to_thread.run_sync(receiver.wait_for, lambda rs: len(rs) >= 4)

            async def delivered() -> bool:
                hooks = (await api.get("/v1/webhooks")).json()["items"]
                listed = (await api.get(f"/v1/webhooks/{hooks[0]['id']}/deliveries")).json()["items"]
                return [d["status"] for d in listed] == ["delivered"] * 4

            await eventually(delivered)
    finally:
        receiver.close()

    def stock(session: Any) -> None:
        record_balance(
            session,
            tenant_id=t["id"],
            authority="ci-fne",
            environment="mock",
            balance=123,
            balance_kind="stickers",
            invoice_id=None,
            threshold=50,
        )

    await gateway(fake_app).db.run(stock)
    after = await scrape(fake_app)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("fiscalgate_certifications_total", **fne(outcome="certified")) == 3
    assert grew("fiscalgate_certifications_total", **fne(outcome="rejected")) == 1
    assert grew("fiscalgate_certifications_total", **fne(outcome="unknown")) == 1
    assert grew("fiscalgate_certifications_total", **fne(outcome="failed")) == 1
    assert grew("fiscalgate_unknown_outcomes_total", **fne()) == 1
    assert grew("fiscalgate_certification_retries_total", **fne()) == 1
    assert grew("fiscalgate_reconciliations_total", **fne(result="certified")) == 1
    # one request per attempt (6 certify + 1 reconcile look-up), each timed
    assert grew("fiscalgate_authority_request_duration_seconds_count", **fne()) == 7
    assert grew("fiscalgate_authority_request_duration_seconds_sum", **fne()) > 0
    assert grew("fiscalgate_webhook_delivery_attempts_total", result="delivered") == 4
    # the database's view
    assert value(after, "fiscalgate_invoices", authority="ci-fne", status="certified") == 4
    assert value(after, "fiscalgate_invoices", authority="ci-fne", status="rejected") == 1
    assert value(after, "fiscalgate_webhook_deliveries", status="delivered") == 4
    assert value(after, "fiscalgate_webhook_oldest_pending_age_seconds") == 0
    assert value(after, "fiscalgate_queue_depth") == 0
    assert value(after, "fiscalgate_queue_oldest_age_seconds") == 0
    assert (
        value(
            after,
            "fiscalgate_sticker_balance",
            tenant_id=t["id"],
            authority="ci-fne",
            environment="mock",
            kind="stickers",
        )
        == 123
    )
