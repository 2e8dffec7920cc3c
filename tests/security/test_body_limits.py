"""Bodies are not read before the caller is known, and never beyond the documented limit."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from fiscalgate.gateway.api.guard import DEFAULT_MAX_BODY, GuardSettings
from tests.gateway.conftest import client, new_tenant, sample_invoice

pytestmark = pytest.mark.anyio

CHUNK = 64 * 1024


class Upload:
    """An ASGI conversation with a body streamed in chunks, counting how many the app pulled."""

    def __init__(self, chunks: int, *, declare_length: bool, idempotency_key: str | None = None) -> None:
        self.chunks = chunks
        self.declare_length = declare_length
        self.idempotency_key = idempotency_key
        self.pulled = 0
        self.status: int | None = None
        self.body = b""

    async def run(self, app: FastAPI, path: str, token: str) -> dict[str, Any]:
        headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]
        if self.declare_length:
            headers.append((b"content-length", str(self.chunks * CHUNK).encode()))
        if self.idempotency_key:
            headers.append((b"idempotency-key", self.idempotency_key.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "server": ("gateway", 80),
        }

        async def receive() -> dict[str, Any]:
            if self.pulled >= self.chunks:
                return {"type": "http.disconnect"}
            self.pulled += 1
            return {"type": "http.request", "body": b" " * CHUNK, "more_body": self.pulled < self.chunks}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            elif message["type"] == "http.response.body":
                self.body += message.get("body", b"")

        await app(scope, receive, send)
        return dict(json.loads(self.body))


async def test_a_big_body_with_a_bad_token_is_refused_without_reading_it(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app()
    for declare in (True, False):  # 300 MB declared, or streamed without a length
        upload = Upload(chunks=300 * 16, declare_length=declare)
        body = await upload.run(app, "/v1/invoices", "fgk_000000000000_not-a-key")
        assert upload.status == 401 and body["code"] == "auth.invalid_key"
        assert upload.pulled == 0


async def test_a_body_over_the_limit_is_a_413_before_the_rest_is_read(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(guard=GuardSettings(max_body_bytes=10 * CHUNK))
    tenant, api = await new_tenant(app)
    await api.aclose()
    declared = Upload(chunks=1000, declare_length=True)
    body = await declared.run(app, "/v1/invoices", tenant["key"])
    assert declared.status == 413 and body["code"] == "request.too_large"
    assert declared.pulled == 0  # Content-Length says it all
    streamed = Upload(chunks=1000, declare_length=False)
    body = await streamed.run(app, "/v1/invoices", tenant["key"])
    assert streamed.status == 413 and "limit is 655360 bytes" in body["message"]
    assert streamed.pulled == 11  # stopped at the first chunk past the limit


async def test_the_limit_holds_when_an_idempotency_key_reads_the_body_first(
    make_app: Callable[..., FastAPI],
) -> None:
    """The Idempotency-Key middleware reads the whole body to fingerprint it: it must read it
    through the guard, stopped at the limit like any other reader."""
    app = make_app(guard=GuardSettings(max_body_bytes=10 * CHUNK))
    tenant, api = await new_tenant(app)
    for declare in (True, False):
        upload = Upload(chunks=1000, declare_length=declare, idempotency_key=f"big-{declare}")
        body = await upload.run(app, "/v1/invoices", tenant["key"])
        assert upload.status == 413 and body["code"] == "request.too_large", body
        assert upload.pulled == (0 if declare else 11)
    async with api:  # the key did not get stuck: a request of the right size goes through
        r = await api.post(
            "/v1/invoices", json={"invoice": sample_invoice()}, headers={"Idempotency-Key": "big-False"}
        )
    assert r.status_code == 201, r.text  # the 413 was not stored against the key


def _big_invoice(lines: int) -> dict[str, Any]:
    return sample_invoice(
        lines=[
            {
                "description": f"Article de quincaillerie numéro {i} — sac de ciment 50 kg",
                "quantity": "3",
                "unit_price": "12500",
                "reference": f"REF-{i:06d}",
                "unit": "sac",
                "tax_category": "standard",
            }
            for i in range(lines)
        ]
    )


async def test_a_1000_line_invoice_and_a_1000_invoice_batch_fit_the_default_limit(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app()
    _, api = await new_tenant(app)
    async with api:
        r = await api.post("/v1/invoices", json={"authority": "ci-fne", "invoice": _big_invoice(1000)})
        assert r.status_code == 201, r.text[:300]
        assert len(r.json()["invoice"]["lines"]) == 1000
    batch = json.dumps(
        {"invoices": [{"authority": "ci-fne", "invoice": _big_invoice(10)} for _ in range(1000)]}
    )
    assert len(batch.encode()) < DEFAULT_MAX_BODY / 2


async def test_non_api_paths_are_not_authenticated_by_the_guard(make_app: Callable[..., FastAPI]) -> None:
    # The console has its own session auth and CSRF; /mock pages are public: the guard lets them be.
    async with client(make_app(), token=None) as anonymous:
        r = await anonymous.post("/console/sign-in", data={"email": "a@b.c", "password": "x"})
        assert r.status_code == 404 and r.json()["code"] == "http.404"
        r = await anonymous.get("/mock/t/ci-fne/fr/verification/abc")
        assert r.status_code == 404
        r = await anonymous.post("/v1/invoices", json={})
        assert r.status_code == 401 and r.json()["code"] == "auth.missing"
