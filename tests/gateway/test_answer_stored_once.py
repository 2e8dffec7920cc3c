"""The authority's answer is stored once per certified invoice (in `raw_response`), and the API
still shows it at both places it always did (`raw_response` and `certification.raw`); both
databases, every registered authority in mock."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from fiscalgate.gateway.invoices.models import InvoiceRow
from tests.gateway.conftest import REAL, gateway, real_invoice, real_tenant

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("authority", REAL)
async def test_the_answer_is_stored_once_and_answered_as_before(real_app: FastAPI, authority: str) -> None:
    _, api, _, _ = await real_tenant(real_app, authority)
    async with api:
        created = await api.post("/v1/invoices", json={"invoice": real_invoice(authority), "approve": True})
        assert created.status_code == 201, created.text
        invoice_id = created.json()["id"]
        certified = await api.post(f"/v1/invoices/{invoice_id}/certify")
        assert certified.status_code == 200, certified.text
        got = (await api.get(f"/v1/invoices/{invoice_id}")).json()

    stmt = select(InvoiceRow.status, InvoiceRow.reference, InvoiceRow.certification, InvoiceRow.raw_response)
    row = gateway(real_app).db.read_call(lambda s: s.execute(stmt.where(InvoiceRow.id == invoice_id)).one())
    assert row.status == "certified"
    assert isinstance(row.raw_response, dict) and row.raw_response  # the answer, once
    assert row.certification is not None and "raw" not in row.certification
    for answer in (certified.json(), got):
        assert answer["raw_response"] == row.raw_response
        assert answer["certification"]["raw"] == row.raw_response
        assert answer["certification"]["reference"] == row.reference
