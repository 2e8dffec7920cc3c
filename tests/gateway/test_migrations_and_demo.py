"""Alembic migrations on both databases, the schema's own guarantees, and the demo set-up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from fiscalgate.gateway.db import downgrade, migrate, normalise_url
from fiscalgate.gateway.server import curl_example, demo_invoice, ensure_demo
from tests.gateway.conftest import REAL, client, gateway, schema_url

pytestmark = pytest.mark.anyio

TABLES = {
    "tenants",
    "api_keys",
    "authority_settings",
    "invoices",
    "audit_entries",
    "idempotency_keys",
    "tenant_profiles",
    "console_users",
    "console_sessions",
    "mock_simulator_states",
    "certification_jobs",
    "gateway_processes",
}
TABLES |= {"batches", "batch_items", "limit_rate_buckets", "limit_breakers", "limit_pending_slots"}  # 0009
TABLES |= {"webhook_endpoints", "outbox_events", "webhook_deliveries", "webhook_attempts"}  # 0007
TABLES |= {"sticker_balances", "sticker_states"}  # 0007
TABLES |= {"invoice_chain"}  # 0008
TABLES |= {"mock_simulator_entries"}  # 0012


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/migrations.db"
        return
    base: str = request.getfixturevalue("postgres_url")
    schema = f"fg_mig_{uuid.uuid4().hex[:12]}"
    engine = create_engine(normalise_url(base))
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema_url(base, schema)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(normalise_url(url))
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    migrate(empty_database)
    assert _tables(empty_database) == TABLES
    migrate(empty_database)  # idempotent
    downgrade(empty_database, "base")
    assert _tables(empty_database) == set()
    migrate(empty_database)
    assert _tables(empty_database) == TABLES


def test_the_schema_refuses_a_certified_row_without_reference_and_duplicate_references(
    empty_database: str,
) -> None:
    migrate(empty_database)
    engine = create_engine(normalise_url(empty_database))
    insert = text(
        "INSERT INTO invoices (id, tenant_id, authority, number, kind, status, document, currency,"
        " environment, reference, certification, certified_at, attempts, created_at, updated_at)"
        " VALUES (:id, 't', 'ci-fne', :number, 'sale', :status, '{}', 'XOF', 'mock', :reference, :cert,"
        " :at, 0, :at, :at)"
    )
    at = "2026-01-01 00:00:00+00:00"
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tenants (id, name, country, modules, created_at)"
                    " VALUES ('t', 'T', 'CI', '[]', :at)"
                ),
                {"at": at},
            )
            conn.execute(
                insert,
                {"id": "a", "number": "1", "status": "certified", "reference": "R1", "cert": "{}", "at": at},
            )
        bad = [
            {"id": "b", "number": "2", "status": "certified", "reference": None, "cert": "{}", "at": at},
            {"id": "c", "number": "3", "status": "certified", "reference": "R1", "cert": "{}", "at": at},
            {"id": "d", "number": "4", "status": "approved", "reference": "R9", "cert": None, "at": at},
            {"id": "e", "number": "1", "status": "draft", "reference": None, "cert": None, "at": at},
            {"id": "f", "number": "5", "status": "shipped", "reference": None, "cert": None, "at": at},
        ]
        for row in bad:
            with pytest.raises(IntegrityError), engine.begin() as conn:
                conn.execute(insert, row)
    finally:
        engine.dispose()


async def test_demo_tenant_is_created_once_and_its_key_rotates(real_app: FastAPI) -> None:
    gw = gateway(real_app)
    tenant_id, first = ensure_demo(gw)
    again_id, second = ensure_demo(gw)
    assert tenant_id == again_id and first != second
    async with client(real_app, first) as old, client(real_app, second) as new:
        assert (await old.get("/v1/tenant")).status_code == 401
        me = (await new.get("/v1/tenant")).json()
        assert (me["name"], me["country"], me["authorities"]) == ("Demo", "CI", list(REAL))
        settings = (await new.get("/v1/settings")).json()["items"]
        assert [(s["configured"], s["environment"]) for s in settings] == [(True, "mock")] * len(REAL)
        # the invoices the printed curl example sends are certified by each simulator
        for code in REAL:
            r = await new.post(
                "/v1/invoices", json={"authority": code, "approve": True, "invoice": demo_invoice(code)}
            )
            assert r.status_code == 201, r.text
            r = await new.post(f"/v1/invoices/{r.json()['id']}/certify")
            assert r.status_code == 200 and r.json()["status"] == "certified", r.text
    example = curl_example("http://localhost:8000", second)
    assert second in example and example.count("/certify") == len(REAL) + 1 and "/credit-notes" in example


def test_serve_demo_prints_a_working_key_and_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fiscalgate serve --demo` on a fresh directory: migrates, creates the demo, prints, runs uvicorn."""
    import fiscalgate.gateway.server as server

    ran: list[tuple[object, str, int]] = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, host, port, **kw: ran.append((app, host, port)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FISCALGATE_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("FISCALGATE_SECRET_KEY", raising=False)
    monkeypatch.delenv("FISCALGATE_DATABASE_URL", raising=False)
    monkeypatch.delenv("FISCALGATE_PUBLIC_URL", raising=False)

    server.serve(host="127.0.0.1", port=8123, database_url=None, demo=True)
    first = capsys.readouterr().out
    server.serve(host="127.0.0.1", port=8123, database_url=None, demo=True)
    second = capsys.readouterr().out

    assert (tmp_path / "var" / "fiscalgate.db").exists() and (tmp_path / "var" / "secret.key").exists()
    assert [(h, p) for _, h, p in ran] == [("127.0.0.1", 8123)] * 2
    keys = [
        line.strip()
        for out in (first, second)
        for line in out.splitlines()
        if line.strip().startswith("fgk_")
    ]
    assert len(keys) == 2 and keys[0] != keys[1]
    assert "Administrator token" in first and "export FG=http://127.0.0.1:8123 KEY=" + keys[1] in second
    # The public URL defaults to the address served, and adds no line to the output.
    assert "Public URL" not in first + second
    for app, _, _ in ran:
        assert gateway(app).public_url == "http://127.0.0.1:8123"  # type: ignore[arg-type]
        gateway(app).db.dispose()  # type: ignore[arg-type]


def test_serve_takes_the_public_url_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fiscalgate.gateway.server as server

    ran: list[object] = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, host, port, **kw: ran.append(app))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FISCALGATE_DATABASE_URL", raising=False)
    monkeypatch.setenv("FISCALGATE_ADMIN_TOKEN", "fixed-admin-token")
    monkeypatch.setenv("FISCALGATE_PUBLIC_URL", "https://fiscal.example.com/")
    server.serve(host="0.0.0.0", port=8124, database_url=None, demo=False)
    out = capsys.readouterr().out
    assert out.splitlines()[1:] == ["Public URL (FISCALGATE_PUBLIC_URL): https://fiscal.example.com"]
    assert gateway(ran[0]).public_url == "https://fiscal.example.com"  # type: ignore[arg-type]
    gateway(ran[0]).db.dispose()  # type: ignore[arg-type]


def test_the_database_keeps_a_certified_invoice_immutable(empty_database: str) -> None:
    migrate(empty_database)
    engine = create_engine(normalise_url(empty_database))
    at = "2026-01-01 00:00:00+00:00"
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tenants (id, name, country, modules, created_at)"
                    " VALUES ('t', 'T', 'CI', '[]', :at)"
                ),
                {"at": at},
            )
            conn.execute(
                text(
                    "INSERT INTO invoices (id, tenant_id, authority, number, kind, status, document,"
                    " currency, environment, reference, certification, certified_at, attempts, created_at,"
                    " updated_at) VALUES ('a', 't', 'ci-fne', '1', 'sale', 'certified', '{}', 'XOF', 'mock',"
                    " 'R1', '{}', :at, 0, :at, :at)"
                ),
                {"at": at},
            )
        for statement in [
            "UPDATE invoices SET status = 'approved', reference = NULL, certification = NULL WHERE id = 'a'",
            "UPDATE invoices SET reference = 'R2' WHERE id = 'a'",
            "UPDATE invoices SET document = '{\"x\": 1}' WHERE id = 'a'",
            "DELETE FROM invoices WHERE id = 'a'",
            # Since migration 0008 every column is guarded, bookkeeping ones included.
            "UPDATE invoices SET status_detail = 'noted' WHERE id = 'a'",
            "UPDATE invoices SET certified_total = 1 WHERE id = 'a'",
        ]:
            with pytest.raises(Exception, match="immutable"), engine.begin() as conn:
                conn.execute(text(statement))
        with engine.begin() as conn:
            assert conn.execute(text("SELECT reference FROM invoices WHERE id = 'a'")).scalar() == "R1"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_migrating_postgresql_leaves_fresh_planner_statistics(postgres_url: str) -> None:
    """ANALYZE after the migrations (issue 13): the planner knows the new tables and indexes at
    once (`reltuples` is -1 until a table is first analysed), in this schema only."""
    schema = f"fg_an_{uuid.uuid4().hex[:12]}"
    engine = create_engine(normalise_url(postgres_url))
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        migrate(schema_url(postgres_url, schema))
        with engine.connect() as conn:
            never = conn.scalars(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = :s AND c.relkind = 'r' AND c.reltuples < 0"
                ),
                {"s": schema},
            ).all()
        assert never == []
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
