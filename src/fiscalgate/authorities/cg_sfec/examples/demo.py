"""Certify the example invoice and its credit note on an in-process SFEC simulator, from Python.

Run: python -m fiscalgate.authorities.cg_sfec.examples.demo
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.base import Connection
from fiscalgate.core.certification import Certification
from fiscalgate.core.invoice import parse_invoice

HERE = Path(__file__).parent


async def demo() -> tuple[Certification, Certification]:
    driver = get_driver("cg-sfec")
    settings = driver.parse_settings(driver.mock_credentials())
    # One simulator for both calls, so it remembers the invoice the credit note refers to.
    simulator = driver.mock_app(settings)
    connection = Connection(
        driver.base_url(settings), settings.environment, httpx.ASGITransport(app=simulator)
    )

    invoice = parse_invoice(json.loads((HERE / "invoice.json").read_text(encoding="utf-8")))
    problems = driver.validate(invoice, settings)
    if problems:
        raise SystemExit("\n".join(str(p) for p in problems))
    certified = await driver.certify(invoice, settings, connection)

    credit = parse_invoice(json.loads((HERE / "credit_note.json").read_text(encoding="utf-8")))
    credited = await driver.credit_note(credit, certified, settings, connection)
    return certified, credited


def main() -> None:
    certified, credited = anyio.run(demo)
    for label, cert in (("invoice", certified), ("credit note", credited)):
        print(
            f"{label:<12} {cert.reference}  total {cert.totals['total']} XAF  "
            f"short signature {cert.authority_data['short_signature']}"
        )


if __name__ == "__main__":
    main()
