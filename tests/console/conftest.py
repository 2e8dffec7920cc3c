"""Console fixtures: a gateway app (SQLite file, real drivers with their in-process simulators), a
tenant with the three authorities in mock, users of each role, and signed-in clients."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from fastapi import FastAPI

from fiscalgate.gateway import create_app
from fiscalgate.gateway.console import accounts
from fiscalgate.gateway.console.demo import sample_invoice
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.server import ensure_demo

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@dataclass
class World:
    app: FastAPI
    gw: Gateway
    tenant_id: str
    other_tenant_id: str
    api_key: str

    def add_user(self, email: str, role: str, tenant_id: str | None) -> None:
        self.gw.db.call(
            lambda s: accounts.create_user(s, email=email, password=PASSWORD, role=role, tenant_id=tenant_id)
        )

    def invoice(self, authority: str = "ci-fne", tenant_id: str | None = None, approve: bool = True) -> str:
        from fiscalgate.gateway.console import services

        tid = tenant_id or self.tenant_id
        body = services.InvoiceCreate(authority=authority, invoice=sample_invoice(authority), approve=approve)
        who = services.Caller(tenant_id=tid, trigger="test")
        return self.gw.db.call(lambda s: services.create_invoice(s, self.gw, who, tid, body).id)


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with the smallest cost: the same code path, a fraction of the CPU (the suite runs
    on a loaded 2-core machine). Production keeps the library's recommended parameters."""
    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(accounts, "_DUMMY_HASH", accounts._hasher.hash("dummy"))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    app = create_app(
        f"sqlite:///{tmp_path}/console.db",
        admin_token="admin-token",
        secret_key=Fernet.generate_key(),
        var_dir=tmp_path / "var",
    )
    gw: Gateway = app.state.gateway
    tenant_id, key = ensure_demo(gw)
    from fiscalgate.gateway.console import services

    other = gw.db.call(
        lambda s: services.create_tenant(s, services.Caller(None, "test"), "Other Co", "Bénin", ["mecef"]).id
    )
    w = World(app, gw, tenant_id, other, key)
    w.add_user("owner@demo.test", "owner", tenant_id)
    w.add_user("accountant@demo.test", "accountant", tenant_id)
    w.add_user("viewer@demo.test", "viewer", tenant_id)
    w.add_user("owner@other.test", "owner", other)
    w.add_user("admin@platform.test", "admin", None)
    yield w
    gw.db.dispose()


def browser(app: FastAPI, base_url: str = "http://testserver", **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=base_url,
        headers=headers,
        follow_redirects=False,
    )


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/console/login")
    assert page.status_code == 200
    return await client.post(
        "/console/login", data={"email": email, "password": password, "csrf": csrf_of(page.text)}
    )


@pytest.fixture
async def signed_in(world: World) -> AsyncIterator[Any]:
    """signed_in(email) → a client whose session is that user's."""
    clients: list[httpx.AsyncClient] = []

    async def make(email: str) -> httpx.AsyncClient:
        client = browser(world.app)
        clients.append(client)
        r = await sign_in(client, email)
        assert r.status_code == 303, r.text
        return client

    yield make
    for c in clients:
        await c.aclose()


async def form_post(
    client: httpx.AsyncClient, page_url: str, action: str, data: dict[str, Any]
) -> httpx.Response:
    """Post a form the way the browser would: the CSRF token read from the page first."""
    page = await client.get(page_url)
    assert page.status_code == 200, page.text
    return await client.post(action, data={"csrf": csrf_of(page.text), **data})
