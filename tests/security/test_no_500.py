"""Inputs that used to answer 500, each answered 422 with the one error body (both databases)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI

from tests.gateway.conftest import client, new_tenant

pytestmark = pytest.mark.anyio

ERROR_KEYS = {"kind", "code", "message", "status", "problems", "resolution", "retryable", "invoice_id"}


@pytest.mark.parametrize("route", ["/v1/invoices", "/v1/audit"])
async def test_offset_beyond_64_bits_is_a_422(make_app: Callable[..., FastAPI], route: str) -> None:
    _, api = await new_tenant(make_app())
    async with api:
        r = await api.get(route, params={"offset": str(2**63)})
        assert r.status_code == 422, r.text
        assert r.json()["problems"][0]["field"] == "offset"
        assert (await api.get(route, params={"offset": str(2**63 - 1)})).json()["items"] == []


async def test_nul_characters_anywhere_are_a_422_naming_where(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    tenant, api = await new_tenant(app)
    async with api:
        for method, url, body, where in [
            ("GET", "/v1/invoices/a%00b", None, "the path"),
            ("GET", "/v1/invoices?number=a%00b", None, "the query string"),
            (
                "POST",
                "/v1/invoices",
                {"authority": "ci-fne", "invoice": {"number": "F\x001"}},
                "invoice.number",
            ),
            ("PUT", "/v1/settings/ci-fne", {"environment": "mock", "ncc": "\x00"}, "ncc"),
        ]:
            r = await api.request(method, url, json=body)
            assert r.status_code == 422, (url, r.text)
            assert set(r.json()) >= ERROR_KEYS
            assert r.json()["code"] == "request.nul_byte"
            assert r.json()["problems"][0]["field"] == where
        # An escaped backslash followed by "u0000" is text, not a NUL: accepted.
        r = await api.post(
            "/v1/invoices", content=b'{"authority": "ci-fne", "invoice": {"number": "A\\\\u0000"}}'
        )
        assert r.status_code == 422 and r.json()["code"] == "request.invalid", r.text
    async with client(app) as adm:
        r = await adm.post("/v1/admin/tenants", json={"name": "N\x00", "country": "CI"})
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "name"
        r = await adm.post(f"/v1/admin/tenants/{tenant['id']}/api-keys", json={"label": "\x00"})
        assert r.status_code == 422


async def test_dates_that_overflow_in_utc_are_a_422(make_app: Callable[..., FastAPI]) -> None:
    _, api = await new_tenant(make_app())
    async with api:
        for value in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
            r = await api.get("/v1/audit", params={"since": value})
            assert r.status_code == 422, r.text
            assert r.json()["problems"][0]["field"] == "since"
            r = await api.get("/v1/invoices", params={"created_before": value})
            assert r.status_code == 422, r.text
