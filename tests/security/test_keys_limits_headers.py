"""Rate limits (429 + Retry-After), API-key scope and expiry, admin-token and secret-key rotation
without downtime, security headers on every answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import update

from fiscalgate.cli import main as cli
from fiscalgate.gateway import create_app
from fiscalgate.gateway.api.guard import GuardSettings
from fiscalgate.gateway.crypto import SecretBox, rotate_stored_secrets
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.tenants.models import ApiKey
from tests.gateway.conftest import ADMIN, client, gateway, mock_settings, new_tenant

pytestmark = pytest.mark.anyio


async def test_a_key_past_its_rate_gets_429_with_retry_after(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(guard=GuardSettings(rate_per_key=5))
    _, api = await new_tenant(app)  # the admin token's 4 requests: under its own limit
    _, other = await new_tenant(app)
    async with api, other:
        statuses = [(await api.get("/v1/tenant")).status_code for _ in range(5)]
        r = await api.get("/v1/tenant")
        assert statuses == [200] * 5
        assert r.status_code == 429 and r.json()["code"] == "rate_limited.key"
        assert int(r.headers["Retry-After"]) >= 1 and r.json()["retryable"] is True
        assert (await other.get("/v1/tenant")).status_code == 200  # each key its own bucket


async def test_a_source_past_its_rate_gets_429(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(guard=GuardSettings(rate_per_source=2))
    _, api = await new_tenant(app)  # uses 2 POSTs (tenant, key) of the source's budget
    async with api:
        r = await api.get("/v1/tenant")
    assert r.status_code == 429 and r.json()["code"] == "rate_limited.source" and "Retry-After" in r.headers


async def test_failed_authentications_block_the_source(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(guard=GuardSettings(rate_auth_failures=3))
    _, api = await new_tenant(app)
    async with client(app, "fgk_000000000000_guess") as guesser:
        codes = [(await guesser.get("/v1/tenant")).json()["code"] for _ in range(4)]
    assert codes == ["auth.invalid_key"] * 3 + ["rate_limited.auth_failures"]
    async with api:  # same source: refused too until the bucket refills
        assert (await api.get("/v1/tenant")).status_code == 429


async def _key(app: FastAPI, tenant_id: str, **body: Any) -> httpx.Response:
    async with client(app) as adm:
        return await adm.post(f"/v1/admin/tenants/{tenant_id}/api-keys", json=body)


async def test_a_read_only_key_reads_but_cannot_write(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    tenant, _ = await new_tenant(app, settings={"ci-fne": mock_settings("ci-fne")})
    r = await _key(app, tenant["id"], label="dashboard", scope="read")
    assert r.status_code == 201 and r.json()["scope"] == "read"
    async with client(app, r.json()["key"]) as reader:
        assert (await reader.get("/v1/invoices")).status_code == 200
        assert (await reader.get("/v1/settings/ci-fne")).status_code == 200
        writes = [("POST", "/v1/invoices"), ("PUT", "/v1/settings/ci-fne"),
                  ("DELETE", "/v1/settings/ci-fne"), ("POST", "/v1/invoices/x/certify")]  # fmt: skip
        for method, path in writes:
            r = await reader.request(method, path, json={})
            assert r.status_code == 403 and r.json()["code"] == "auth.read_only_key", (method, path)


async def test_an_expired_key_is_refused(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    tenant, _ = await new_tenant(app)
    r = await _key(app, tenant["id"], expires_at=(utcnow() - timedelta(minutes=1)).isoformat())
    assert r.status_code == 422 and r.json()["problems"][0]["field"] == "expires_at"
    r = await _key(app, tenant["id"], expires_at=(utcnow() + timedelta(days=30)).isoformat())
    assert r.status_code == 201 and r.json()["expires_at"] is not None
    key, key_id = r.json()["key"], r.json()["id"]
    async with client(app, key) as api:
        assert (await api.get("/v1/tenant")).status_code == 200

        def expire(session: Any) -> None:
            session.execute(update(ApiKey).where(ApiKey.id == key_id).values(expires_at=utcnow()))

        gateway(app).db.call(expire)
        r = await api.get("/v1/tenant")
    assert r.status_code == 401 and r.json()["code"] == "auth.invalid_key"


async def test_admin_token_rotation_accepts_both_tokens_during_the_change(
    database_url: str, tmp_path: Path
) -> None:
    key = Fernet.generate_key()
    both = create_app(database_url, admin_token=f"new-token,{ADMIN}", secret_key=key, var_dir=tmp_path)
    only_new = create_app(database_url, admin_token="new-token", secret_key=key, var_dir=tmp_path)
    try:
        for token in ("new-token", ADMIN):
            async with client(both, token) as adm:
                assert (await adm.get("/v1/admin/tenants")).status_code == 200
        async with client(only_new, ADMIN) as old:
            assert (await old.get("/v1/admin/tenants")).status_code == 401
    finally:
        gateway(both).db.dispose()
        gateway(only_new).db.dispose()


async def test_secret_key_rotation_without_downtime(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = create_app(database_url, admin_token=ADMIN, secret_key=old, var_dir=tmp_path)
    _, api = await new_tenant(before, settings={"ci-fne": mock_settings("ci-fne")})
    secret = mock_settings("ci-fne")["api_key"]
    # Step 1: processes restarted with "new,old": the stored secrets still open.
    during = create_app(database_url, admin_token=ADMIN, secret_key=f"{new},{old}", var_dir=tmp_path)
    # Step 2: `fiscalgate rotate-keys` re-encrypts everything with the new key.
    monkeypatch.setenv("FISCALGATE_SECRET_KEY", f"{new},{old}")
    result = CliRunner().invoke(cli, ["rotate-keys", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "1 in authority_settings" in result.output
    # Step 3: the old key is gone; everything still opens.
    after = create_app(database_url, admin_token=ADMIN, secret_key=new, var_dir=tmp_path)
    try:
        for app in (during, after):
            async with client(app, api.headers["Authorization"].removeprefix("Bearer ")) as c:
                r = await c.get("/v1/settings/ci-fne")
                assert r.status_code == 200 and r.json()["problems"] == []
        assert rotate_stored_secrets(database_url, SecretBox(new)) == {
            "authority_settings": 1,
            "audit_entries": 0,
            "idempotency_keys": 0,
        }
        assert gateway(after).box.open(_sealed(after))["api_key"] == secret
    finally:
        await api.aclose()
        for app in (before, during, after):
            gateway(app).db.dispose()


def _sealed(app: FastAPI) -> str:
    from sqlalchemy import select

    from fiscalgate.gateway.settings.models import AuthorityConfig

    return str(gateway(app).db.call(lambda s: s.scalar(select(AuthorityConfig.secrets_sealed))))


HEADERS = ("x-content-type-options", "content-security-policy", "referrer-policy", "x-frame-options")


async def test_security_headers_on_every_answer(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()

    @app.get("/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as anyone:
        answers = [
            await anyone.get("/healthz"),
            await anyone.get("/v1/tenant"),  # 401
            await anyone.get("/nope"),  # 404
            await anyone.get("/boom"),  # 500
            await anyone.get("/docs"),
        ]
    assert [a.status_code for a in answers] == [200, 401, 404, 500, 200]
    for answer in answers:
        assert all(h in answer.headers for h in HEADERS), answer.headers
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in answer.headers  # plain http: no HSTS
    assert "frame-ancestors 'none'" in answers[0].headers["content-security-policy"]
    assert "script-src 'self';" in answers[0].headers["content-security-policy"]
    assert answers[1].headers["cache-control"] == "no-store"
    async with httpx.AsyncClient(transport=transport, base_url="https://gw") as tls:
        assert "max-age=" in (await tls.get("/healthz")).headers["strict-transport-security"]
