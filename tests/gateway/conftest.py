"""Gateway fixtures: every test that takes `database_url` runs on SQLite and on PostgreSQL.

PostgreSQL runs get a schema of their own per test session (dropped afterwards), so concurrent
runs and reruns never collide; tables are emptied between tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from fiscalgate.authorities.base import AuthorityDriver
from fiscalgate.gateway import create_app
from fiscalgate.gateway.db import migrate, normalise_url
from fiscalgate.gateway.runtime import Gateway
from tests.gateway.fake_driver import FakeDriver

ADMIN = "admin-test-token"
TABLES = ["idempotency_keys", "audit_entries", "invoices", "authority_settings", "api_keys", "tenants"]


def schema_url(base: str, schema: str) -> str:
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_session_url(postgres_url: str) -> Iterator[str]:
    schema = f"fg_gw_{uuid.uuid4().hex[:12]}"
    engine = create_engine(normalise_url(postgres_url))
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = schema_url(postgres_url, schema)
    try:
        migrate(url)
        yield url
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gateway.db"
    url: str = request.getfixturevalue("pg_session_url")
    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(TABLES) + " CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def fakes() -> dict[str, FakeDriver]:
    return {code: FakeDriver(code) for code in ("ci-fne", "bj-emecef", "cg-sfec")}


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[Callable[..., FastAPI]]:
    apps: list[FastAPI] = []

    def build(lookup: Callable[[str], AuthorityDriver] | None = None) -> FastAPI:
        app = create_app(
            database_url,
            admin_token=ADMIN,
            secret_key=Fernet.generate_key(),
            var_dir=tmp_path / "var",
            driver_lookup=lookup,
        )
        apps.append(app)
        return app

    yield build
    for app in apps:
        gateway(app).db.dispose()


@pytest.fixture
def fake_app(make_app: Callable[..., FastAPI], fakes: dict[str, FakeDriver]) -> FastAPI:
    return make_app(lambda code: fakes[code])


def gateway(app: FastAPI) -> Gateway:
    gw: Gateway = app.state.gateway
    return gw


def client(app: FastAPI, token: str | None = ADMIN) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway", headers=headers
    )


@pytest.fixture
async def admin(fake_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client(fake_app) as c:
        yield c


async def new_tenant(
    app: FastAPI,
    name: str | None = None,
    country: str = "CI",
    modules: tuple[str, ...] = (),
    settings: dict[str, dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], httpx.AsyncClient]:
    """A tenant with one API key and the given settings saved; returns (tenant, its client)."""
    async with client(app) as adm:
        r = await adm.post(
            "/v1/admin/tenants",
            json={"name": name or f"T-{uuid.uuid4().hex[:8]}", "country": country, "modules": list(modules)},
        )
        assert r.status_code == 201, r.text
        tenant = r.json()
        r = await adm.post(f"/v1/admin/tenants/{tenant['id']}/api-keys", json={"label": "tests"})
        assert r.status_code == 201, r.text
        key = r.json()["key"]
    async with client(app, key) as c:
        for code, data in (settings or {}).items():
            r = await c.put(f"/v1/settings/{code}", json=data)
            assert r.status_code == 200, r.text
    tenant["key"] = key
    return tenant, client(app, key)


def sample_invoice(number: str | None = None, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "number": number or f"F-{uuid.uuid4().hex[:10]}",
        "seller": {"name": "Boutique Test", "tax_id": "1234567A"},
        "buyer": {"kind": "individual", "name": "Client Comptoir"},
        "lines": [
            {"description": "Riz 25 kg", "quantity": "2", "unit_price": "15000"},
            {"description": "Huile 5 l", "quantity": "3", "unit_price": "6000"},
        ],
        "payments": [{"method": "cash"}],
    }
    data.update(overrides)
    return data


FAKE_SETTINGS = {"environment": "mock", "ncc": "FAKE001", "api_key": "fake-secret-key-0123456789"}
