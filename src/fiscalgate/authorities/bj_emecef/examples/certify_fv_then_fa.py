"""Certify an FV with AIB, then an FA against it, from Python, against the in-process simulator.

Run: python src/fiscalgate/authorities/bj_emecef/examples/certify_fv_then_fa.py
For the real test platform, use environment "sandbox", your IFU and DGI token, and no transport.
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


async def main() -> tuple[Certification, Certification]:
    driver = get_driver("bj-emecef")
    settings = driver.parse_settings(
        driver.mock_credentials()
    )  # or {"ifu": ..., "token": ..., "environment": "sandbox"}
    simulator = driver.mock_app(settings)
    connection = Connection(
        driver.base_url(settings), settings.environment, httpx.ASGITransport(app=simulator)
    )

    sale = parse_invoice(json.loads((HERE / "fv_with_aib.json").read_text(encoding="utf-8")))

    async def remember(data: dict[str, object]) -> None:
        print("persist before confirming:", data["uid"])  # the gateway stores this to resume after a crash

    fv = await driver.certify(sale, settings, connection, checkpoint=remember)
    print(fv.reference, fv.counters, fv.totals["total"], fv.qr_content)

    credit = parse_invoice(json.loads((HERE / "fa_against_fv.json").read_text(encoding="utf-8")))
    fa = await driver.credit_note(credit, fv, settings, connection)
    print(fa.reference, fa.counters, fa.totals["total"])
    return fv, fa


if __name__ == "__main__":
    anyio.run(main)
