import pytest

from fiscalgate import authorities
from fiscalgate.core.errors import ConfigurationError


def test_registry_lists_the_three_authorities() -> None:
    assert authorities.codes() == ["ci-fne", "bj-emecef", "cg-sfec"]


@pytest.mark.parametrize(
    ("alias", "code"),
    [
        ("ci-fne", "ci-fne"),
        ("FNE", "ci-fne"),
        ("mecef", "bj-emecef"),
        ("emecef", "bj-emecef"),
        ("sfec", "cg-sfec"),
        (" cg-sfec ", "cg-sfec"),
    ],
)
def test_get_driver_by_code_or_module(alias: str, code: str) -> None:
    driver = authorities.get_driver(alias)
    assert driver.code == code
    assert authorities.get_driver(code) is driver  # one instance per authority


def test_unknown_authority_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown authority 'rdc-dgi'") as caught:
        authorities.get_driver("rdc-dgi")
    assert caught.value.code == "authority.unknown"


def test_every_driver_declares_its_identity() -> None:
    for driver in authorities.all_drivers():
        assert driver.module in {"fne", "mecef", "sfec"}
        assert len(driver.country) == 2 and driver.country.isupper()
        assert driver.currencies
        assert driver.simulate_command().name == driver.code
