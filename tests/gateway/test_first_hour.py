"""What a new user meets in the first hour: filters that take plain dates and refuse unknown
values, messages without library prefixes, e-mail addresses validated, amounts the currency can
carry refused with their field, in one plain notation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from tests.gateway.conftest import mock_settings, new_tenant, real_invoice

pytestmark = pytest.mark.anyio


async def test_filters_take_plain_dates_and_refuse_unknown_values(real_app: FastAPI) -> None:
    _, api = await new_tenant(real_app, settings={"ci-fne": mock_settings("ci-fne")})
    today = datetime.now(UTC).date()
    async with api:
        created = await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne")})
        assert created.status_code == 201, created.text
        number = created.json()["number"]

        def numbers(r: object) -> list[str]:
            return [i["number"] for i in r.json()["items"]]  # type: ignore[attr-defined]

        # A date is a whole UTC day: "before today" excludes today's invoice, "before" today
        # included once given as today's date.
        r = await api.get("/v1/invoices", params={"created_after": today.isoformat()})
        assert r.status_code == 200 and numbers(r) == [number], r.text
        assert numbers(await api.get("/v1/invoices", params={"created_before": today.isoformat()})) == [
            number
        ]
        yesterday = (today - timedelta(days=1)).isoformat()
        assert numbers(await api.get("/v1/invoices", params={"created_before": yesterday})) == []
        r = await api.get("/v1/audit", params={"since": today.isoformat(), "until": today.isoformat()})
        assert r.status_code == 200 and r.json()["items"], r.text

        r = await api.get("/v1/audit", params={"kind": "authority-call"})  # misspelt
        assert r.status_code == 422
        problem = r.json()["problems"][0]
        assert problem["field"] == "kind" and problem["message"].startswith("unknown kind 'authority-call'")
        assert "Value error" not in r.text
        r = await api.get("/v1/invoices", params={"created_after": "2026-13-01"})
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "created_after"


async def test_invalid_amounts_and_emails_are_refused_with_their_field(real_app: FastAPI) -> None:
    _, api = await new_tenant(real_app, settings={"ci-fne": mock_settings("ci-fne")})
    async with api:
        tenth = real_invoice("ci-fne")
        tenth["lines"] = [{"description": "Bonbon", "quantity": "1", "unit_price": "0.1"}]
        r = await api.post("/v1/invoices", json={"invoice": tenth, "approve": True})
        assert r.status_code == 422, r.text
        assert [p["field"] for p in r.json()["problems"]] == ["invoice.lines[0].unit_price"]
        assert "XOF" in r.json()["problems"][0]["message"]

        email = real_invoice("ci-fne")
        email["buyer"]["email"] = "client.example.ci"
        r = await api.post("/v1/invoices", json={"invoice": email})
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "invoice.buyer.email"
        assert "Value error" not in r.text

        exponent = real_invoice("ci-fne")
        exponent["lines"] = [{"description": "Riz", "quantity": "2E0", "unit_price": "1.5E+4"}]
        r = await api.post("/v1/invoices", json={"invoice": exponent, "approve": True})
        assert r.status_code == 201, r.text
        line = r.json()["invoice"]["lines"][0]
        assert (line["quantity"], line["unit_price"]) == ("2", "15000")
        r = await api.post(f"/v1/invoices/{r.json()['id']}/certify")
        assert r.status_code == 200 and r.json()["certification"]["totals"]["total_excl_tax"] == "30000"
