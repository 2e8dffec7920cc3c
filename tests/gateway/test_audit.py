"""The audit log: every authority call (masked), settings changes, lifecycle events; filters; replay."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.db import new_id, utcnow
from tests.gateway.conftest import REAL, gateway, mock_settings, real_invoice, real_tenant

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("authority", REAL)
async def test_every_authority_call_is_recorded_with_secrets_masked(
    real_app: FastAPI, authority: str
) -> None:
    tenant, api, counter, _ = await real_tenant(real_app, authority)
    secrets = [v for k, v in mock_settings(authority).items() if k in ("api_key", "token")]
    assert secrets
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice(authority), "approve": True})
        ).json()
        assert (await api.post(f"/v1/invoices/{inv['id']}/certify")).status_code == 200
        calls = (
            await api.get("/v1/audit", params={"kind": "authority_call", "invoice_id": inv["id"]})
        ).json()["items"]
        events = (await api.get("/v1/audit", params={"kind": "lifecycle", "invoice_id": inv["id"]})).json()[
            "items"
        ]
        everything = (await api.get("/v1/audit", params={"limit": 1000})).json()["items"]
    assert len(calls) == len(counter.calls) >= 1
    prefix = tenant["key"].split("_")[1]
    for call in calls:
        assert call["authority"] == authority and call["environment"] == "mock"
        assert call["trigger"] == f"api_key:{prefix}"
        assert call["method"] in ("GET", "POST", "PUT") and call["url"].startswith("http")
        assert 200 <= call["response_status"] < 300 and call["duration_ms"] >= 0
        assert call["request_headers"] and call["response_body"] is not None
        assert call["replayable"] is True
    assert {e["event"] for e in events} >= {"invoice.created", "invoice.certify"}
    dump = json.dumps(everything)
    for secret in secrets:
        assert secret not in dump


async def test_filters(real_app: FastAPI) -> None:
    _, api, _, injector = await real_tenant(real_app, "cg-sfec", max_attempts=1)
    injector.add("error", path="/certify", status=500, body={"message": "boom"})
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice("cg-sfec"), "approve": True})
        ).json()
        await api.post(f"/v1/invoices/{inv['id']}/certify")
        await api.post(f"/v1/invoices/{inv['id']}/certify")
        get = lambda **p: api.get("/v1/audit", params={"kind": "authority_call", **p})  # noqa: E731
        assert [c["response_status"] for c in (await get(status="error")).json()["items"]] == [500]
        assert all(c["response_status"] < 400 for c in (await get(status="ok")).json()["items"])
        assert [c["response_status"] for c in (await get(status="500")).json()["items"]] == [500]
        assert (await get(authority="bj-emecef")).json()["items"] == []
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert (await get(since=future)).json()["items"] == []
        assert len((await get(until=future)).json()["items"]) >= 2
        r = await api.get("/v1/audit", params={"status": "bad"})
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "status"
        r = await api.get("/v1/audit", params={"since": "2026-01-01T00:00:00"})  # naive: refused
        assert r.status_code == 422


async def test_replay_in_mock_is_audited(real_app: FastAPI) -> None:
    _, api, counter, _ = await real_tenant(real_app, "cg-sfec")
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice("cg-sfec"), "approve": True})
        ).json()
        await api.post(f"/v1/invoices/{inv['id']}/certify")
        call = (await api.get("/v1/audit", params={"kind": "authority_call"})).json()["items"][0]
        r = await api.post(f"/v1/audit/{call['id']}/replay")
        assert r.status_code == 200, r.text
        replay = r.json()
        # Sent to a throwaway simulator (issue 14): it has never seen the invoice, so it certifies
        # it there, and the tenant's own simulator receives nothing.
        assert replay["response_status"] == 201 and replay["method"] == "POST"
        entry = (await api.get(f"/v1/audit/{replay['audit_entry_id']}")).json()
        assert entry["trigger"].startswith(f"replay:{call['id']}:api_key:")
        assert entry["invoice_id"] == inv["id"]
    assert counter.count("POST") == 1
    assert (await_status := (await _status(real_app, api, inv["id"]))) == "certified", await_status


async def _status(app: FastAPI, api: object, invoice_id: str) -> str:
    from tests.gateway.conftest import client

    async with client(app, api.headers["Authorization"].removeprefix("Bearer ")) as c:  # type: ignore[attr-defined]
        return str((await c.get(f"/v1/invoices/{invoice_id}")).json()["status"])


async def test_replay_safety_rules(real_app: FastAPI) -> None:
    tenant, api, _, _ = await real_tenant(real_app, "ci-fne")
    gw = gateway(real_app)
    sealed = gw.box.seal({"method": "POST", "url": "https://fne.example/sign", "headers": {}, "content": ""})
    entry_id = new_id()

    def insert(session: object) -> None:
        session.add(  # type: ignore[attr-defined]
            AuditEntry(
                id=entry_id,
                tenant_id=tenant["id"],
                kind="authority_call",
                authority="ci-fne",
                environment="production",
                trigger="api_key:x",
                method="POST",
                url="https://fne.example/sign",
                sealed_request=sealed,
                created_at=utcnow(),
            )
        )

    gw.db.call(insert)
    async with api:
        listed = (await api.get(f"/v1/audit/{entry_id}")).json()
        assert listed["replayable"] is False
        r = await api.post(f"/v1/audit/{entry_id}/replay")
        assert r.status_code == 403 and r.json()["code"] == "replay.production_write"
        change = (await api.get("/v1/audit", params={"kind": "settings_change"})).json()["items"][0]
        r = await api.post(f"/v1/audit/{change['id']}/replay")
        assert r.status_code == 409 and r.json()["code"] == "replay.not_a_call"
        assert "sealed_request" not in listed


class Holding:
    """Holds every request to the simulator until `release` is set (a call in flight)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.arrived = anyio.Event()
        self.release = anyio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.arrived.set()
            await self.release.wait()
        await self.app(scope, receive, send)


def _calls(app: FastAPI, invoice_id: str) -> list[Any]:
    """The invoice's authority-call entries as stored (rows, not ORM objects)."""

    def read(session: Any) -> list[Any]:
        query = (
            select(AuditEntry.__table__)
            .where(AuditEntry.invoice_id == invoice_id, AuditEntry.kind == "authority_call")
            .order_by(AuditEntry.created_at)
        )
        return list(session.execute(query))

    rows: list[Any] = gateway(app).db.read_call(read)
    return rows


@pytest.mark.parametrize("authority", REAL)
async def test_a_call_in_flight_is_in_the_audit_log_before_it_leaves(
    make_app: Callable[..., FastAPI], authority: str
) -> None:
    """Issue 14: the entry of a call is committed with the claim, before the request leaves, so a
    crash during the call leaves it in the log (`in flight`); the answer completes that entry."""
    first = make_app()
    tenant, api, counter, _ = await real_tenant(first, authority)
    holding = Holding(counter)
    gateway(first).simulators.install(tenant["id"], authority, holding)
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice(authority), "approve": True})
        ).json()
        result: dict[str, Any] = {}

        async def certify() -> None:
            result["response"] = await api.post(f"/v1/invoices/{inv['id']}/certify")

        async with anyio.create_task_group() as tg:
            tg.start_soon(certify)
            await holding.arrived.wait()
            # What another process (or this one after a kill -9) finds in the database now.
            other = make_app()
            (open_entry,) = _calls(other, inv["id"])
            assert open_entry.outcome == "in flight"
            assert (open_entry.authority, open_entry.environment) == (authority, "mock")
            assert open_entry.tenant_id == tenant["id"] and open_entry.event == "invoice.certify"
            assert open_entry.detail is not None and open_entry.detail["holder"] == gateway(first).process_id
            assert open_entry.response_status is None and open_entry.sealed_request is None
            holding.release.set()
    assert result["response"].status_code == 200, result["response"].text
    calls = _calls(first, inv["id"])
    assert len(calls) == len(counter.calls) >= 1
    completed = next(c for c in calls if c.id == open_entry.id)  # the same entry, completed
    assert completed.outcome.startswith("http ") and completed.response_status is not None
    assert completed.method is not None and completed.request_body is not None
    assert completed.sealed_request is not None
    assert all(c.outcome != "in flight" for c in calls)
