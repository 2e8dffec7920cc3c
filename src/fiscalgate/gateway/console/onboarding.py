"""Onboarding steps and display names, read from the authorities' own descriptors
(`fiscalgate.authorities.descriptor(code)`, see INTERFACES.md)."""

from __future__ import annotations

from typing import Any

from fiscalgate.authorities import descriptor
from fiscalgate.core.errors import ConfigurationError
from fiscalgate.gateway.console.i18n import DEFAULT, catalog


def steps(authority: str) -> tuple[Any, ...]:
    """OnboardingStep(key, title{fr,en}, text{fr,en}, link, done_when) in the authority's order."""
    return tuple(descriptor(authority).onboarding)


def authority_name(authority: str) -> str:
    return descriptor(authority).name


def module_label(module: str, lang: str) -> str:
    """What the console calls a tenant module in `lang` ("FNE (Côte d'Ivoire)")."""
    return descriptor(module).label(lang)


def reconcile_choices(authority: str) -> tuple[str, ...]:
    """The reconcile actions the console offers a person on an `unknown` invoice of `authority`."""
    try:
        return tuple(descriptor(authority).reconcile.actions)
    except ConfigurationError:  # an authority no longer registered: nothing to ask it
        return ()


def field_label(authority: str, name: str, lang: str) -> str:
    """A settings field's label: the console's catalog (`field.<name>`) when it names the field,
    else the authority's own `setting_labels`, else the field's name."""
    known = catalog(lang).get(f"field.{name}") or catalog(DEFAULT).get(f"field.{name}")
    return known or descriptor(authority).setting_label(name, lang) or name
