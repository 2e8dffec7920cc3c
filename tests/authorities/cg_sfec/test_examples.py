"""The examples the README points at work as written."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fiscalgate.authorities.cg_sfec.examples import demo

pytestmark = pytest.mark.anyio


async def test_the_python_demo_certifies_the_invoice_then_its_credit_note() -> None:
    certified, credited = await demo.demo()
    assert certified.totals["total"] == Decimal(1189469)
    assert credited.kind.value == "credit_note"
    assert credited.authority_data["reference_invoice_id"] == "FAC-2026-0042"
    # 10 bags at 6 250 less 5 % = 59 375; VAT 5 % 2 969; centimes 148
    assert credited.totals["total"] == Decimal(62492)
