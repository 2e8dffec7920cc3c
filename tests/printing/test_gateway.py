"""The printed invoice through the gateway: GET /v1/invoices/{id}/pdf and the tenant profile."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from tests.gateway.conftest import client, new_tenant, real_invoice, real_tenant
from tests.printing.helpers import all_text, qr_codes_per_page, qr_of_data_uri

pytestmark = pytest.mark.anyio


def data_uri(fmt: str = "PNG", size: tuple[int, int] = (160, 60), mime: str | None = None) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, format=fmt)
    return f"data:{mime or 'image/' + fmt.lower()};base64,{base64.b64encode(out.getvalue()).decode()}"


PROFILE = {
    "name": "Épicerie Ça Va Bien",
    "tax_id": "9606123E",
    "rccm": "CI-ABJ-2024-B-12345",
    "address": "Rue des Jardins, Cocody, Abidjan",
    "phone": "+225 07 09 08 07 65",
    "email": "contact@cavabien.ci",
}


async def download_scenario(real_app: FastAPI, authority: str) -> None:
    """A new user's path: profile, invoice, pro forma, certify, print, reprint, audit."""
    _, api, _, _ = await real_tenant(real_app, authority)
    async with api:
        assert (await api.put("/v1/profile", json={**PROFILE, "logo": data_uri()})).status_code == 200
        created = (
            await api.post("/v1/invoices", json={"invoice": real_invoice(authority), "approve": True})
        ).json()
        url = f"/v1/invoices/{created['id']}/pdf"

        pro = await api.get(url)  # before certification: a pro forma
        assert pro.status_code == 200 and pro.headers["content-type"] == "application/pdf"
        assert pro.headers["fiscalgate-print-copy"] == "0"
        assert "NON CERTIFIÉE" in all_text(pro.content)
        assert all(not page for page in qr_codes_per_page(pro.content))

        cert = (await api.post(f"/v1/invoices/{created['id']}/certify")).json()["certification"]
        first = await api.get(url, params={"layout": "receipt"})
        assert first.headers["fiscalgate-print-copy"] == "1"
        assert 'filename="' in first.headers["content-disposition"]
        text = all_text(first.content)
        assert cert["reference"] in text and "Épicerie Ça Va Bien" in text and "CI-ABJ-2024-B-12345" in text
        assert "DUPLICATA" not in text and "NON CERTIFIÉE" not in text
        expected = qr_of_data_uri(cert["qr_image"]) if cert.get("qr_image") else cert["qr_content"]
        assert qr_codes_per_page(first.content)[-1] == [expected]

        second = await api.get(url, params={"lang": "en"})
        assert second.headers["fiscalgate-print-copy"] == "2"
        assert "DUPLICATA" in all_text(second.content)

        recorded = await prints(api, created["id"])
    by_event = sorted((e["event"], e["detail"]["copy"], e["detail"]["layout"]) for e in recorded)
    assert by_event == [
        ("invoice.printed", 1, "receipt"),
        ("invoice.printed", 2, "a4"),
        ("invoice.printed_pro_forma", 0, "a4"),
    ]
    assert all(e["trigger"].startswith("api_key:") for e in recorded)


async def prints(api: httpx.AsyncClient, invoice_id: str) -> list[dict[str, Any]]:
    entries = (await api.get("/v1/audit", params={"invoice_id": invoice_id, "kind": "invoice"})).json()[
        "items"
    ]
    return [e for e in entries if e["event"] in ("invoice.printed", "invoice.printed_pro_forma")]


async def test_certify_then_download_the_pdf_its_qr_scans_back(real_app: FastAPI) -> None:
    # On SQLite and PostgreSQL (the print lock and count); the other authorities: test_pdf_route.py
    await download_scenario(real_app, "bj-emecef")


@pytest.mark.parametrize(
    ("params", "field", "allowed"),
    [
        ({"layout": "a5"}, "layout", "'a4', 'receipt' or 'receipt58'"),
        ({"lang": "de"}, "lang", "'fr' or 'en'"),
    ],
)
async def test_bad_layout_or_lang_is_a_precise_422(
    real_app: FastAPI, params: dict[str, str], field: str, allowed: str
) -> None:
    _, api, _, _ = await real_tenant(real_app, "ci-fne")
    async with api:
        created = (await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne")})).json()
        r = await api.get(f"/v1/invoices/{created['id']}/pdf", params=params)
        assert r.status_code == 422
        body = r.json()
        assert body["code"] == "request.invalid"
        assert body["problems"][0]["field"] == field and allowed in body["problems"][0]["message"]
        assert await prints(api, created["id"]) == []  # nothing recorded for a refused print


async def test_profile_defaults_saves_and_keeps_or_removes_the_logo(real_app: FastAPI) -> None:
    _, api = await new_tenant(real_app, name="Maison Kouassi")
    async with api:
        blank = (await api.get("/v1/profile")).json()
        assert blank["name"] == "Maison Kouassi" and blank["logo"] is None and blank["updated_at"] is None
        logo = data_uri("JPEG")
        saved = (await api.put("/v1/profile", json={**PROFILE, "logo": logo})).json()
        assert saved["logo"] == logo and saved["email"] == PROFILE["email"]
        kept = (await api.put("/v1/profile", json={"name": "Maison Kouassi SARL", "email": ""})).json()
        assert kept["logo"] == logo  # absent: kept
        assert kept["email"] is None and kept["rccm"] is None  # PUT replaces the text fields
        removed = (await api.put("/v1/profile", json={"name": "Maison Kouassi SARL", "logo": None})).json()
        assert removed["logo"] is None
        events = (await api.get("/v1/audit", params={"kind": "tenant"})).json()["items"]
    changes = [e["detail"]["logo"] for e in events if e["event"] == "profile.updated"]
    assert sorted(changes) == ["kept", "removed", "replaced"]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"email": "not-an-address"}, "email", "request.invalid"),
        ({"phone": "call me"}, "phone", "request.invalid"),
        ({"name": ""}, "name", "request.invalid"),
        ({"logo": "https://example.com/logo.png"}, "logo", "profile.logo_format"),
        ({"logo": data_uri("GIF", mime="image/gif")}, "logo", "profile.logo_type"),
        ({"logo": data_uri("JPEG", mime="image/png")}, "logo", "profile.logo_type"),
        ({"logo": "data:image/png;base64,bm90IGFuIGltYWdl"}, "logo", "profile.logo_unreadable"),
        ({"logo": "data:image/png;base64,@@@"}, "logo", "profile.logo_base64"),
        ({"logo": data_uri(size=(2400, 10))}, "logo", "profile.logo_too_large"),
        (
            {"logo": "data:image/png;base64," + base64.b64encode(b"\0" * 300_000).decode()},
            "logo",
            "profile.logo_too_large",
        ),
    ],
)
async def test_bad_profile_is_refused_and_changes_nothing(
    real_app: FastAPI, body: dict[str, Any], field: str, code: str
) -> None:
    _, api = await new_tenant(real_app)
    async with api:
        before = (await api.put("/v1/profile", json=PROFILE)).json()
        r = await api.put("/v1/profile", json={**PROFILE, **body})
        assert r.status_code == 422, r.text
        assert r.json()["code"] == code and r.json()["problems"][0]["field"] == field
        assert (await api.get("/v1/profile")).json() == before


async def test_a_tenant_sees_and_changes_only_its_own_profile(real_app: FastAPI) -> None:
    _, api_a = await new_tenant(real_app, name="Tenant A")
    b, api_b = await new_tenant(real_app, name="Tenant B")
    async with api_a, api_b:
        await api_a.put("/v1/profile", json={**PROFILE, "name": "A seller"})
        assert (await api_b.get("/v1/profile")).json()["name"] == "Tenant B"
        await api_b.put("/v1/profile", json={"name": "B seller"})
        assert (await api_a.get("/v1/profile")).json()["name"] == "A seller"
    async with client(real_app, b["key"]) as again:
        assert (await again.get("/v1/profile")).json()["name"] == "B seller"
