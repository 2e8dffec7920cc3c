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

from fiscalgate.authorities import codes, descriptor
from fiscalgate.authorities.base import AuthorityDriver
from fiscalgate.gateway import create_app
from fiscalgate.gateway.api.guard import GuardSettings
from fiscalgate.gateway.db import migrate, normalise_url
from fiscalgate.gateway.runtime import Gateway
from tests.gateway.fake_driver import FakeDriver

ADMIN = "admin-test-token"
TABLES = [
    "certification_jobs",
    "gateway_processes",
    "idempotency_keys",
    "audit_entries",
    "invoice_chain",
    "invoices",
    "authority_settings",
    "api_keys",
    "tenants",
]


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
    empty_postgres(url)
    return url


def empty_postgres(url: str) -> None:
    """Empty the session schema's tables between tests."""
    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:
        # Certified invoices and their chain refuse TRUNCATE (migration 0008): the test database's
        # superuser empties them with the triggers off, for this transaction only.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("TRUNCATE " + ", ".join(TABLES) + " CASCADE"))
    engine.dispose()


@pytest.fixture
def fakes() -> dict[str, FakeDriver]:
    return {code: FakeDriver(code) for code in codes()}


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[Callable[..., FastAPI]]:
    apps: list[FastAPI] = []
    key = Fernet.generate_key()  # one key per test: gateway instances sharing a database share it

    def build(
        lookup: Callable[[str], AuthorityDriver] | None = None,
        public_url: str | None = None,
        **options: Any,
    ) -> FastAPI:
        # The gateway tests run simulators apart on 127.0.0.1 (tests/security tests the refusal).
        options.setdefault("allow_private_urls", True)
        # Tests poll the API in tight loops; the API rate limits are tested in tests/security.
        options.setdefault("guard", GuardSettings(rate_per_key=0, rate_per_source=0, rate_auth_failures=0))
        app = create_app(
            database_url,
            admin_token=ADMIN,
            secret_key=key,
            var_dir=tmp_path / "var",
            driver_lookup=lookup,
            public_url=public_url,
            **options,
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


# --- the real authorities, in mock ---------------------------------------------------------------
# Every registered authority (its descriptor), in registration order.
REAL = tuple(codes())


def real_invoice(authority: str, number: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The authority's sample invoice (from its descriptor), which its simulator accepts."""
    data = descriptor(authority).sample(number or f"{authority[:2].upper()}-{uuid.uuid4().hex[:10]}")
    data.update(overrides)
    return data


def mock_settings(authority: str, **extra: Any) -> dict[str, Any]:
    from fiscalgate.authorities import get_driver

    return {"environment": "mock", **get_driver(authority).mock_credentials(), **extra}


class CountingApp:
    """Counts the requests a simulator receives (by method), then passes them on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: list[tuple[str, str]] = []

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


def install_simulator(app: FastAPI, tenant_id: str, authority: str, **extra: Any) -> tuple[CountingApp, Any]:
    """Put a real simulator for (tenant, authority), wrapped to count calls and inject faults."""
    from fiscalgate.authorities import get_driver
    from fiscalgate.simkit.faults import FaultInjector

    driver = get_driver(authority)
    settings = driver.parse_settings(mock_settings(authority, **extra))
    injector = FaultInjector(driver.mock_app(settings))
    counter = CountingApp(injector)
    gateway(app).simulators.install(tenant_id, authority, counter)
    return counter, injector


@pytest.fixture
def real_app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app()


async def real_tenant(
    app: FastAPI, authority: str, **settings_extra: Any
) -> tuple[dict[str, Any], httpx.AsyncClient, CountingApp, Any]:
    """A tenant with `authority` in mock, its simulator counted and fault-injectable."""
    tenant, api = await new_tenant(
        app,
        country=descriptor(authority).country,
        settings={authority: mock_settings(authority, **settings_extra)},
    )
    counter, injector = install_simulator(app, tenant["id"], authority, **settings_extra)
    return tenant, api, counter, injector
