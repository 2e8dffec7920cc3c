"""Opt-in: the real SFEC sandbox. Skipped unless credentials are in the environment:
FISCALGATE_SFEC_SANDBOX_NIU, FISCALGATE_SFEC_SANDBOX_API_KEY, FISCALGATE_SFEC_SANDBOX_SCIET and
optionally FISCALGATE_SFEC_SANDBOX_URL, FISCALGATE_SFEC_SANDBOX_PREFIX (see README.md)."""

from __future__ import annotations

import os
import uuid

import pytest

from fiscalgate.authorities.base import Connection
from fiscalgate.authorities.cg_sfec.driver import SfecDriver
from fiscalgate.authorities.cg_sfec.settings import SfecSettings

from .conftest import invoice_from

pytestmark = [pytest.mark.anyio, pytest.mark.sandbox]


@pytest.fixture
def sandbox(driver: SfecDriver) -> SfecSettings:
    names = ("NIU", "API_KEY", "SCIET")
    values = {n: os.environ.get(f"FISCALGATE_SFEC_SANDBOX_{n}") for n in names}
    if not all(values.values()):
        pytest.skip("set FISCALGATE_SFEC_SANDBOX_NIU, _API_KEY and _SCIET to run against the SFEC sandbox")
    data = {
        "environment": "sandbox",
        "niu": values["NIU"],
        "api_key": values["API_KEY"],
        "sciet": values["SCIET"],
        "terminal_identifier": "FISCALGATE-TEST",
        "base_url": os.environ.get("FISCALGATE_SFEC_SANDBOX_URL") or None,
        "path_prefix": os.environ.get("FISCALGATE_SFEC_SANDBOX_PREFIX", "/api"),
    }
    settings = driver.parse_settings(data)
    assert isinstance(settings, SfecSettings)
    return settings


async def test_certify_and_reconcile_on_the_sandbox(driver: SfecDriver, sandbox: SfecSettings) -> None:
    invoice = invoice_from("invoice.json", number=f"FG-{uuid.uuid4().hex[:12]}", seller={"name": "Test"})
    connection = Connection(driver.base_url(sandbox), sandbox.environment, timeout=30)
    cert = await driver.certify(invoice, sandbox, connection)
    assert cert.reference
    result = await driver.reconcile(invoice, sandbox, connection, {"invoice_id": invoice.number})
    assert result.status == "certified"
