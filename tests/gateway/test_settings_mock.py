"""`PUT /v1/settings/{authority}` with `{"environment": "mock"}` is enough to certify against the
built-in simulator, and every settings example of the OpenAPI document works on a fresh tenant."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from fiscalgate.authorities import descriptor
from tests.gateway.conftest import REAL, client, new_tenant, real_invoice

pytestmark = pytest.mark.anyio


async def certify(api: Any, authority: str) -> dict[str, Any]:
    created = await api.post(
        "/v1/invoices", json={"authority": authority, "invoice": real_invoice(authority), "approve": True}
    )
    assert created.status_code == 201, created.text
    r = await api.post(f"/v1/invoices/{created.json()['id']}/certify")
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize("authority", REAL)
async def test_environment_mock_alone_certifies(real_app: FastAPI, authority: str) -> None:
    _, api = await new_tenant(real_app, country=descriptor(authority).country)
    async with api:
        r = await api.put(f"/v1/settings/{authority}", json={"environment": "mock"})
        assert r.status_code == 200, r.text
        assert r.json()["problems"] == []
        body = await certify(api, authority)
    assert body["status"] == "certified", body


async def test_entering_mock_replaces_the_other_environments_secrets_only(real_app: FastAPI) -> None:
    sandbox = {
        "environment": "sandbox",
        "ncc": "9606123E",
        "api_key": "SANDBOXkey0123456789abcdefghijkl",
        "point_of_sale": "Caisse Sud",
        "establishment": "Agence Sud",
    }
    _, api = await new_tenant(real_app, country="CI", settings={"ci-fne": sandbox})
    async with api:
        r = await api.put("/v1/settings/ci-fne", json={"environment": "mock"})
        assert r.status_code == 200, r.text
        view = r.json()["settings"]
        # The sandbox key does not follow the tenant to the simulator; its own names stay.
        assert not view["api_key"].startswith("SAND")
        assert (view["point_of_sale"], view["establishment"]) == ("Caisse Sud", "Agence Sud")
        body = await certify(api, "ci-fne")
        assert body["status"] == "certified", body
        # A value the payload gives is never replaced.
        r = await api.put(
            "/v1/settings/ci-fne", json={"environment": "mock", "api_key": "MINEkey-0123456789"}
        )
        assert r.json()["settings"]["api_key"].startswith("MINE")


async def test_a_mock_pointed_at_a_simulator_run_apart_gets_nothing_filled(real_app: FastAPI) -> None:
    _, api = await new_tenant(real_app, country="CI")
    async with api:
        r = await api.put(
            "/v1/settings/ci-fne", json={"environment": "mock", "base_url": "http://127.0.0.1:8010/ws"}
        )
    assert r.status_code == 422 and "api_key" in r.text, r.text


def settings_examples(app: FastAPI) -> dict[str, Any]:
    operation = app.openapi()["paths"]["/v1/settings/{authority}"]["put"]
    examples: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["examples"]
    return examples


async def test_every_openapi_settings_example_works_on_a_fresh_tenant(real_app: FastAPI) -> None:
    examples = settings_examples(real_app)
    assert len(examples) >= 2
    for name, example in examples.items():
        for authority in REAL:
            _, api = await new_tenant(real_app, country=descriptor(authority).country)
            async with api:
                r = await api.put(f"/v1/settings/{authority}", json=example["value"])
                assert r.status_code == 200, (name, authority, r.text)
                assert r.json()["problems"] == [], (name, authority)
    async with client(real_app) as anyone:  # the document itself is served
        assert (await anyone.get("/openapi.json")).status_code == 200


async def test_openapi_types_the_neutral_invoice_and_its_example_certifies(real_app: FastAPI) -> None:
    schema = real_app.openapi()
    components = schema["components"]["schemas"]
    assert {"Invoice", "InvoiceLine", "Certification"} <= set(components)
    create = components["InvoiceCreate"]
    assert create["properties"]["invoice"]["$ref"] == "#/components/schemas/Invoice"
    out = components["InvoiceOut"]["properties"]
    assert out["invoice"]["$ref"] == "#/components/schemas/Invoice"
    # the answer's view of it (absent values null, UTC datetimes): api conventions, same fields
    assert {"$ref": "#/components/schemas/CertificationOut"} in out["certification"]["anyOf"]
    assert set(components["CertificationOut"]["properties"]) == set(components["Certification"]["properties"])
    (example,) = create["examples"]
    # The example works as it is on a fresh tenant whose FNE is in mock.
    _, api = await new_tenant(real_app, country="CI")
    async with api:
        assert (await api.put("/v1/settings/ci-fne", json={"environment": "mock"})).status_code == 200
        created = await api.post("/v1/invoices", json=example)
        assert created.status_code == 201, created.text
        r = await api.post(f"/v1/invoices/{created.json()['id']}/certify")
    assert r.status_code == 200 and r.json()["status"] == "certified", r.text
