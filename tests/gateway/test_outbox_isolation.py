"""Tenant isolation for the webhook, sticker and metrics routes (registered in test_isolation.py's
route check through OUTBOX_ROUTES)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from fiscalgate.gateway.stickers.service import record_balance
from tests.gateway.conftest import ADMIN, FAKE_SETTINGS, client, gateway, new_tenant, sample_invoice

pytestmark = pytest.mark.anyio

OUTBOX_ROUTES = {
    ("POST", "/v1/webhooks"),
    ("GET", "/v1/webhooks"),
    ("DELETE", "/v1/webhooks/{webhook_id}"),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"),
    ("POST", "/v1/webhook-deliveries/{delivery_id}/redeliver"),
    ("GET", "/v1/stickers"),
    ("GET", "/metrics"),
}
# Routes naming one of tenant A's resources: tenant B gets 404 and A's resource is untouched.
BY_ID = [
    ("DELETE", "/v1/webhooks/{webhook_id}", "webhook.not_found"),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries", "webhook.not_found"),
    ("POST", "/v1/webhook-deliveries/{delivery_id}/redeliver", "webhook_delivery.not_found"),
]
TENANT_ONLY = sorted(OUTBOX_ROUTES - {("GET", "/metrics")})


@pytest.fixture
async def tenant_a(fake_app: FastAPI) -> dict[str, Any]:
    """Tenant A with a webhook, one delivery of it (no dispatcher runs: it stays pending), and a
    sticker balance; tenant B with nothing."""
    a, api_a = await new_tenant(fake_app, name="Tenant A", settings={"ci-fne": FAKE_SETTINGS})
    b, _ = await new_tenant(fake_app, name="Tenant B", settings={"ci-fne": FAKE_SETTINGS})
    async with api_a:
        hook = await api_a.post(
            "/v1/webhooks", json={"url": "https://erp.example/hooks", "events": ["invoice.certified"]}
        )
        assert hook.status_code == 201, hook.text
        inv = (
            await api_a.post("/v1/invoices", json={"invoice": sample_invoice("A-1"), "approve": True})
        ).json()
        assert (await api_a.post(f"/v1/invoices/{inv['id']}/certify")).status_code == 200
        deliveries = (await api_a.get(f"/v1/webhooks/{hook.json()['id']}/deliveries")).json()["items"]
    assert len(deliveries) == 1

    def stock(session: Any) -> None:
        record_balance(
            session,
            tenant_id=a["id"],
            authority="ci-fne",
            environment="mock",
            balance=321,
            balance_kind="stickers",
            invoice_id=None,
            threshold=50,
        )

    gateway(fake_app).db.call(stock)
    return {"a": a, "b": b, "webhook_id": hook.json()["id"], "delivery": deliveries[0]}


async def test_another_tenants_webhook_or_delivery_is_not_found(
    fake_app: FastAPI, tenant_a: dict[str, Any]
) -> None:
    for method, path, code in BY_ID:
        url = path.format(webhook_id=tenant_a["webhook_id"], delivery_id=tenant_a["delivery"]["id"])
        async with client(fake_app, tenant_a["b"]["key"]) as b:
            r = await b.request(method, url)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["code"] == code
    async with client(fake_app, tenant_a["a"]["key"]) as a:
        hooks = (await a.get("/v1/webhooks")).json()["items"]
        assert [h["id"] for h in hooks] == [tenant_a["webhook_id"]]
        (delivery,) = (await a.get(f"/v1/webhooks/{tenant_a['webhook_id']}/deliveries")).json()["items"]
    assert delivery == tenant_a["delivery"]  # not redelivered, not deleted


async def test_lists_stickers_and_events_only_concern_the_caller(
    fake_app: FastAPI, tenant_a: dict[str, Any]
) -> None:
    async with client(fake_app, tenant_a["b"]["key"]) as b:
        assert (await b.get("/v1/webhooks")).json()["items"] == []
        assert (await b.get("/v1/stickers")).json()["stocks"] == []
        mine = await b.post(
            "/v1/webhooks", json={"url": "https://b.example/h", "events": ["invoice.certified"]}
        )
        assert mine.status_code == 201
        assert [h["url"] for h in (await b.get("/v1/webhooks")).json()["items"]] == ["https://b.example/h"]
        # B's certification is B's event only: A's endpoint gets nothing more
        inv = (await b.post("/v1/invoices", json={"invoice": sample_invoice("B-1"), "approve": True})).json()
        assert (await b.post(f"/v1/invoices/{inv['id']}/certify")).status_code == 200
        assert len((await b.get(f"/v1/webhooks/{mine.json()['id']}/deliveries")).json()["items"]) == 1
    async with client(fake_app, tenant_a["a"]["key"]) as a:
        assert len((await a.get(f"/v1/webhooks/{tenant_a['webhook_id']}/deliveries")).json()["items"]) == 1
        assert [h["id"] for h in (await a.get("/v1/webhooks")).json()["items"]] == [tenant_a["webhook_id"]]
        (stock,) = (await a.get("/v1/stickers")).json()["stocks"]
    assert stock["balance"] == 321


# Authentication reads no tenant data: one database is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_tenant_routes_need_a_valid_tenant_key(fake_app: FastAPI) -> None:
    for method, path in TENANT_ONLY:
        url = path.format(webhook_id="x", delivery_id="x")
        for token, status, code in [
            (None, 401, "auth.missing"),
            ("fgk_nope_nope", 401, "auth.invalid_key"),
            (ADMIN, 403, "auth.tenant_key_required"),
        ]:
            async with client(fake_app, token) as c:
                r = await c.request(
                    method, url, json={"url": "https://x.example", "events": ["invoice.failed"]}
                )
            assert (r.status_code, r.json()["code"]) == (status, code), (method, path, token, r.text)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_metrics_are_for_the_operator_only(
    fake_app: FastAPI, tenant_a: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FISCALGATE_METRICS_TOKEN", "scrape-token-0123456789")
    for token, status in [
        (None, 401),
        ("wrong-token", 401),
        (tenant_a["a"]["key"], 403),
        (ADMIN, 200),
        ("scrape-token-0123456789", 200),
    ]:
        async with client(fake_app, token) as c:
            r = await c.get("/metrics")
        assert r.status_code == status, (token, r.text)
        if status == 200:
            assert "fiscalgate_invoices" in r.text
