"""Credit notes against certified invoices, full or partial, on each real authority's simulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fiscalgate.authorities import descriptor
from fiscalgate.core.invoice import Invoice
from fiscalgate.gateway.invoices.credit_notes import build_credit_note
from fiscalgate.gateway.invoices.schemas import CreditNoteCreate
from tests.gateway.conftest import REAL, real_invoice, real_tenant

pytestmark = pytest.mark.anyio


async def _certified(api: httpx.AsyncClient, authority: str) -> dict[str, Any]:
    inv = (await api.post("/v1/invoices", json={"invoice": real_invoice(authority), "approve": True})).json()
    r = await api.post(f"/v1/invoices/{inv['id']}/certify")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("authority", REAL)
async def test_partial_then_full_credit(real_app: FastAPI, authority: str) -> None:
    _, api, _, _ = await real_tenant(real_app, authority)
    async with api:
        original = await _certified(api, authority)
        r = await api.post(
            f"/v1/invoices/{original['id']}/credit-notes",
            json={
                "number": "AV-1",
                "lines": [{"original_line": 2, "quantity": "1"}],
                "reason": "retour",
                "approve": True,
            },
        )
        assert r.status_code == 201, r.text
        partial = r.json()
        assert (partial["kind"], partial["original_id"], partial["status"]) == (
            "credit_note",
            original["id"],
            "approved",
        )
        doc = partial["invoice"]
        assert doc["original"]["reference"] == original["reference"]
        assert [(line["original_line"], line["quantity"]) for line in doc["lines"]] == [(2, "1")]
        r = await api.post(f"/v1/invoices/{partial['id']}/certify")
        assert r.status_code == 200, r.text
        cert = r.json()["certification"]
        assert cert["kind"] == "credit_note" and r.json()["reference"] != original["reference"]
        assert Decimal(cert["totals"]["total"]) != 0

        # "full" now credits what is left: all of line 1 and 2 of the 3 units of line 2
        r = await api.post(
            f"/v1/invoices/{original['id']}/credit-notes", json={"number": "AV-2", "approve": True}
        )
        if descriptor(authority).credit_notes.one_per_invoice:  # SFEC
            assert r.status_code == 409 and r.json()["code"] == "credit_note.one_per_invoice"
            return
        rest = r.json()
        assert [(line["original_line"], line["quantity"]) for line in rest["invoice"]["lines"]] == [
            (1, "2"),
            (2, "2"),
        ]
        r = await api.post(f"/v1/invoices/{rest['id']}/certify")
        assert r.status_code == 200, r.text

        # nothing is left to credit
        r = await api.post(f"/v1/invoices/{original['id']}/credit-notes", json={"number": "AV-3"})
        assert r.status_code == 422 and r.json()["problems"][0]["rule"] == "nothing_to_credit"
        listed = (await api.get("/v1/invoices", params={"original_id": original["id"]})).json()["items"]
        assert {i["number"] for i in listed} == {"AV-1", "AV-2"}


async def test_credit_note_rules(real_app: FastAPI) -> None:
    _, api, _, _ = await real_tenant(real_app, "bj-emecef")
    async with api:
        draft = (await api.post("/v1/invoices", json={"invoice": real_invoice("bj-emecef")})).json()
        r = await api.post(f"/v1/invoices/{draft['id']}/credit-notes", json={"number": "AV-X"})
        assert r.status_code == 409 and r.json()["code"] == "credit_note.original_not_certified"

        original = await _certified(api, "bj-emecef")
        url = f"/v1/invoices/{original['id']}/credit-notes"
        r = await api.post(url, json={"number": "AV-X", "lines": [{"original_line": 1, "quantity": "5"}]})
        assert r.status_code == 422
        assert r.json()["problems"][0] == {
            "field": "lines[0].quantity",
            "rule": "exceeds_original",
            "message": "only 2 of line 1 is left to credit",
            "expected": "<= 2",
        }
        r = await api.post(
            url,
            json={
                "number": "AV-X",
                "lines": [{"original_line": 9}, {"original_line": 1}, {"original_line": 1}],
            },
        )
        assert [p["rule"] for p in r.json()["problems"]] == ["out_of_range", "duplicate"]

        cn = (await api.post(url, json={"number": "AV-OK", "approve": True})).json()
        assert (await api.post(f"/v1/invoices/{cn['id']}/certify")).status_code == 200
        r = await api.post(f"/v1/invoices/{cn['id']}/credit-notes", json={"number": "AV-AV"})
        assert r.status_code == 409 and r.json()["code"] == "credit_note.of_credit_note"

        r = await api.post(
            "/v1/invoices",
            json={
                "invoice": {**real_invoice("bj-emecef"), "kind": "credit_note", "original": {"number": "X"}}
            },
        )
        assert r.status_code == 422 and r.json()["code"] == "invoice.credit_note_via_original"


def test_partial_credit_shares_amount_discounts() -> None:
    original = Invoice.model_validate(
        {
            "number": "F-1",
            "seller": {"name": "S"},
            "lines": [
                {
                    "description": "a",
                    "quantity": "4",
                    "unit_price": "100",
                    "discount": {"kind": "amount", "value": "40"},
                },
                {"description": "b", "quantity": "1", "unit_price": "600"},
            ],
            "discount": {"kind": "amount", "value": "100"},
            "payments": [{"method": "card", "amount": "1000"}],
        }
    )
    body = CreditNoteCreate(number="AV-1", lines=[{"original_line": 1, "quantity": "1"}])  # type: ignore[list-item]
    credit = build_credit_note(original, "REF-1", body, {})
    line = credit.lines[0]
    assert (line.quantity, line.original_line, line.discount.value if line.discount else None) == (
        Decimal(1),
        1,
        Decimal(10),
    )
    # invoice discount: 100 x (100 / 1000 of gross)
    assert credit.discount is not None and credit.discount.value == Decimal(10)
    assert credit.original is not None and credit.original.reference == "REF-1"
    assert [p.amount for p in credit.payments] == [None]
