"""Onboarding steps and display names, read from the authorities' own descriptors
(`fiscalgate.authorities.descriptor(code)`, see INTERFACES.md)."""

from __future__ import annotations

from typing import Any

from fiscalgate.authorities import descriptor


def steps(authority: str) -> tuple[Any, ...]:
    """OnboardingStep(key, title{fr,en}, text{fr,en}, link, done_when) in the authority's order."""
    return tuple(descriptor(authority).onboarding)


def authority_name(authority: str) -> str:
    return descriptor(authority).name
