"""How the gateway spends its database transactions and network set-up, made cheaper without
giving up what they guarantee: reads outside the write queue (and unable to write), one
claim-and-prepare transaction that a cancelled caller cannot leave half done, checkpoints
committed before the point of no return, the UPDATE ... RETURNING fallback, and one TLS context
shared by the per-call network transports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from fiscalgate.authorities.base import AuthoritySettings, CheckpointFn, Connection
from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import OutcomeUnknown
from fiscalgate.core.invoice import Invoice
from fiscalgate.gateway.certification import certify_invoice
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.runtime import Database
from fiscalgate.gateway.tenants.models import Tenant
from fiscalgate.gateway.tenants.schemas import TenantCreate
from fiscalgate.gateway.tenants.service import Caller, authenticate_key, create_tenant, issue_key
from fiscalgate.simkit.serve import serve_in_thread
from tests.gateway.conftest import FAKE_SETTINGS, gateway, new_tenant, sample_invoice
from tests.gateway.fake_driver import FakeDriver, FakeSimulator

pytestmark = pytest.mark.anyio


async def _approved(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    r = await api.post("/v1/invoices", json={"invoice": sample_invoice(**overrides), "approve": True})
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


# --- read-only units --------------------------------------------------------------------------------
async def test_a_read_only_unit_cannot_write(database_url: str) -> None:
    from fiscalgate.gateway.db import migrate, utcnow

    migrate(database_url)
    db = Database(database_url)
    try:

        def sneaky(session: Session) -> None:
            session.add(Tenant(name="Sneaky", country="CI", modules=[], created_at=utcnow()))

        def flushing(session: Session) -> None:
            sneaky(session)
            session.flush()

        with pytest.raises(RuntimeError, match="read-only"):
            db.read_call(sneaky)
        try:  # PostgreSQL refuses the write itself; SQLite's read transaction is rolled back
            db.read_call(flushing)
        except DBAPIError as exc:
            assert "read-only" in str(exc)
        assert db.call(lambda s: s.query(Tenant).filter_by(name="Sneaky").count()) == 0
    finally:
        db.dispose()


async def test_api_key_lookups_do_not_wait_for_a_writer(database_url: str) -> None:
    """On SQLite writers queue one at a time; authenticating a request is a read and must not
    wait behind them (nor, on PostgreSQL, behind a row lock)."""
    from fiscalgate.gateway.db import migrate

    migrate(database_url)
    db = Database(database_url)
    try:

        def provision(session: Session) -> str:
            tenant = create_tenant(session, TenantCreate(name="Reader", country="CI", modules=[]))
            return issue_key(session, tenant.id).key

        key = db.call(provision)
        inside, release = threading.Event(), threading.Event()

        def slow_writer(session: Session) -> None:
            session.query(Tenant).filter_by(name="Reader").update({"name": "Reader (renamed)"})
            session.flush()
            inside.set()
            release.wait(10)

        writer = threading.Thread(target=db.call, args=(slow_writer,))
        writer.start()
        try:
            assert inside.wait(10)
            started = time.monotonic()
            found = db.read_call(authenticate_key, key)
            waited = time.monotonic() - started
        finally:
            release.set()
            writer.join(10)
        assert found is not None and found.trigger.startswith("api_key:")
        assert waited < 2, f"the key look-up waited {waited:.1f}s for the writer"
    finally:
        db.dispose()


async def test_reading_an_invoice_does_not_wait_for_a_writer(fake_app: FastAPI) -> None:
    """GETs (and their key look-up) answer while a long write transaction holds the queue."""
    _, api = await new_tenant(fake_app)
    db = gateway(fake_app).db
    inside, release = threading.Event(), threading.Event()

    def slow_writer(session: Session) -> None:
        session.query(Tenant).update({"name": Tenant.name})
        session.flush()
        inside.set()
        release.wait(10)

    async with api:
        inv = await _approved(api)
        writer = threading.Thread(target=db.call, args=(slow_writer,))
        writer.start()
        try:
            assert await anyio.to_thread.run_sync(inside.wait, 10)
            with anyio.fail_after(2):
                one = await api.get(f"/v1/invoices/{inv['id']}")
                listed = await api.get("/v1/invoices")
                audit = await api.get("/v1/audit", params={"invoice_id": inv["id"]})
        finally:
            release.set()
            await anyio.to_thread.run_sync(writer.join, 10)
    assert one.status_code == 200 and one.json()["status"] == "approved"
    assert [i["id"] for i in listed.json()["items"]] == [inv["id"]]
    assert [e["event"] for e in audit.json()["items"]] == ["invoice.created"]


# --- claim and prepare in one transaction -----------------------------------------------------------
async def test_a_caller_cancelled_while_claiming_leaves_the_invoice_unknown(
    make_app: Callable[..., FastAPI],
) -> None:
    """The claim commits in a worker thread that cannot be interrupted; if the caller is cancelled
    meanwhile, the committed claim must still be settled (unknown), never left `submitting`."""
    fake = FakeDriver("ci-fne")
    entered, release = threading.Event(), threading.Event()
    block = threading.Event()

    def lookup(code: str) -> FakeDriver:
        # load_settings asks for the driver inside the claiming transaction, after the claim.
        if block.is_set():
            entered.set()
            release.wait(10)
        return fake

    app = make_app(lookup)
    tenant, api = await new_tenant(app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        inv = await _approved(api)
        block.set()
        with anyio.CancelScope() as scope:

            async def cancel_once_inside() -> None:
                await anyio.to_thread.run_sync(entered.wait, 10)
                scope.cancel()
                release.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_once_inside)
                who = Caller(tenant["id"], "api_key:test")
                await certify_invoice(gateway(app), who, tenant["id"], inv["id"])
        block.clear()
        assert scope.cancelled_caught
        stored = (await api.get(f"/v1/invoices/{inv['id']}")).json()
    assert stored["status"] == "unknown" and "interrupted" in stored["status_detail"]
    assert stored["attempts"] == 1
    assert all(sim.calls == 0 for sim in fake.simulators)  # nothing was sent


async def test_missing_settings_fail_the_claimed_attempt_and_a_retry_works(fake_app: FastAPI) -> None:
    """A claim whose preparation fails is committed with that failure as its outcome (attempt
    counted, audited), exactly as when claiming and preparing were separate transactions."""
    _, api = await new_tenant(fake_app)
    async with api:
        inv = await _approved(api)
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert r.status_code == 422 and r.json()["code"] == "settings.missing"
        stored = (await api.get(f"/v1/invoices/{inv['id']}")).json()
        assert stored["status"] == "failed" and stored["attempts"] == 1 and stored["environment"] is None
        events = (await api.get("/v1/audit", params={"invoice_id": inv["id"]})).json()["items"]
        assert [e["event"] for e in events if e["kind"] == "lifecycle"].count("invoice.certify") == 1
        assert (await api.put("/v1/settings/ci-fne", json=FAKE_SETTINGS)).status_code == 200
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert r.status_code == 200 and r.json()["status"] == "certified" and r.json()["attempts"] == 2
        assert r.json()["environment"] == "mock"


async def test_certify_works_where_update_returning_is_unavailable(fake_app: FastAPI) -> None:
    """Old SQLite builds (< 3.35) have no RETURNING: the claim falls back to UPDATE then SELECT."""
    gateway(fake_app).db.engine.dialect.update_returning = False
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        inv = await _approved(api)
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert r.status_code == 200 and r.json()["status"] == "certified", r.text
        again = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert again.headers.get("Fiscalgate-Already-Certified") == "true"
        assert again.json()["reference"] == r.json()["reference"]


# --- checkpoints ------------------------------------------------------------------------------------
class CheckpointingDriver(FakeDriver):
    """Checkpoints twice, then checks from another transaction that both are on the row before
    sending; the send then times out, with one more piece of checkpoint data."""

    def __init__(self, db: Callable[[], Database]) -> None:
        super().__init__("ci-fne")
        self.db = db
        self.seen_before_send: dict[str, Any] | None = None

    async def certify(
        self,
        invoice: Invoice,
        settings: AuthoritySettings,
        connection: Connection,
        *,
        checkpoint: CheckpointFn | None = None,
    ) -> Certification:
        assert checkpoint is not None
        await checkpoint({"uid": "U-1", "step": 1})
        await checkpoint({"step": 2})

        def read(session: Session) -> dict[str, Any]:
            row = session.scalars(select(InvoiceRow).where(InvoiceRow.number == invoice.number)).one()
            return dict(row.checkpoint or {})

        self.seen_before_send = self.db().read_call(read)
        raise OutcomeUnknown("no answer", authority=self.code, checkpoint={"late": True})


async def test_checkpoints_are_committed_before_sending_and_merged(make_app: Callable[..., FastAPI]) -> None:
    apps: list[FastAPI] = []
    driver = CheckpointingDriver(lambda: gateway(apps[0]).db)
    apps.append(make_app(lambda code: driver))
    _, api = await new_tenant(apps[0], settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        inv = await _approved(api)
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
        assert r.status_code == 504 and r.json()["invoice_status"] == "unknown"
        stored = (await api.get(f"/v1/invoices/{inv['id']}")).json()
    assert driver.seen_before_send == {"uid": "U-1", "step": 2}
    assert stored["checkpoint"] == {"uid": "U-1", "step": 2, "late": True}


# --- network transports ----------------------------------------------------------------------------
@pytest.mark.socket
async def test_network_calls_build_the_tls_context_once(
    fake_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each call still gets a fresh transport (no connection kept between calls), but the CA
    bundle is loaded once per process, not once per certification."""
    built: list[Any] = []
    real = httpx.create_ssl_context

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    gw = gateway(fake_app)
    assert gw.network_transport() is not gw.network_transport()
    sim = FakeSimulator(FAKE_SETTINGS["api_key"])
    with serve_in_thread(sim.app) as base:
        _, api = await new_tenant(fake_app, settings={"ci-fne": {**FAKE_SETTINGS, "base_url": base}})
        async with api:
            for _ in range(3):
                inv = await _approved(api)
                r = await api.post(f"/v1/invoices/{inv['id']}/certify")
                assert r.status_code == 200 and r.json()["status"] == "certified", r.text
    assert sim.calls == 3
    assert len(built) == 1
