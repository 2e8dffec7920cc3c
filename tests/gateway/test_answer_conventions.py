"""The answers' conventions, with every registered authority (its simulator, in mock): an absent
value is null (never `""` nor `{}`), and every datetime is UTC, ISO 8601, with `Z`, whatever the
authority's own time zone (both databases)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI

from fiscalgate.core.dates import utc_iso, utc_iso_text
from tests.gateway.conftest import REAL, real_invoice, real_tenant

pytestmark = pytest.mark.anyio

UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")
# The client's own document, and the authority's own words (as received): returned as they are.
VERBATIM = {"invoice", "authority_data", "raw", "raw_response", "checkpoint"}


def _walk(node: Any, path: str, found: list[str]) -> None:
    if isinstance(node, dict):
        if node == {}:
            found.append(f"{path}: empty object")
        for key, value in node.items():
            if key in VERBATIM:
                continue
            where = f"{path}.{key}"
            if value == "":
                found.append(f"{where}: empty text")
            if key.endswith("_at") and value is not None and not UTC_Z.match(str(value)):
                found.append(f"{where}: {value!r} is not UTC with Z")
            _walk(value, where, found)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, f"{path}[{i}]", found)


def _breaches(answer: Any) -> list[str]:
    found: list[str] = []
    _walk(answer, "", found)
    return found


@pytest.mark.parametrize("authority", REAL)
async def test_a_certified_invoice_answers_nulls_and_utc_datetimes(real_app: FastAPI, authority: str) -> None:
    _, api, _, _ = await real_tenant(real_app, authority)
    async with api:
        created = await api.post("/v1/invoices", json={"invoice": real_invoice(authority), "approve": True})
        assert created.status_code == 201, created.text
        assert _breaches(created.json()) == []
        certified = await api.post(f"/v1/invoices/{created.json()['id']}/certify")
        assert certified.status_code == 200, certified.text
        got = (await api.get(f"/v1/invoices/{created.json()['id']}")).json()
        listed = (await api.get("/v1/invoices", params={"status": "certified"})).json()
    for answer in (certified.json(), got, listed):
        assert _breaches(answer) == [], (authority, _breaches(answer))
    cert = got["certification"]
    assert cert["reference"] == got["reference"]
    assert UTC_Z.match(cert["certified_at"]) and UTC_Z.match(got["certified_at"])
    # the certification's moment is the invoice's, in the one convention
    assert datetime.fromisoformat(cert["certified_at"]) == datetime.fromisoformat(got["certified_at"])
    # what the QR encodes is either there or null (SFEC hands over an image only)
    assert cert["qr_content"] is None or cert["qr_content"].strip()
    assert cert["qr_content"] is not None or cert["qr_image"]


def test_the_helper_converts_other_zones_and_refuses_naive_ones() -> None:
    benin = timezone(timedelta(hours=1))
    assert utc_iso(datetime(2026, 12, 2, 17, 42, 26, tzinfo=benin)) == "2026-12-02T16:42:26Z"
    assert utc_iso(datetime(2026, 12, 2, 16, 42, 26, 120000, tzinfo=UTC)) == "2026-12-02T16:42:26.120000Z"
    assert utc_iso_text("2026-12-02T17:42:26+01:00") == "2026-12-02T16:42:26Z"
    with pytest.raises(ValueError, match="naive"):
        utc_iso(datetime(2026, 12, 2, 16, 42, 26))  # noqa: DTZ001 (the refusal is what is tested)
    with pytest.raises(ValueError):
        utc_iso_text("2026-12-02T16:42:26")


def test_the_walk_finds_what_it_must() -> None:
    bad = {"a": "", "b": {}, "c": {"created_at": "2026-12-02T17:42:26+01:00"}, "raw": {"x": ""}}
    assert sorted(_breaches(bad)) == [
        ".a: empty text",
        ".b: empty object",
        ".c.created_at: '2026-12-02T17:42:26+01:00' is not UTC with Z",
    ]
