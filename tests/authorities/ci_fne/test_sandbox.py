"""Opt-in: the same B2C invoice + partial credit note against the real FNE test platform.

Skipped unless these are set (see the package README):
FISCALGATE_FNE_SANDBOX_NCC, FISCALGATE_FNE_SANDBOX_API_KEY, FISCALGATE_FNE_SANDBOX_POINT_OF_SALE,
FISCALGATE_FNE_SANDBOX_ESTABLISHMENT. It certifies (and burns a sticker of) real test invoices.
FISCALGATE_FNE_SANDBOX_URL optionally replaces http://54.247.95.108/ws (e.g. to rehearse against
`fiscalgate simulate ci-fne`).
"""

from __future__ import annotations

import os

import pytest

from fiscalgate.authorities.base import Connection, Environment
from fiscalgate.authorities.ci_fne import regime
from fiscalgate.authorities.ci_fne.driver import FneDriver, FneSettings
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
    # Optional: another test-platform URL (or a simulator, to rehearse this test offline).
    url = os.environ.get("FISCALGATE_FNE_SANDBOX_URL") or None
    settings = driver.parse_settings(
        {
            "environment": "sandbox",
            "base_url": url,
            **{key: os.environ[name] for key, name in VARIABLES.items()},
        }
    )
    base = driver.base_url(settings)
    connection = Connection(base, Environment.SANDBOX, timeout=30)
    assert isinstance(settings, FneSettings)
    # the seller is the sandbox taxpayer (validate refuses another seller NCC)
    seller = {"name": "fiscalgate sandbox test", "tax_id": settings.ncc}
    data = invoice_data(
        seller=seller,
        buyer={"kind": "individual", "name": "Client comptant", "phone": "0102030405", "email": "c@x.ci"},
    )
    cert = await driver.certify(parse_invoice(data), settings, connection)
    assert regime.parse_reference(cert.reference) is not None
    # the verification URL is on the portal host, without the /ws suffix (spec §8.7)
    assert cert.qr_content.startswith(base.removesuffix("/ws") + "/fr/verification/")
    assert cert.authority_data["item_ids"] and cert.sticker_balance is not None
    note = parse_invoice(
        invoice_data(
            seller=seller,
            kind="credit_note",
            original={"reference": cert.reference},
            lines=[{"description": "sac de riz", "quantity": "1", "unit_price": "20000", "original_line": 1}],
        )
    )
    refund = await driver.credit_note(note, cert, settings, connection)
    parsed = regime.parse_reference(refund.reference)
    assert parsed is not None and parsed.kind == "credit_note" and parsed.ncc == settings.ncc
