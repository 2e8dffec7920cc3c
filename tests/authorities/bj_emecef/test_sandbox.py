"""Opt-in: the same client against the DGI's real test platform (developper.impots.bj).

Skipped unless FISCALGATE_EMECEF_SANDBOX_IFU and FISCALGATE_EMECEF_SANDBOX_TOKEN are set (a test
e-MCF's IFU and DGI token). It submits the official worked example, checks the totals, and CANCELS
it: nothing is numbered on the test platform.
"""

from __future__ import annotations

import os

import pytest

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.base import Connection
from fiscalgate.authorities.bj_emecef.client import EmecefClient
from fiscalgate.authorities.bj_emecef.convert import build_request, expected_totals, totals_mismatches
from fiscalgate.authorities.bj_emecef.settings import EmecefSettings

from .samples import official_example

pytestmark = [pytest.mark.anyio, pytest.mark.sandbox]


@pytest.fixture
def sandbox() -> tuple[EmecefSettings, Connection]:
    ifu = os.environ.get("FISCALGATE_EMECEF_SANDBOX_IFU")
    token = os.environ.get("FISCALGATE_EMECEF_SANDBOX_TOKEN")
    if not ifu or not token:
        pytest.skip(
            "set FISCALGATE_EMECEF_SANDBOX_IFU and FISCALGATE_EMECEF_SANDBOX_TOKEN "
            "to run against the DGI test platform"
        )
    driver = get_driver("bj-emecef")
    settings = driver.parse_settings(
        {"environment": "sandbox", "ifu": ifu, "token": token, "operator_name": "fiscalgate"}
    )
    assert isinstance(settings, EmecefSettings)
    return settings, Connection(driver.base_url(settings), settings.environment, timeout=30)


async def test_sandbox_information_and_a_cancelled_submission(
    sandbox: tuple[EmecefSettings, Connection],
) -> None:
    settings, connection = sandbox
    request, problems = build_request(official_example(aib="B"), settings)
    assert request is not None, problems
    async with EmecefClient(connection, settings.token.get_secret_value()) as client:
        status = await client.status()
        assert status.status and status.nim == settings.nim
        groups = await client.tax_groups()
        assert (groups.b, groups.d, groups.aib_a, groups.aib_b) == (18, 18, 1, 5)
        answer = await client.submit(request)
        try:
            assert totals_mismatches(expected_totals(request), answer) == []
        finally:
            cancelled = await client.cancel(str(answer.uid))
        assert cancelled.code_mecef_dgi in ("", None)
