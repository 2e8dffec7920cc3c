"""A tenant can never see or touch another tenant's data, on every route.

The route table is read from the app's OpenAPI document: a new route without a case here fails
`test_every_route_is_covered`.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fiscalgate.authorities import codes
from tests.gateway.conftest import FAKE_SETTINGS, client, new_tenant, sample_invoice
from tests.gateway.test_outbox_isolation import OUTBOX_ROUTES

pytestmark = pytest.mark.anyio

# (method, path template) -> body; {invoice} {certified} {entry} {authority} {tenant} {key} are
# filled with tenant A's resources and the call is made with tenant B's key.
TENANT_ROUTES: dict[tuple[str, str], Any] = {
    ("GET", "/v1/invoices/{invoice_id}"): None,
    ("PUT", "/v1/invoices/{invoice_id}"): {"invoice": sample_invoice("A-1")},
    ("DELETE", "/v1/invoices/{invoice_id}"): None,
    ("POST", "/v1/invoices/{invoice_id}/approve"): None,
    ("POST", "/v1/invoices/{invoice_id}/certify"): None,
    ("POST", "/v1/invoices/{invoice_id}/credit-notes"): {"number": "AV-X"},
    ("POST", "/v1/invoices/{invoice_id}/reconcile"): {"action": "not_certified"},
    ("GET", "/v1/invoices/{invoice_id}/pdf"): None,
    ("GET", "/v1/audit/{entry_id}"): None,
    ("POST", "/v1/audit/{entry_id}/replay"): None,
    ("GET", "/v1/batches/{batch_id}"): None,
    ("POST", "/v1/invoices/{invoice_id}/report"): None,
}
# Routes without an id: B only ever sees its own data (checked by content).
LIST_ROUTES = {
    ("GET", "/v1/invoices"),
    ("POST", "/v1/invoices"),
    ("POST", "/v1/invoices/batch"),  # test_batch_isolation in tests/gateway/batches
    ("GET", "/v1/audit"),
    ("GET", "/v1/batches"),  # content isolation: tests/gateway/test_lists.py
    ("GET", "/v1/tenant"),
    # the caller's own profile; content isolation: tests/printing/test_gateway.py
    ("GET", "/v1/profile"),
    ("PUT", "/v1/profile"),
    ("GET", "/v1/settings"),
    ("GET", "/v1/settings/{authority}"),
    ("PUT", "/v1/settings/{authority}"),
    ("DELETE", "/v1/settings/{authority}"),
    # gateway/tools: the registry (the same for every tenant, `available` per tenant), and calls
    # made with the caller's own settings only (test_another_tenants_invoice_and_settings_stay_out_of_reach)
    ("GET", "/v1/authorities"),
    ("GET", "/v1/authorities/{authority}"),
    ("GET", "/v1/authorities/{authority}/info"),
    ("GET", "/v1/authorities/{authority}/info/{topic}"),
    ("POST", "/v1/settings/{authority}/test"),
}
ADMIN_ROUTES = {
    ("GET", "/v1/admin/tenants"),
    ("POST", "/v1/admin/tenants"),
    ("GET", "/v1/admin/tenants/{tenant_id}"),
    ("PATCH", "/v1/admin/tenants/{tenant_id}"),
    ("GET", "/v1/admin/tenants/{tenant_id}/api-keys"),
    ("POST", "/v1/admin/tenants/{tenant_id}/api-keys"),
    ("DELETE", "/v1/admin/tenants/{tenant_id}/api-keys/{key_id}"),
}
PUBLIC_ROUTES = {("GET", "/healthz")}
# Tenant-addressed without a key, like the authorities' public verification pages it mirrors: a
# page is served only under its own tenant's prefix (test_mock_pages_only_under_their_tenant).
MOCK_PAGE_ROUTES = {("GET", "/mock/{tenant_id}/{authority}/{path}")}


def test_every_route_is_covered(tmp_path: Any) -> None:
    from cryptography.fernet import Fernet

    from fiscalgate.gateway import create_app

    app = create_app(f"sqlite:///{tmp_path}/r.db", admin_token="x", secret_key=Fernet.generate_key())
    routes = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
    covered = set(TENANT_ROUTES) | LIST_ROUTES | ADMIN_ROUTES | PUBLIC_ROUTES | MOCK_PAGE_ROUTES
    covered |= OUTBOX_ROUTES  # webhooks, stickers, /metrics: their isolation cases are in that file
    assert routes == covered
    app.state.gateway.db.dispose()


@pytest.fixture
async def two_tenants(fake_app: FastAPI) -> dict[str, Any]:
    a, api_a = await new_tenant(fake_app, name="Tenant A", settings={"ci-fne": FAKE_SETTINGS})
    b, _ = await new_tenant(fake_app, name="Tenant B", settings={"ci-fne": FAKE_SETTINGS})
    async with api_a:
        draft = (await api_a.post("/v1/invoices", json={"invoice": sample_invoice("A-1")})).json()
        cert = (
            await api_a.post("/v1/invoices", json={"invoice": sample_invoice("A-2"), "approve": True})
        ).json()
        assert (await api_a.post(f"/v1/invoices/{cert['id']}/certify")).status_code == 200
        entries = (await api_a.get("/v1/audit", params={"kind": "authority_call"})).json()["items"]
        batch = (
            await api_a.post("/v1/invoices/batch", json={"invoices": [{"invoice": sample_invoice("A-3")}]})
        ).json()
    return {"a": a, "b": b, "draft": draft, "certified": cert, "entry": entries[0], "batch": batch}


@pytest.mark.parametrize(("method", "path"), sorted(TENANT_ROUTES), ids=lambda v: str(v))
async def test_another_tenants_resource_is_not_found(
    fake_app: FastAPI, two_tenants: dict[str, Any], method: str, path: str
) -> None:
    ids = {
        "invoice_id": two_tenants["certified" if "credit" in path or "certify" in path else "draft"]["id"],
        "entry_id": two_tenants["entry"]["id"],
        "batch_id": two_tenants["batch"]["id"],
    }
    url = path.format(**ids)
    body = TENANT_ROUTES[(method, path)]
    async with client(fake_app, two_tenants["b"]["key"]) as b:
        r = await b.request(method, url, json=body)
    assert r.status_code == 404, r.text
    assert r.json()["code"].endswith("not_found")
    # and A's data is untouched
    async with client(fake_app, two_tenants["a"]["key"]) as a:
        assert (await a.get(f"/v1/invoices/{two_tenants['draft']['id']}")).json()["status"] == "draft"
        assert (await a.get(f"/v1/invoices/{two_tenants['certified']['id']}")).json()["status"] == "certified"


async def test_lists_and_settings_only_show_the_callers_data(
    fake_app: FastAPI, two_tenants: dict[str, Any]
) -> None:
    async with client(fake_app, two_tenants["b"]["key"]) as b:
        assert (await b.get("/v1/invoices")).json()["items"] == []
        assert (await b.get("/v1/audit", params={"kind": "authority_call"})).json()["items"] == []
        assert (await b.get("/v1/tenant")).json()["name"] == "Tenant B"
        # B saving its settings never changes A's
        await b.put("/v1/settings/ci-fne", json={"api_key": "b-only-secret-123456", "ncc": "BBB"})
        await b.delete("/v1/settings/ci-fne")
        created = await b.post("/v1/invoices", json={"invoice": sample_invoice("A-1")})
        assert created.status_code == 201  # numbers are per tenant: A's A-1 does not clash
        assert [i["number"] for i in (await b.get("/v1/invoices")).json()["items"]] == ["A-1"]
        assert (await b.get("/v1/settings/ci-fne")).json()["configured"] is False
        every = await b.get("/v1/settings")
        assert [s["configured"] for s in every.json()["items"]] == [False] * len(codes())
    async with client(fake_app, two_tenants["a"]["key"]) as a:
        mine = (await a.get("/v1/settings/ci-fne")).json()
        assert mine["configured"] and mine["settings"]["ncc"] == "FAKE001"
        assert {i["number"] for i in (await a.get("/v1/invoices")).json()["items"]} == {"A-1", "A-2", "A-3"}


@pytest.mark.parametrize(("method", "path"), sorted(ADMIN_ROUTES), ids=lambda v: str(v))
async def test_a_tenant_key_cannot_use_admin_routes(
    fake_app: FastAPI, two_tenants: dict[str, Any], method: str, path: str
) -> None:
    url = path.format(tenant_id=two_tenants["a"]["id"], key_id="x")
    body = {"name": "X", "country": "CI"} if method in ("POST", "PATCH") else None
    async with client(fake_app, two_tenants["b"]["key"]) as b:
        r = await b.request(method, url, json=body)
    assert r.status_code == 403 and r.json()["code"] == "auth.admin_required"


@pytest.mark.parametrize(("method", "path"), sorted(set(TENANT_ROUTES) | LIST_ROUTES), ids=lambda v: str(v))
async def test_tenant_routes_need_a_valid_tenant_key(fake_app: FastAPI, method: str, path: str) -> None:
    url = path.format(invoice_id="x", entry_id="x", authority="ci-fne", batch_id="x", topic="x")
    for token, status, code in [
        (None, 401, "auth.missing"),
        ("fgk_nope_nope", 401, "auth.invalid_key"),
        ("admin-test-token", 403, "auth.tenant_key_required"),
    ]:
        async with client(fake_app, token) as c:
            r = await c.request(method, url, json={})
        assert (r.status_code, r.json()["code"]) == (status, code), (token, r.text)


async def test_revoked_key_is_refused(fake_app: FastAPI, admin: httpx.AsyncClient) -> None:
    tenant, api = await new_tenant(fake_app)
    async with api:
        assert (await api.get("/v1/tenant")).status_code == 200
        keys = (await admin.get(f"/v1/admin/tenants/{tenant['id']}/api-keys")).json()["items"]
        assert "key" not in keys[0] and keys[0]["revoked_at"] is None
        assert (
            await admin.delete(f"/v1/admin/tenants/{tenant['id']}/api-keys/{keys[0]['id']}")
        ).status_code == 200
        r = await api.get("/v1/tenant")
    assert r.status_code == 401
