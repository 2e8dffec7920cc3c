"""Every console page renders for the roles that may see it, and the main flows work end to end
through plain form posts (no JavaScript): certify, credit note, settings refusal, provisioning."""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.conftest import World, form_post

pytestmark = pytest.mark.anyio


async def test_tenant_pages_render(world: World, signed_in: Any) -> None:
    client = await signed_in("owner@demo.test")
    invoice_id = world.invoice()
    for url in (
        "/console/dashboard",
        "/console/settings",
        "/console/invoices",
        "/console/invoices/new",
        f"/console/invoices/{invoice_id}",
        "/console/audit",
        "/console/account",
        "/console/team",
    ):
        r = await client.get(url)
        assert r.status_code == 200, (url, r.text[:2000])
        assert "<html lang=" in r.text
    r = await client.get("/console/dashboard")
    assert "MOCK" in r.text or "SIMULATEUR" in r.text  # the test-numbers banner


async def test_certify_then_partial_credit_note(world: World, signed_in: Any) -> None:
    client = await signed_in("accountant@demo.test")
    invoice_id = world.invoice("ci-fne")
    url = f"/console/invoices/{invoice_id}"
    r = await form_post(client, url, f"{url}/certify", {})
    assert r.status_code == 303, r.text
    page = await client.get(url)
    assert "badge s-certified" in page.text
    assert 'src="data:image/svg+xml' in page.text  # the QR drawn as an image
    r = await form_post(
        client, url, f"{url}/credit-note", {"number": "AV-1", "scope": "partial", "qty_1": "1"}
    )
    assert r.status_code == 303, r.text
    credit_url = r.headers["location"].split("?")[0]
    r = await form_post(client, credit_url, f"{credit_url}/certify", {})
    assert r.status_code == 303
    page = await client.get(credit_url)
    assert "badge s-certified" in page.text
    original = await client.get(url)
    assert "AV-1" in original.text


async def test_fne_production_without_url_is_refused_on_the_field(world: World, signed_in: Any) -> None:
    client = await signed_in("owner@demo.test")
    data = {
        "environment": "production",
        "active": "on",
        "ncc": "9606123E",
        "api_key": "live-key-123456",
        "point_of_sale": "Caisse 1",
        "establishment": "Siège",
        "production_url": "",
        "sticker_warning_threshold": "50",
    }
    r = await form_post(client, "/console/settings", "/console/settings/ci-fne", data)
    assert r.status_code == 422
    assert 'id="err-production_url"' in r.text
    assert "production needs the production_url" in r.text
    assert "live-key-123456" not in r.text  # a secret is never sent back to the page


async def test_admin_provisions_a_company_with_country_in_any_spelling(world: World, signed_in: Any) -> None:
    client = await signed_in("admin@platform.test")
    r = await form_post(
        client,
        "/console/admin",
        "/console/admin/tenants",
        {"name": "Groupe Abidjan-Cotonou", "country": "Ivory Coast", "modules": ["fne", "mecef"]},
    )
    assert r.status_code == 303, r.text
    page = await client.get(r.headers["location"])
    assert "Groupe Abidjan-Cotonou" in page.text and "ci-fne, bj-emecef" in page.text
    bad = await form_post(
        client, "/console/admin", "/console/admin/tenants", {"name": "X", "country": "Atlantis"}
    )
    assert bad.status_code == 422 and 'id="err-country"' in bad.text
