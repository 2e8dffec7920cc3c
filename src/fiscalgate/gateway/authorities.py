"""Which authorities exist, which ones a tenant may use, and how the gateway finds their drivers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.base import AuthorityDriver
from fiscalgate.core.errors import ConfigurationError


@dataclass(frozen=True)
class AuthorityInfo:
    code: str
    module: str
    country: str


# Kept here (not read from the drivers) so tenant modules can be validated even when one
# authority package fails to import; the values match each driver's ClassVars.
AUTHORITIES: dict[str, AuthorityInfo] = {
    "ci-fne": AuthorityInfo("ci-fne", "fne", "CI"),
    "bj-emecef": AuthorityInfo("bj-emecef", "mecef", "BJ"),
    "cg-sfec": AuthorityInfo("cg-sfec", "sfec", "CG"),
}
MODULES = {info.module: info for info in AUTHORITIES.values()}
_ALIASES = {"fne": "ci-fne", "mecef": "bj-emecef", "emecef": "bj-emecef", "sfec": "cg-sfec"}

DriverLookup = Callable[[str], AuthorityDriver]


def default_lookup(code: str) -> AuthorityDriver:
    return get_driver(code)


def authority_code(value: str) -> str:
    """`ci-fne` for `ci-fne`, `fne`, `FNE`...; ConfigurationError for anything else."""
    key = value.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in AUTHORITIES:
        raise ConfigurationError(
            f"unknown authority {value!r}; known: {', '.join(AUTHORITIES)}", code="authority.unknown"
        )
    return key


def available_authorities(country: str, modules: Iterable[str]) -> list[str]:
    """An authority is available when the tenant's country is its country OR its module is active."""
    active = set(modules)
    return [info.code for info in AUTHORITIES.values() if info.country == country or info.module in active]
