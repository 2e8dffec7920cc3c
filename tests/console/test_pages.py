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


async def test_dry_run_shows_the_payload_and_sends_nothing(world: World, signed_in: Any) -> None:
    client = await signed_in("viewer@demo.test")  # read-only users may dry-run too
    invoice_id = world.invoice("bj-emecef")
    url = f"/console/invoices/{invoice_id}"
    r = await form_post(client, url, f"{url}/dry-run", {})
    assert r.status_code == 200
    assert "&#34;ifu&#34;: &#34;0202300000001&#34;" in r.text  # e-MECeF's payload, HTML-escaped
    assert "badge s-approved" in r.text  # still approved: nothing was sent
    calls = await client.get(f"/console/audit?invoice_id={invoice_id}&kind=authority_call")
    assert "/api/invoice" not in calls.text


async def test_connection_test_calls_the_emecef_status(world: World, signed_in: Any) -> None:
    client = await signed_in("owner@demo.test")
    r = await form_post(client, "/console/settings", "/console/settings/bj-emecef/test", {})
    assert r.status_code == 200
    assert 'class="alert ok"' in r.text
    assert "0202300000001" in r.text  # the IFU the e-MCF answered with (the demo's mock IFU)
    assert "token valid until" in r.text
    assert (await client.post("/console/settings/ci-fne/test", data={"csrf": "x"})).status_code == 403
    # audited like the API's test, under the user's name
    calls = await client.get("/console/audit?kind=authority_call")
    assert "settings.test" in calls.text or "/api/invoice" in calls.text


async def test_the_connection_test_is_offered_where_the_driver_has_one(world: World, signed_in: Any) -> None:
    from fiscalgate.authorities import codes, get_driver
    from fiscalgate.authorities.capabilities import ConnectionTester

    client = await signed_in("owner@demo.test")
    page = (await client.get("/console/settings")).text
    for code in codes():
        driver = get_driver(code)
        offered = f'action="/console/settings/{code}/test"' in page
        assert offered == isinstance(driver, ConnectionTester), code
        if offered:
            assert driver.connection_test_call.replace("&", "&amp;") in page
            r = await form_post(client, "/console/settings", f"/console/settings/{code}/test", {})
            assert r.status_code == 200 and 'class="alert ok"' in r.text, (code, r.text[-2000:])
        else:
            r = await form_post(client, "/console/settings", f"/console/settings/{code}/test", {})
            assert r.status_code == 404, code
    assert "offers no harmless call" in page or "aucun appel sans effet" in page


async def test_a_refused_key_shows_the_authoritys_code_and_text(world: World, signed_in: Any) -> None:
    from fiscalgate.gateway.console import services

    client = await signed_in("owner@demo.test")
    # the first test builds the tenant's simulator with the saved (right) key, as a platform holds it
    ok = await form_post(client, "/console/settings", "/console/settings/cg-sfec/test", {})
    assert 'class="alert ok"' in ok.text
    world.gw.db.call(
        services.save_settings,
        world.gw,
        services.Caller(world.tenant_id, "test"),
        world.tenant_id,
        "cg-sfec",
        {"api_key": "wrong-key-0123456789"},
    )
    r = await form_post(client, "/console/settings", "/console/settings/cg-sfec/test", {})
    assert r.status_code == 200 and 'class="alert ok"' not in r.text
    assert "UNAUTHORIZED" in r.text and "Clé d’authentification invalide ou manquante" in r.text
    assert "wrong-key-0123456789" not in r.text


async def test_unknown_invoice_is_loud_on_the_dashboard_and_reconciled_by_hand(
    world: World, signed_in: Any
) -> None:
    from sqlalchemy import update

    from fiscalgate.gateway.invoices.models import InvoiceRow

    invoice_id = world.invoice("ci-fne")
    # As after a timeout once the request had left: the outcome is unknown.
    world.gw.db.call(
        lambda s: s.execute(
            update(InvoiceRow).where(InvoiceRow.id == invoice_id).values(status="unknown", environment="mock")
        )
    )
    client = await signed_in("accountant@demo.test")
    dash = await client.get("/console/dashboard")
    assert (
        'class="alert unknown"' in dash.text
        and "/console/invoices?status=unknown&amp;authority=ci-fne" in dash.text
    )
    url = f"/console/invoices/{invoice_id}"
    page = await client.get(url)
    # FNE has no look-up: only the by-hand choices are offered
    assert 'value="record_reference"' in page.text and 'value="confirm"' not in page.text
    r = await form_post(
        client, url, f"{url}/reconcile", {"action": "not_certified", "note": "checked the portal"}
    )
    assert r.status_code == 303, r.text
    after = await client.get(url)
    assert "badge s-failed" in after.text and "Réessayer la certification" in after.text


async def test_audit_entry_shows_the_masked_call_and_replays_it(world: World, signed_in: Any) -> None:
    import re

    client = await signed_in("owner@demo.test")
    invoice_id = world.invoice("cg-sfec")
    url = f"/console/invoices/{invoice_id}"
    await form_post(client, url, f"{url}/certify", {})
    listing = await client.get(f"/console/audit?invoice_id={invoice_id}&kind=authority_call")
    entry_id = re.findall(r'href="/console/audit/([0-9a-f]{32})"', listing.text)[0]
    entry = await client.get(f"/console/audit/{entry_id}")
    assert "sk_mock_cg_sfec_0123456789" not in entry.text  # the X-API-Key is masked
    assert "/api/invoices/certify" in entry.text
    r = await form_post(client, f"/console/audit/{entry_id}", f"/console/audit/{entry_id}/replay", {})
    assert r.status_code == 200 and "Rejoué" in r.text
    viewer = await signed_in("viewer@demo.test")
    page = await viewer.get(f"/console/audit/{entry_id}")
    assert "/replay" not in page.text


async def test_invoice_search_filters_and_pages(world: World, signed_in: Any) -> None:
    from fiscalgate.gateway.console import services

    client = await signed_in("viewer@demo.test")
    for _ in range(services.PAGE_SIZE + 1):  # one more than a page
        world.invoice("bj-emecef", approve=False)
    fne = world.invoice("ci-fne")
    page1 = await client.get("/console/invoices?authority=bj-emecef")
    assert page1.text.count("DEMO-EMECEF-") == services.PAGE_SIZE and "page=2" in page1.text
    page2 = await client.get("/console/invoices?authority=bj-emecef&page=2")
    assert page2.text.count("DEMO-EMECEF-") == 1
    assert "DEMO-FNE-" not in page1.text
    drafts = await client.get("/console/invoices?status=draft&kind=sale")
    assert "DEMO-EMECEF-" in drafts.text and "DEMO-FNE-" not in drafts.text
    number = (await client.get(f"/console/invoices/{fne}")).text.split("DEMO-FNE-")[1][:6]
    found = await client.get(f"/console/invoices?q=fne-{number}")
    assert found.text.count(f"DEMO-FNE-{number}") == 1 and "DEMO-EMECEF-" not in found.text
    by_buyer = await client.get("/console/invoices?q=COMPTOIR&authority=ci-fne")
    assert f"DEMO-FNE-{number}" in by_buyer.text
    none = await client.get("/console/invoices?from=2001-01-01&to=2001-01-31")
    assert "DEMO-" not in none.text
