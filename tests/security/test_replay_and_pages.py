"""A replay never creates a certification; the mock verification page does not tell tenants apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from fiscalgate.gateway.audit.models import AuditEntry
from tests.gateway.conftest import client, gateway, real_invoice, real_tenant

pytestmark = pytest.mark.anyio


async def _certify(api: Any, authority: str) -> dict[str, Any]:
    body = {"authority": authority, "approve": True, "invoice": real_invoice(authority)}
    invoice = (await api.post("/v1/invoices", json=body)).json()
    r = await api.post(f"/v1/invoices/{invoice['id']}/certify")
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.mark.parametrize("authority", ["ci-fne", "bj-emecef"])
async def test_replaying_a_mock_certification_call_leaves_the_tenants_simulator_alone(
    make_app: Callable[..., FastAPI], authority: str
) -> None:
    app = make_app()
    _, api, counter, _ = await real_tenant(app, authority)
    async with api:
        certified = await _certify(api, authority)
        writes = [c for c in (await api.get("/v1/audit", params={"kind": "authority_call"})).json()["items"]
                  if c["method"] != "GET"]  # fmt: skip
        before = list(counter.calls)
        for call in writes:
            for _ in range(2):
                r = await api.post(f"/v1/audit/{call['id']}/replay")
                assert r.status_code == 200, r.text
        assert counter.calls == before  # FNE issued no new number, e-MECeF opened no pending request
        again = (await api.get(f"/v1/invoices/{certified['id']}")).json()
    assert again["reference"] == certified["reference"] and again["status"] == "certified"


async def test_a_sandbox_write_is_not_replayed(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    _, api, _, _ = await real_tenant(app, "ci-fne")
    async with api:
        await _certify(api, "ci-fne")
        call = (await api.get("/v1/audit", params={"kind": "authority_call"})).json()["items"][0]

        def to_sandbox(session: Any) -> None:
            session.execute(
                update(AuditEntry).where(AuditEntry.id == call["id"]).values(environment="sandbox")
            )

        gateway(app).db.call(to_sandbox)
        assert (await api.get(f"/v1/audit/{call['id']}")).json()["replayable"] is False
        r = await api.post(f"/v1/audit/{call['id']}/replay")
    assert r.status_code == 403 and r.json()["code"] == "replay.not_idempotent"


async def test_the_verification_page_answers_the_same_for_unknown_tenant_and_token(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(public_url="http://gateway")
    tenant, api, _, _ = await real_tenant(app, "ci-fne")
    async with api:
        await _certify(api, "ci-fne")
    async with client(app, None) as anyone:
        unknown_token = await anyone.get(f"/mock/{tenant['id']}/ci-fne/fr/verification/0000-nope")
        unknown_tenant = await anyone.get(f"/mock/{'0' * 32}/ci-fne/fr/verification/0000-nope")
    assert unknown_token.status_code == unknown_tenant.status_code == 404
    assert unknown_token.headers["content-type"] == unknown_tenant.headers["content-type"]
    assert unknown_token.json() == unknown_tenant.json()
