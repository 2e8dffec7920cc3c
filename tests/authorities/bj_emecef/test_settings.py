"""Settings: the token is read (IFU, NIM, expiry) and unsafe environment/URL combinations refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.bj_emecef.descriptor import MOCK_TOKEN_SECRET
from fiscalgate.authorities.bj_emecef.settings import EmecefSettings
from fiscalgate.authorities.bj_emecef.simulator.state import mint_token
from fiscalgate.core.errors import ConfigurationError

IFU = "3201234567890"
DRIVER = get_driver("bj-emecef")


def _token(ifu: str = IFU, nim: str = "TS01017752", days: float = 30) -> str:
    return mint_token(ifu, nim, "a-test-secret-of-at-least-32-bytes-long", lifetime=timedelta(days=days))


def _parse(**data: Any) -> EmecefSettings:
    settings = DRIVER.parse_settings({"ifu": IFU, "token": _token(), **data})
    assert isinstance(settings, EmecefSettings)
    return settings


def _problems(**data: Any) -> dict[str, str]:
    with pytest.raises(ConfigurationError) as info:
        _parse(**data)
    return {p.field: p.message for p in info.value.problems}


def test_nim_and_expiry_are_read_from_the_token() -> None:
    settings = _parse(token="Bearer " + _token(nim="TS01000042", days=10))
    assert settings.nim == "TS01000042"
    assert settings.token_expires_at.tzinfo is not None
    assert timedelta(days=9) < settings.token_expires_at - datetime.now(UTC) <= timedelta(days=10)
    assert not settings.token.get_secret_value().startswith("Bearer")  # a pasted header is tolerated
    assert settings.token.get_secret_value() in settings.secrets()


def test_token_for_another_taxpayer_is_refused() -> None:
    assert (
        "belongs to IFU 9999999999999, not to the configured IFU"
        in _problems(token=_token("9999999999999"))["token"]
    )


def test_expired_token_is_refused() -> None:
    assert "expired on" in _problems(token=_token(days=-1))["token"]


def test_token_that_is_not_a_dgi_jwt_is_refused() -> None:
    assert "not a JWT" in _problems(token="abc")["token"]


def test_ifu_format() -> None:
    assert "ifu" in _problems(ifu="12345")


def test_default_base_urls_per_environment() -> None:
    assert DRIVER.base_url(_parse()) == "http://bj-emecef.mock"
    assert DRIVER.base_url(_parse(environment="sandbox")) == "https://developper.impots.bj/sygmef-emcf"
    prod = _parse(environment="production", token=_token(nim="IN01000005"))
    assert DRIVER.base_url(prod) == "https://sygmef.impots.bj/emcf"
    assert DRIVER.base_url(_parse(base_url="http://127.0.0.1:8088/")) == "http://127.0.0.1:8088"


def test_production_refuses_a_test_token() -> None:
    assert "test e-MCF TS01017752" in _problems(environment="production")["token"]


@pytest.mark.parametrize(
    "url",
    [
        "https://developper.impots.bj/sygmef-emcf",
        "http://127.0.0.1:8088",
        "http://localhost:8088",
        "https://api.impots.bj",
    ],
)
def test_production_refuses_any_other_host(url: str) -> None:
    problems = _problems(environment="production", token=_token(nim="IN01000005"), base_url=url)
    assert "production must use the DGI production host" in problems["base_url"]


def test_production_requires_https() -> None:
    problems = _problems(
        environment="production", token=_token(nim="IN01000005"), base_url="http://sygmef.impots.bj/emcf"
    )
    assert "https" in problems["base_url"]


@pytest.mark.parametrize("env", ["sandbox", "mock"])
def test_test_environments_never_point_at_production(env: str) -> None:
    assert (
        "production host" in _problems(environment=env, base_url="https://sygmef.impots.bj/emcf")["base_url"]
    )


def test_sandbox_on_localhost_is_refused() -> None:
    assert (
        "use environment=mock" in _problems(environment="sandbox", base_url="http://127.0.0.1:9")["base_url"]
    )


def test_mock_credentials_are_accepted_settings() -> None:
    data = DRIVER.mock_credentials(ifu=IFU, nim="TS01000009")
    settings = DRIVER.parse_settings(data)
    assert isinstance(settings, EmecefSettings)
    assert (settings.ifu, settings.nim) == (IFU, "TS01000009")
    assert MOCK_TOKEN_SECRET not in str(data)


def test_default_aib_must_be_a_or_b() -> None:
    assert _parse(default_aib="A").default_aib == "A"
    assert "default_aib" in _problems(default_aib="C")


@pytest.mark.parametrize(
    "pasted",
    [
        "https://developper.impots.bj/sygmef-emcf/api/invoice",
        "https://developper.impots.bj/sygmef-emcf/api/info/",
        "https://developper.impots.bj/sygmef-emcf/api",
        "https://developper.impots.bj/sygmef-emcf/",
    ],
)
def test_a_pasted_api_url_is_cut_back_to_the_swagger_host(pasted: str) -> None:
    # the DGI document gives {API_FACTURATION_URL} = …/api/invoice; our paths start at /api
    assert DRIVER.base_url(_parse(environment="sandbox", base_url=pasted)) == (
        "https://developper.impots.bj/sygmef-emcf"
    )


def test_mock_never_points_at_the_dgi_test_platform() -> None:
    problems = _problems(environment="mock", base_url="https://developper.impots.bj/sygmef-emcf")
    assert "use environment=sandbox" in problems["base_url"]


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer ", "BEARER  "])
def test_a_pasted_authorization_header_is_reduced_to_the_token(prefix: str) -> None:
    token = _token()
    assert _parse(token=prefix + token).token.get_secret_value() == token
