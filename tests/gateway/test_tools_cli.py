"""`fiscalgate test-connection`, `info` and `report` against a gateway served over a real socket
(its tenant in mock, the built-in simulators): output, exit codes, failure paths."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI

from fiscalgate.cli import main
from fiscalgate.simkit.serve import free_port, serve_in_thread
from tests.gateway.conftest import install_simulator, mock_settings, new_tenant, real_invoice

pytestmark = [pytest.mark.anyio, pytest.mark.socket]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The client is under test here, not the database (the routes run on both in test_tools.py)."""
    return f"sqlite:///{tmp_path}/gateway.db"


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app()


@pytest.fixture
def served(app: FastAPI) -> Iterator[str]:
    with serve_in_thread(app) as url:
        yield url


async def tenant_with_all(app: FastAPI) -> dict[str, Any]:
    tenant, api = await new_tenant(
        app,
        modules=("fne", "mecef", "sfec"),
        settings={c: mock_settings(c) for c in ("ci-fne", "bj-emecef", "cg-sfec")},
    )
    await api.aclose()
    for code in ("bj-emecef", "cg-sfec"):
        install_simulator(app, tenant["id"], code)
    return tenant


def run(url: str, key: str, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--url", url, "--key", key], catch_exceptions=False)


async def test_test_connection(app: FastAPI, served: str) -> None:
    tenant = await tenant_with_all(app)
    ok = run(served, tenant["key"], "test-connection", "bj-emecef")
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("ok: e-MCF TS01000001 of IFU 0202300000001: token valid until")
    assert "GET /api/invoice" in ok.output
    as_json = run(served, tenant["key"], "test-connection", "sfec", "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.output)["facts"]["total"] == 0
    # FNE has no harmless call: the gateway's precise refusal, exit 2, nothing sent
    none = run(served, tenant["key"], "test-connection", "ci-fne")
    assert none.exit_code == 2 and "authority.capability_missing" in none.output
    unknown = run(served, tenant["key"], "test-connection", "atlantis")
    assert unknown.exit_code == 2 and "authority.not_found" in unknown.output


async def test_test_connection_failures_name_the_authoritys_answer(app: FastAPI, served: str) -> None:
    tenant = await tenant_with_all(app)
    headers = {"Authorization": f"Bearer {tenant['key']}"}
    async with httpx.AsyncClient(base_url=served, headers=headers) as api:
        await api.put("/v1/settings/cg-sfec", json={"api_key": "wrong-key-0123456789"})
        await api.put("/v1/settings/bj-emecef", json={"base_url": f"http://127.0.0.1:{free_port()}"})
    refused = run(served, tenant["key"], "test-connection", "cg-sfec")
    assert refused.exit_code == 3
    assert refused.output.startswith("credentials refused by the authority: HTTP 502")
    assert (
        "cg-sfec answered HTTP 401: UNAUTHORIZED — Clé d’authentification invalide ou manquante"
        in refused.output
    )
    assert "wrong-key-0123456789" not in refused.output
    gone = run(served, tenant["key"], "test-connection", "bj-emecef")
    assert gone.exit_code == 3 and gone.output.startswith("authority unreachable: HTTP 503")
    nowhere = run(f"http://127.0.0.1:{free_port()}", tenant["key"], "test-connection", "bj-emecef")
    assert nowhere.exit_code == 1 and "cannot reach the gateway" in nowhere.output
    bad_key = run(served, "fgk_nope_nope", "test-connection", "bj-emecef")
    assert bad_key.exit_code == 2 and "auth.invalid_key" in bad_key.output


async def test_info(app: FastAPI, served: str) -> None:
    tenant = await tenant_with_all(app)
    every = run(served, tenant["key"], "info", "bj-emecef")
    assert every.exit_code == 0, every.output
    for topic in ("status:", "taxGroups:", "invoiceTypes:", "paymentTypes:"):
        assert topic in every.output
    one = run(served, tenant["key"], "info", "emecef", "taxGroups", "--json")
    assert json.loads(one.output)["data"]["aibB"] == 5
    unknown = run(served, tenant["key"], "info", "bj-emecef", "balance")
    assert unknown.exit_code == 2 and "info.topic_not_found" in unknown.output
    none = run(served, tenant["key"], "info", "cg-sfec")
    assert none.exit_code == 2 and "authority.capability_missing" in none.output


async def test_report(app: FastAPI, served: str) -> None:
    tenant = await tenant_with_all(app)
    headers = {"Authorization": f"Bearer {tenant['key']}"}
    async with httpx.AsyncClient(base_url=served, headers=headers, timeout=30) as api:
        invoice = (
            await api.post("/v1/invoices", json={"invoice": real_invoice("cg-sfec"), "approve": True})
        ).json()
        draft = (await api.post("/v1/invoices", json={"invoice": real_invoice("cg-sfec")})).json()
        certified = (await api.post(f"/v1/invoices/{invoice['id']}/certify")).json()
        assert certified["status"] == "certified"
    first = run(served, tenant["key"], "report", invoice["id"])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("reported: cg-sfec acknowledged ")
    again = run(served, tenant["key"], "report", invoice["id"])
    assert again.exit_code == 3 and "ALREADY_REPORTED" in again.output
    not_yet = run(served, tenant["key"], "report", draft["id"])
    assert not_yet.exit_code == 2 and "invoice.not_certified" in not_yet.output
    missing = run(served, tenant["key"], "report", "nope")
    assert missing.exit_code == 2 and "invoice.not_found" in missing.output
