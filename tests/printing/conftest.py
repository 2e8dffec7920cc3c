"""Real certifications from each authority's in-process simulator (mock), made once per session:
the renderer is tested on what the drivers really store, not on hand-written dictionaries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from fiscalgate import authorities
from fiscalgate.authorities.base import Connection
from fiscalgate.core.certification import Certification
from fiscalgate.core.invoice import Invoice, parse_invoice

EXAMPLES = Path(__file__).parents[2] / "src" / "fiscalgate" / "authorities"
CASES = {
    "ci-fne": ("ci_fne/examples/b2b_invoice.json", "ci_fne/examples/b2b_credit_note.json"),
    "bj-emecef": ("bj_emecef/examples/fv_with_aib.json", "bj_emecef/examples/fa_against_fv.json"),
    "cg-sfec": ("cg_sfec/examples/invoice.json", "cg_sfec/examples/credit_note.json"),
}
AUTHORITIES = tuple(CASES)


@dataclass(frozen=True)
class Certified:
    authority: str
    invoice: Invoice
    cert: Certification
    credit: Invoice
    credit_cert: Certification


def example(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / path).read_text(encoding="utf-8"))
    return data


async def certify_pair(code: str, sale: dict[str, Any], credit: dict[str, Any] | None) -> list[Certification]:
    driver = authorities.get_driver(code)
    settings = driver.parse_settings({"environment": "mock", **driver.mock_credentials()})
    connection = Connection(
        base_url=driver.base_url(settings),
        environment=settings.environment,
        transport=httpx.ASGITransport(app=driver.mock_app(settings)),
        timeout=30,
    )
    first = await driver.certify(parse_invoice(sale), settings, connection)
    if credit is None:
        return [first]
    return [first, await driver.credit_note(parse_invoice(credit), first, settings, connection)]


@pytest.fixture(scope="session")
def certified() -> dict[str, Certified]:
    out = {}
    for code, (sale_path, credit_path) in CASES.items():
        sale, credit = example(sale_path), example(credit_path)
        cert, credit_cert = anyio.run(certify_pair, code, sale, credit)
        out[code] = Certified(code, parse_invoice(sale), cert, parse_invoice(credit), credit_cert)
    return out


# The gateway's fixtures (SQLite and PostgreSQL), for the route and profile tests.
from tests.gateway.conftest import database_url, make_app, pg_session_url, real_app  # noqa: E402

__all__ = ["database_url", "make_app", "pg_session_url", "real_app"]
