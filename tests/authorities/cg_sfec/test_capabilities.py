"""SFEC's optional capabilities: the connection test (the list, one record) and the report
endpoint (declared by the driver; its rules are in test_contract.py), in-process and over a socket."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from fiscalgate.authorities.capabilities import CONNECTION_TEST, REPORT, Reporter, capabilities
from fiscalgate.authorities.cg_sfec.driver import SfecDriver
from fiscalgate.authorities.cg_sfec.settings import SfecSettings
from fiscalgate.core.errors import AuthorityAuthError, ConfigurationError
from fiscalgate.core.invoice import Invoice
from tests.authorities.cg_sfec.conftest import Target

pytestmark = pytest.mark.anyio


def test_offers_a_connection_test_and_the_report(driver: SfecDriver) -> None:
    assert capabilities(driver) == [CONNECTION_TEST, REPORT]
    assert isinstance(driver, Reporter) and driver.report_call == "POST /api/invoices/report/api"


async def test_the_connection_test_reads_one_record_of_the_list(
    driver: SfecDriver, settings: SfecSettings, target: Target, sale: Invoice
) -> None:
    empty = await driver.test_connection(settings, target.connection)
    assert empty.call == "GET /api/invoices?page=1&pageSize=1"
    assert empty.facts == {"page": 1, "pageSize": 1, "totalPages": 1, "total": 0}
    await driver.certify(sale, settings, target.connection)
    after = await driver.test_connection(settings, target.connection)
    assert after.facts["total"] == 1 and "1 invoice(s) on record" in after.summary
    assert len(target.sim.platform.records) == 1  # the test itself certified nothing
    assert target.sim.platform.journal[-1] == "GET /api/invoices"


async def test_a_wrong_key_gets_sfecs_code_and_text(
    driver: SfecDriver, settings: SfecSettings, target: Target
) -> None:
    wrong = settings.model_copy(update={"api_key": SecretStr("wrong-key-0123456789")})
    with pytest.raises(AuthorityAuthError) as info:
        await driver.test_connection(wrong, target.connection)
    error = info.value
    assert (error.http_status, error.authority_code) == (401, "UNAUTHORIZED")
    assert error.authority_message == "Clé d’authentification invalide ou manquante"
    assert "wrong-key-0123456789" not in error.message


async def test_a_wrong_path_prefix_names_the_setting(
    driver: SfecDriver, settings: SfecSettings, target: Target
) -> None:
    elsewhere = settings.model_copy(update={"path_prefix": "/nope"})
    with pytest.raises(ConfigurationError) as info:
        await driver.test_connection(elsewhere, target.connection)
    assert info.value.problems[0].field == "path_prefix" and "/nope/invoices" in info.value.message
