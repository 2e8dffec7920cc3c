"""The download scenario for the authorities test_gateway.py does not run on both databases: the
route's database work is the same whatever the authority, so SQLite is enough here."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.printing.test_gateway import download_scenario

pytestmark = pytest.mark.anyio


@pytest.fixture
def database_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/gateway.db"


@pytest.mark.parametrize("authority", ["ci-fne", "cg-sfec"])
async def test_certify_then_download_the_pdf_its_qr_scans_back(real_app: FastAPI, authority: str) -> None:
    await download_scenario(real_app, authority)
