"""Answers kept for `Idempotency-Key` replays hold no secret in clear: a webhook's signing secret and
a new API key are shown again on replay, but the `idempotency_keys` table only holds a sealed form;
`fiscalgate rotate-keys` re-seals them, and a gateway without the sealing key refuses to replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import select

from fiscalgate.gateway.api.app import create_app
from fiscalgate.gateway.api.models import IdempotencyRecord
from fiscalgate.gateway.crypto import SecretBox, rotate_stored_secrets
from tests.gateway.conftest import ADMIN, client, gateway, new_tenant

pytestmark = pytest.mark.anyio


def _stored(app: FastAPI, key: str) -> IdempotencyRecord:
    query = select(IdempotencyRecord).where(IdempotencyRecord.key == key)
    return gateway(app).db.call(lambda s: s.scalars(query).one())


def _row_text(row: IdempotencyRecord) -> str:
    return json.dumps(
        {"body": row.response_body, "headers": row.response_headers, "path": row.path}, default=str
    )


async def test_a_webhook_secret_is_replayed_but_never_stored_in_clear(real_app: FastAPI) -> None:
    _, api = await new_tenant(real_app, country="CI")
    body = {"url": "https://erp.example.com/hooks", "events": ["invoice.certified"]}
    async with api:
        first = await api.post("/v1/webhooks", json=body, headers={"Idempotency-Key": "hook-1"})
        assert first.status_code == 201, first.text
        secret = first.json()["secret"]
        assert len(secret) >= 16
        again = await api.post("/v1/webhooks", json=body, headers={"Idempotency-Key": "hook-1"})
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()  # the caller who lost the answer gets the secret once more
        assert len((await api.get("/v1/webhooks")).json()["items"]) == 1  # and nothing was created twice
    row = _stored(real_app, "hook-1")
    assert secret not in _row_text(row)
    assert set(row.response_body) == {"sealed"}


async def test_an_issued_api_key_is_replayed_but_never_stored_in_clear(real_app: FastAPI) -> None:
    tenant, api = await new_tenant(real_app, country="CI")
    await api.aclose()
    path = f"/v1/admin/tenants/{tenant['id']}/api-keys"
    async with client(real_app) as admin:
        first = await admin.post(path, json={"label": "erp"}, headers={"Idempotency-Key": "key-1"})
        assert first.status_code == 201, first.text
        issued = first.json()["key"]
        again = await admin.post(path, json={"label": "erp"}, headers={"Idempotency-Key": "key-1"})
        assert again.status_code == 201 and again.json()["key"] == issued
    row = _stored(real_app, "key-1")
    assert issued not in _row_text(row)
    assert issued.split("_")[-1][-12:] not in _row_text(row)  # not even its tail


async def test_rotation_re_seals_and_a_gateway_without_the_key_refuses_to_replay(
    database_url: str, tmp_path: Path
) -> None:
    old, new, other = (Fernet.generate_key().decode() for _ in range(3))

    def app_with(key: str) -> FastAPI:
        return create_app(
            database_url, admin_token=ADMIN, secret_key=key, var_dir=tmp_path, allow_private_urls=True
        )

    first_app = app_with(old)
    apps: list[FastAPI] = [first_app]
    try:
        tenant, api = await new_tenant(first_app, country="CI")
        await api.aclose()
        path = f"/v1/admin/tenants/{tenant['id']}/api-keys"
        async with client(first_app) as admin:
            r = await admin.post(path, json={"label": "erp"}, headers={"Idempotency-Key": "rot-1"})
            assert r.status_code == 201, r.text
        issued: Any = r.json()["key"]
        counts = rotate_stored_secrets(database_url, SecretBox(f"{new},{old}"))
        assert counts["idempotency_keys"] == 1
        rotated = app_with(new)  # the old key is withdrawn: the replay still opens
        stranger = app_with(other)  # a key that never sealed it: no replay, a clear refusal
        apps += [rotated, stranger]
        async with client(rotated) as admin:
            r = await admin.post(path, json={"label": "erp"}, headers={"Idempotency-Key": "rot-1"})
            assert r.status_code == 201 and r.json()["key"] == issued
        async with client(stranger) as admin:
            r = await admin.post(path, json={"label": "erp"}, headers={"Idempotency-Key": "rot-1"})
            assert r.status_code == 409 and r.json()["code"] == "idempotency.unreadable", r.text
            assert issued not in r.text
    finally:
        for app in apps:
            gateway(app).db.dispose()
