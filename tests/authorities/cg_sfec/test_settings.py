"""SFEC settings: NIU shape, base URLs per environment, and the host safety checks."""

from __future__ import annotations

from typing import Any

import pytest

from fiscalgate.authorities.cg_sfec.driver import SfecDriver
from fiscalgate.core.errors import ConfigurationError


def parse(driver: SfecDriver, **changes: Any) -> Any:
    return driver.parse_settings({**driver.mock_credentials(), **changes})


@pytest.mark.parametrize(
    ("environment", "base_url", "expected"),
    [
        ("mock", None, "http://cg-sfec.mock"),
        ("mock", "http://127.0.0.1:8083/", "http://127.0.0.1:8083"),
        ("sandbox", None, "https://sandbox.api.sfec.gouv.cg"),
        ("sandbox", "https://sandbox-pgsfec.akieni.tech", "https://sandbox-pgsfec.akieni.tech"),
        ("sandbox", "http://localhost:9000/", "http://localhost:9000"),  # a local proxy
        ("production", None, "https://api.sfec.gouv.cg"),
    ],
)
def test_base_url_per_environment(
    driver: SfecDriver, environment: str, base_url: str | None, expected: str
) -> None:
    settings = parse(driver, environment=environment, base_url=base_url)
    assert driver.base_url(settings) == expected


@pytest.mark.parametrize(
    ("environment", "base_url", "message"),
    [
        ("production", "https://sandbox.api.sfec.gouv.cg", "test, development or local host"),
        ("production", "https://dev-pgsfec.akieni.tech/api", "test, development or local host"),
        ("production", "https://127.0.0.1:8443", "test, development or local host"),
        ("production", "https://localhost", "test, development or local host"),
        ("production", "http://api.sfec.gouv.cg", "production must use https"),
        ("sandbox", "https://api.sfec.gouv.cg", "sandbox cannot point at the production host"),
        ("sandbox", "http://sandbox-pgsfec.akieni.tech", "sandbox must use https"),
        ("mock", "ftp://x", "http(s) URL"),
    ],
)
def test_dangerous_combinations_are_refused(
    driver: SfecDriver, environment: str, base_url: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        parse(driver, environment=environment, base_url=base_url)
    assert caught.value.code == "settings.invalid.cg-sfec"


@pytest.mark.parametrize("niu", ["P000001212112130", "m25000000561080t", "M2400000000001A"])
def test_niu_shapes_from_the_docs_are_accepted(driver: SfecDriver, niu: str) -> None:
    assert parse(driver, niu=niu).niu == niu.upper()


@pytest.mark.parametrize("niu", ["BUYER123456789", "123456789012", "P12", "P0000012121121301234567"])
def test_other_niu_shapes_are_refused(driver: SfecDriver, niu: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse(driver, niu=niu)
    assert caught.value.problems[0].field == "niu"


def test_every_problem_is_listed_and_the_key_is_secret(driver: SfecDriver) -> None:
    with pytest.raises(ConfigurationError) as caught:
        driver.parse_settings({"niu": "x"})
    assert {p.field for p in caught.value.problems} == {"niu", "api_key", "sciet", "terminal_identifier"}
    settings = parse(driver)
    assert settings.secrets() == [driver.mock_credentials()["api_key"]]
    assert driver.mock_credentials()["api_key"] not in repr(settings)


def test_paths_are_configurable(driver: SfecDriver) -> None:
    settings = parse(driver, path_prefix="api/v1/", certify_path="/invoices")
    assert settings.path("certify") == "/api/v1/invoices"
    assert settings.path("lookup", invoice_id="A%2F1") == "/api/v1/invoices/A%2F1"
    with pytest.raises(ConfigurationError, match="invoice_id"):
        parse(driver, lookup_path="/invoices/one")
    with pytest.raises(ConfigurationError, match="starts with"):
        parse(driver, report_path="invoices/report")


@pytest.mark.parametrize("environment", ["mock", "sandbox"])
@pytest.mark.parametrize("url", ["https://api.sfec.gouv.cg", "https://API.sfec.gouv.cg./api"])
def test_mock_and_sandbox_never_point_at_production(driver: SfecDriver, environment: str, url: str) -> None:
    # mock credentials and test invoices must not reach the live platform
    with pytest.raises(ConfigurationError, match="cannot point at the production host"):
        parse(driver, environment=environment, base_url=url)
