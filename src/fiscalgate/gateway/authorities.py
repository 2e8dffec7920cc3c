"""Which authorities exist, which ones a tenant may use, and how the gateway finds their drivers.

Everything here is read from the authorities' descriptors (`fiscalgate.authorities.descriptors()`):
a descriptor imports nothing heavy, so tenant modules are validated even when an authority's
driver fails to import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fiscalgate.authorities import descriptor, descriptors, get_driver
from fiscalgate.authorities.base import AuthorityDriver
from fiscalgate.core.errors import ConfigurationError

DriverLookup = Callable[[str], AuthorityDriver]


def default_lookup(code: str) -> AuthorityDriver:
    return get_driver(code)


def codes() -> list[str]:
    """Every authority code, in registration order."""
    return [d.code for d in descriptors()]


def modules() -> list[str]:
    """Every tenant-module slug, in registration order."""
    return [d.module for d in descriptors()]


def authority_code(value: str) -> str:
    """`ci-fne` for `ci-fne`, `fne`, `FNE`...; ConfigurationError for anything else."""
    return descriptor(value).code


def module_slug(value: str) -> str:
    """`mecef` for `mecef`, `emecef`, `e-MECeF`...; ValueError naming the known modules."""
    try:
        return descriptor(value).module
    except ConfigurationError:
        raise ValueError(f"unknown module {value!r}; known: {', '.join(modules())}") from None


def available_authorities(country: str, active_modules: Iterable[str]) -> list[str]:
    """An authority is available when the tenant's country is its country OR its module is active."""
    active = set(active_modules)
    return [d.code for d in descriptors() if d.country == country or d.module in active]
