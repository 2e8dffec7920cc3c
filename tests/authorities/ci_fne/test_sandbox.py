"""Opt-in: the same B2C invoice + partial credit note against the real FNE test platform.

Skipped unless these are set (see the package README):
FISCALGATE_FNE_SANDBOX_NCC, FISCALGATE_FNE_SANDBOX_API_KEY, FISCALGATE_FNE_SANDBOX_POINT_OF_SALE,
FISCALGATE_FNE_SANDBOX_ESTABLISHMENT. It certifies (and burns a sticker of) real test invoices.
"""

from __future__ import annotations

import os

import pytest

from fiscalgate.authorities.base import Connection, Environment
from fiscalgate.authorities.ci_fne import regime
from fiscalgate.authorities.ci_fne.driver import FneDriver
from fiscalgate.core.invoice import parse_invoice

from .conftest import invoice_data

pytestmark = [pytest.mark.anyio, pytest.mark.sandbox]

VARIABLES = {
    "ncc": "FISCALGATE_FNE_SANDBOX_NCC",
    "api_key": "FISCALGATE_FNE_SANDBOX_API_KEY",
    "point_of_sale": "FISCALGATE_FNE_SANDBOX_POINT_OF_SALE",
    "establishment": "FISCALGATE_FNE_SANDBOX_ESTABLISHMENT",
}


async def test_invoice_and_partial_credit_note_on_the_test_platform(driver: FneDriver) -> None:
    missing = [name for name in VARIABLES.values() if not os.environ.get(name)]
    if missing:
        pytest.skip("FNE sandbox credentials not set: " + ", ".join(missing))
    settings = driver.parse_settings(
        {"environment": "sandbox", **{key: os.environ[name] for key, name in VARIABLES.items()}}
    )
    connection = Connection(driver.base_url(settings), Environment.SANDBOX, timeout=30)
    data = invoice_data(
        buyer={"kind": "individual", "name": "Client comptant", "phone": "0102030405", "email": "c@x.ci"}
    )
    cert = await driver.certify(parse_invoice(data), settings, connection)
    assert regime.parse_reference(cert.reference) is not None
    assert cert.qr_content.startswith(f"http://{regime.SANDBOX_HOST}/fr/verification/")
    note = parse_invoice(
        invoice_data(
            kind="credit_note",
            original={"reference": cert.reference},
            lines=[{"description": "sac de riz", "quantity": "1", "unit_price": "20000", "original_line": 1}],
        )
    )
    refund = await driver.credit_note(note, cert, settings, connection)
    assert refund.reference.startswith("A")
