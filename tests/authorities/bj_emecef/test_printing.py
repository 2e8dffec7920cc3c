"""What the printed normalised invoice must show, from a real (simulated) certification."""

from __future__ import annotations

import pytest

from fiscalgate.authorities.bj_emecef.printing import SECURITY_TITLE, TEST_BANNER, printed
from fiscalgate.authorities.bj_emecef.regime import TaxGroup

from .conftest import Emecef
from .samples import JUICE, credit_note, official_example

pytestmark = pytest.mark.anyio


async def test_security_block_tax_breakdown_and_aib(emecef_local: Emecef) -> None:
    env = emecef_local
    fv = await env.driver.certify(official_example(aib="B"), env.settings, env.connection)
    page = printed(fv)
    assert page.title == "FACTURE DE VENTE" and page.number == "TS01000001-1"
    assert page.banner == TEST_BANNER and page.security_title == SECURITY_TITLE
    assert page.security == [
        ("Code MECeF/DGI", fv.reference),
        ("MECeF NIM", "TS01000001"),
        ("MECeF Compteurs", "1/1 FV"),
        ("MECeF Heure", "16/07/2026 11:00:00"),
    ]
    assert page.qr_payload == fv.qr_content
    assert [(r.group, r.total, r.base, r.tax) for r in page.tax_rows] == [
        (TaxGroup.A, 1350, 1350, 0),
        (TaxGroup.B, 3600, 3051, 549),
    ]
    assert page.aib == ("AIB 5 %", 220) and page.total == 5170 and page.original_code is None

    fa = await env.driver.credit_note(credit_note([JUICE]), fv, env.settings, env.connection)
    credit_page = printed(fa)
    assert credit_page.title == "FACTURE D'AVOIR" and credit_page.original_code == fv.authority_data["code"]
    assert credit_page.aib is None
