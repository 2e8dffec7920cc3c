"""The registry: descriptors in registration order, found by code, module or alias; one driver each."""

from dataclasses import replace

import pytest

from fiscalgate import authorities
from fiscalgate.authorities.descriptor import (
    DONE_WHEN,
    AuthorityDescriptor,
    ReconcileRules,
)
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
    # What the console and the queue read: a name per language, a way to settle an unknown call.
    assert described.label("fr").strip() and described.label("en").strip()
    assert described.reconcile.actions, "an unknown invoice needs at least one way out"


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


def test_reconcile_rules_refuse_what_cannot_work() -> None:
    assert (
        ReconcileRules().actions == ("record_reference", "not_certified") and not ReconcileRules().automatic
    )
    with pytest.raises(ValueError, match="needs the 'confirm' action"):
        ReconcileRules(automatic=True)  # nothing to ask the authority with
    with pytest.raises(ValueError, match="not among"):
        ReconcileRules(actions=("confirm", "retry"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="repeat"):
        ReconcileRules(actions=("confirm", "confirm"))


def test_descriptor_console_texts_and_submission_are_checked() -> None:
    good = DESCRIPTORS[0]
    assert replace(good, labels={}).label("en") == f"{good.name} ({good.country_name})"
    with pytest.raises(ValueError) as caught:
        replace(good, labels={"de": "X"}, setting_labels={"tin": {"fr": "NIF"}}, submission=("POST", "x"))
    message = str(caught.value)
    assert "labels: 'de'" in message
    assert "setting_labels['tin'] lacks en" in message
    assert "submission" in message
