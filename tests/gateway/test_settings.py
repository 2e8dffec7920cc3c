"""Tenants, countries and per-authority settings: validation, encryption at rest, masking, audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from fiscalgate.gateway.countries import normalise_country
from fiscalgate.gateway.settings.models import AuthorityConfig
from tests.gateway.conftest import client, gateway, mock_settings, new_tenant

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("Côte d'Ivoire", "CI"),
        ("Cote d'Ivoire", "CI"),
        ("cote divoire", "CI"),
        ("Ivory Coast", "CI"),
        ("CI", "CI"),
        ("civ", "CI"),
        ("Bénin", "BJ"),
        ("Benin", "BJ"),
        ("BJ", "BJ"),
        ("BEN", "BJ"),
        ("Congo", "CG"),
        ("République du Congo", "CG"),
        ("Republique du Congo", "CG"),
        ("Congo-Brazzaville", "CG"),
        ("CG", "CG"),
        ("COG", "CG"),
        ("RDC", "CD"),
        ("Congo-Kinshasa", "CD"),
        ("République démocratique du Congo", "CD"),
        ("Democratic Republic of the Congo", "CD"),
        ("CD", "CD"),
        ("COD", "CD"),
    ],
)
def test_country_names_and_codes(given: str, code: str) -> None:
    assert normalise_country(given) == code


def test_unknown_country_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown country 'Atlantis'"):
        normalise_country("Atlantis")


async def test_the_drc_never_gets_the_congo_authority(fake_app: FastAPI, admin: httpx.AsyncClient) -> None:
    drc = (await admin.post("/v1/admin/tenants", json={"name": "Kin", "country": "RDC"})).json()
    congo = (await admin.post("/v1/admin/tenants", json={"name": "Bzv", "country": "Congo"})).json()
    assert (drc["country"], drc["authorities"]) == ("CD", [])
    assert (congo["country"], congo["authorities"]) == ("CG", ["cg-sfec"])


async def test_tenant_provisioning_validates_input(admin: httpx.AsyncClient) -> None:
    r = await admin.post("/v1/admin/tenants", json={"name": "X", "country": "Atlantis", "modules": ["vat"]})
    assert r.status_code == 422
    assert {p["field"] for p in r.json()["problems"]} == {"country", "modules"}
    ok = await admin.post(
        "/v1/admin/tenants", json={"name": "Groupe", "country": "CI", "modules": ["MECEF", "sfec"]}
    )
    assert ok.status_code == 201
    assert ok.json()["authorities"] == ["ci-fne", "bj-emecef", "cg-sfec"]
    assert (
        await admin.post("/v1/admin/tenants", json={"name": "Groupe", "country": "BJ"})
    ).status_code == 409
    r = await admin.patch(f"/v1/admin/tenants/{ok.json()['id']}", json={"country": "Bénin", "modules": []})
    assert r.json()["authorities"] == ["bj-emecef"]
    assert (await admin.get(f"/v1/admin/tenants/{ok.json()['id']}")).json()["country"] == "BJ"
    assert [t["name"] for t in (await admin.get("/v1/admin/tenants")).json()["items"]] == ["Groupe"]
    assert (await admin.get("/v1/admin/tenants/nope")).status_code == 404


async def test_settings_for_an_unavailable_authority_are_refused(real_app: FastAPI) -> None:
    _, api = await new_tenant(real_app, country="CI")
    async with api:
        r = await api.put("/v1/settings/bj-emecef", json=mock_settings("bj-emecef"))
        assert r.status_code == 422 and r.json()["code"] == "settings.authority_unavailable"
        r = await api.put("/v1/settings/vat-fr", json={})
        assert r.status_code == 422 and r.json()["code"] == "authority.unknown"


async def test_fne_production_without_its_url_is_refused(real_app: FastAPI) -> None:
    _, api = await new_tenant(real_app, country="CI")
    async with api:
        r = await api.put("/v1/settings/ci-fne", json=mock_settings("ci-fne", environment="production"))
        assert r.status_code == 422
        body = r.json()
        assert body["kind"] == "ConfigurationError"
        assert "production_url" in {p["field"] for p in body["problems"]}
        # and a sandbox pointed at the live host would send test invoices into the legal series
        r = await api.put(
            "/v1/settings/ci-fne",
            json=mock_settings("ci-fne", environment="sandbox", base_url="https://fne.dgi.gouv.ci"),
        )
        assert r.status_code == 422
        assert (await api.get("/v1/settings/ci-fne")).json()["configured"] is False


async def test_field_errors_name_the_field(real_app: FastAPI) -> None:
    _, api = await new_tenant(real_app, country="CG")
    async with api:
        # Sandbox: no credential is filled in for it (in mock the simulator's would be).
        r = await api.put("/v1/settings/cg-sfec", json={"environment": "sandbox", "niu": "x"})
    assert r.status_code == 422
    fields = {p["field"] for p in r.json()["problems"]}
    assert {"niu", "api_key"} <= fields


async def test_secrets_are_encrypted_at_rest_masked_and_kept(real_app: FastAPI) -> None:
    tenant, api = await new_tenant(real_app, country="CI")
    secret = mock_settings("ci-fne")["api_key"]
    async with api:
        r = await api.put("/v1/settings/ci-fne", json=mock_settings("ci-fne"))
        assert r.status_code == 200
        shown = r.json()
        assert shown["secret_fields"] == ["api_key"]
        assert secret not in json.dumps(shown) and shown["settings"]["api_key"].startswith(secret[:4])

        def stored(session: Any) -> AuthorityConfig:
            return session.scalar(select(AuthorityConfig).where(AuthorityConfig.tenant_id == tenant["id"]))

        row = gateway(real_app).db.call(stored)
        assert secret not in json.dumps(row.data) and secret not in (row.secrets_sealed or "")
        assert gateway(real_app).box.open(row.secrets_sealed) == {"api_key": secret}

        # updating without the secret, or with its masked form, keeps it
        r = await api.put("/v1/settings/ci-fne", json={"point_of_sale": "Caisse 2"})
        assert r.status_code == 200 and r.json()["settings"]["point_of_sale"] == "Caisse 2"
        r = await api.put("/v1/settings/ci-fne", json=r.json()["settings"])
        assert r.status_code == 200
        row = gateway(real_app).db.call(stored)
        assert gateway(real_app).box.open(row.secrets_sealed) == {"api_key": secret}

        # the audit log has every change, secrets masked
        changes = (await api.get("/v1/audit", params={"kind": "settings_change"})).json()["items"]
        assert len(changes) == 3 and secret not in json.dumps(changes)
        newest = changes[0]["detail"]
        assert newest["before"]["point_of_sale"] == "Caisse 2" and newest["after"]["api_key"] != secret


async def test_changing_a_secret_replaces_it(real_app: FastAPI) -> None:
    tenant, api = await new_tenant(real_app, country="CG", settings={"cg-sfec": mock_settings("cg-sfec")})
    async with api:
        r = await api.put("/v1/settings/cg-sfec", json={"api_key": "sk_new_secret_value_42"})
    assert r.status_code == 200
    row = gateway(real_app).db.call(
        lambda s: s.scalar(select(AuthorityConfig).where(AuthorityConfig.tenant_id == tenant["id"]))
    )
    assert gateway(real_app).box.open(row.secrets_sealed)["api_key"] == "sk_new_secret_value_42"


async def test_emecef_settings_show_the_nim_read_from_the_token(real_app: FastAPI) -> None:
    _, api = await new_tenant(real_app, country="BJ", settings={"bj-emecef": mock_settings("bj-emecef")})
    async with api:
        every = {s["authority"]: s for s in (await api.get("/v1/settings")).json()["items"]}
    assert every["bj-emecef"]["configured"] and every["bj-emecef"]["environment"] == "mock"
    derived = every["bj-emecef"]["derived"]
    assert derived["nim"] and derived["token_expires_at"] > datetime.now(UTC).isoformat()
    assert every["bj-emecef"]["problems"] == []
    assert every["ci-fne"] == {**every["ci-fne"], "available": False, "configured": False}
    token = mock_settings("bj-emecef")["token"]
    assert token not in json.dumps(every)


async def test_settings_deletion(real_app: FastAPI) -> None:
    _, api = await new_tenant(real_app, country="CG", settings={"cg-sfec": mock_settings("cg-sfec")})
    async with api:
        assert (await api.delete("/v1/settings/cg-sfec")).status_code == 204
        assert (await api.delete("/v1/settings/cg-sfec")).status_code == 404
        assert (await api.get("/v1/settings/cg-sfec")).json()["configured"] is False


async def test_healthz_and_docs(real_app: FastAPI) -> None:
    async with client(real_app, None) as c:
        health = await c.get("/healthz")
        assert health.status_code == 200 and health.json()["database"] == "ok"
        assert (await c.get("/openapi.json")).json()["info"]["title"] == "fiscalgate"
        assert (await c.get("/docs")).status_code == 200
        r = await c.get("/nowhere")
        assert r.status_code == 404 and r.json()["code"] == "http.404"


async def test_healthz_reports_a_broken_database(real_app: FastAPI, caplog: pytest.LogCaptureFixture) -> None:
    from fiscalgate.gateway.runtime import Database

    gw = gateway(real_app)
    gw.db.dispose()
    gw.db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")  # nothing listens
    async with client(real_app, None) as c:
        r = await c.get("/healthz")
    assert r.status_code == 503 and r.json()["status"] == "error"
    # unauthenticated: no server address, user or driver text in the answer; the log has it
    assert "nobody" not in r.text and "127.0.0.1" not in r.text and "Error" not in r.text
    assert any("database is unavailable" in rec.message and rec.exc_info for rec in caplog.records)


async def test_stored_settings_that_no_longer_validate_are_reported(real_app: FastAPI) -> None:
    """Settings valid when saved can stop being valid (an e-MECeF token expires, say)."""
    from tests.gateway.conftest import real_invoice

    tenant, api = await new_tenant(real_app, country="CI", settings={"ci-fne": mock_settings("ci-fne")})

    def break_it(session: Any) -> None:
        row = session.scalar(select(AuthorityConfig).where(AuthorityConfig.tenant_id == tenant["id"]))
        row.data = {**row.data, "ncc": "not-an-ncc"}

    gateway(real_app).db.call(break_it)
    async with api:
        shown = (await api.get("/v1/settings/ci-fne")).json()
        assert [p["field"] for p in shown["problems"]] == ["ncc"]
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne"), "approve": True})
        ).json()
        r = await api.post(f"/v1/invoices/{inv['id']}/certify")
    assert r.status_code == 422 and r.json()["kind"] == "ConfigurationError"
    assert r.json()["invoice_status"] == "failed"
