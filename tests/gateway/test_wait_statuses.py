"""A client that asks to wait for the certification (`?wait=`) never reads a 2xx for an invoice the
queue is done with and did not certify: it gets the error a synchronous certify answers (SQLite
and PostgreSQL)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from fiscalgate.gateway.errors import http_status_for_kind
from tests.gateway.conftest import gateway, real_invoice, real_tenant
from tests.gateway.test_queue import create, workers

pytestmark = pytest.mark.anyio


async def test_a_rejection_waited_for_is_the_synchronous_422(real_app: FastAPI) -> None:
    _, api, _, injector = await real_tenant(real_app, "cg-sfec")
    injector.add("error", status=400, method="POST", times=-1, body={"message": "invoice refused"})
    async with api, workers(gateway(real_app)):
        body = {"invoice": real_invoice("cg-sfec"), "certify": True}
        r = await api.post("/v1/invoices", json=body, params={"wait": 20})
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["invoice_status"] == "rejected" and body["invoice_id"]
        stored = (await api.get(f"/v1/invoices/{body['invoice_id']}")).json()
        assert stored["status"] == "rejected"
        assert body["code"] == stored["error"]["code"] and body["message"] == stored["error"]["message"]
        # the same answer as the synchronous path for the same invoice
        sync = await api.post(f"/v1/invoices/{body['invoice_id']}/certify")
        assert sync.status_code == 409  # rejected: nothing to certify until it is edited


async def test_an_authority_down_for_good_waited_for_is_not_a_2xx(real_app: FastAPI) -> None:
    _, api, _, injector = await real_tenant(real_app, "cg-sfec", max_attempts=1)
    injector.add("error", status=503, method="POST", times=-1)
    async with api, workers(gateway(real_app)):
        inv = await create(api, "cg-sfec")
        r = await api.post(f"/v1/invoices/{inv['id']}/certify", params={"wait": 30})
    assert r.status_code in (502, 503), r.text
    body = r.json()
    assert body["invoice_status"] == "failed" and body["invoice_id"] == inv["id"]
    assert body["status"] == r.status_code and body["retryable"] is True


async def test_an_fne_unknown_waited_for_is_a_409(real_app: FastAPI) -> None:
    _, api, _, injector = await real_tenant(real_app, "ci-fne", timeout_seconds=0.5)
    injector.add("hang_after_processing", method="POST", seconds=5)
    async with api, workers(gateway(real_app)):
        inv = await create(api, "ci-fne")
        r = await api.post(f"/v1/invoices/{inv['id']}/certify", params={"wait": 30})
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "invoice.unknown" and r.json()["invoice_status"] == "unknown"


def test_a_stored_error_kind_maps_to_the_synchronous_status() -> None:
    assert http_status_for_kind("InvoiceRejected") == 422
    assert http_status_for_kind("AuthorityUnreachable") == 503
    assert http_status_for_kind("AuthorityServerError") == 502
    assert http_status_for_kind("RateLimited") == 429
    assert http_status_for_kind("OutcomeUnknown") == 504
    assert http_status_for_kind("Conflict") == 409
    assert http_status_for_kind("NoSuchKind") == 500
