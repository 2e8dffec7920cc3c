"""The registry: descriptors in registration order, found by code, module or alias; one driver each."""

import pytest

from fiscalgate import authorities
from fiscalgate.authorities.descriptor import DONE_WHEN, AuthorityDescriptor
from fiscalgate.core.errors import ConfigurationError

DESCRIPTORS = authorities.descriptors()
IDS = [d.code for d in DESCRIPTORS]


def test_codes_follow_the_descriptors_in_registration_order() -> None:
    assert authorities.codes() == [d.code for d in DESCRIPTORS]
    assert len(set(authorities.codes())) == len(DESCRIPTORS) >= 1


@pytest.mark.parametrize("described", DESCRIPTORS, ids=IDS)
def test_every_name_finds_the_same_descriptor_and_driver(described: AuthorityDescriptor) -> None:
    for name in (*described.names(), described.code.upper(), f"  {described.module.upper()} "):
        assert authorities.descriptor(name) is described
        assert authorities.get_driver(name) is authorities.get_driver(described.code)  # one instance


@pytest.mark.parametrize("described", DESCRIPTORS, ids=IDS)
def test_the_driver_takes_its_identity_from_the_descriptor(described: AuthorityDescriptor) -> None:
    driver = authorities.get_driver(described.code)
    assert driver.descriptor is described
    assert (driver.code, driver.module, driver.country, driver.currencies) == (
        described.code,
        described.module,
        described.country,
        described.currencies,
    )
    assert driver.simulate_command().name == described.code
    assert type(driver).__module__.startswith(described.package + ".")


@pytest.mark.parametrize("described", DESCRIPTORS, ids=IDS)
def test_every_descriptor_is_complete(described: AuthorityDescriptor) -> None:
    assert described.country_names and described.currencies and described.name
    assert described.sample()["currency"] in described.currencies
    steps = described.onboarding
    assert steps, "the console shows these steps"
    for step in steps:
        assert set(step.title) >= {"fr", "en"} and set(step.text) >= {"fr", "en"}
        assert step.done_when in DONE_WHEN
    # The path ends live: the last step is done when production is switched on.
    assert steps[-1].done_when == "active"
    # The sample is a fresh copy each time: a caller changing it changes nothing for the next.
    first = described.sample()
    first["lines"].clear()
    assert described.sample()["lines"]


def test_unknown_authority_is_a_configuration_error() -> None:
    for lookup in (authorities.get_driver, authorities.descriptor):
        with pytest.raises(ConfigurationError, match="unknown authority 'rdc-dgi'") as caught:
            lookup("rdc-dgi")
        assert caught.value.code == "authority.unknown"


def test_a_malformed_descriptor_is_refused_with_every_reason() -> None:
    good = DESCRIPTORS[0]
    with pytest.raises(ValueError) as caught:
        AuthorityDescriptor(
            code="XX_bad",
            name="Bad",
            module="Bad Module",
            aliases=(),
            country="xx",
            country_names=(),
            currencies=("euro",),
            onboarding=(),
            driver="no-colon",
            mock_credentials=good.mock_credentials,
            sample_invoice={},
        )
    message = str(caught.value)
    for reason in ("code", "module", "country", "country_names", "currencies", "driver"):
        assert reason in message
