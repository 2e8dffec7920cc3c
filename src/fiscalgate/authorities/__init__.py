"""The authority registry: adding a country is one folder and one line here."""

from __future__ import annotations

from importlib import import_module

from fiscalgate.authorities.base import AuthorityDriver
from fiscalgate.core.errors import ConfigurationError

# authority code -> "module:DriverClass" (imported lazily so one authority never breaks another)
_REGISTRY: dict[str, str] = {
    "ci-fne": "fiscalgate.authorities.ci_fne.driver:FneDriver",
    "bj-emecef": "fiscalgate.authorities.bj_emecef.driver:EmecefDriver",
    "cg-sfec": "fiscalgate.authorities.cg_sfec.driver:SfecDriver",
}

_cache: dict[str, AuthorityDriver] = {}


def codes() -> list[str]:
    return list(_REGISTRY)


def get_driver(code: str) -> AuthorityDriver:
    """The driver for an authority code (`ci-fne`) or module slug (`fne`)."""
    key = code.strip().lower()
    if key not in _REGISTRY:
        by_module = {path.split(".")[2].split("_", 1)[1]: c for c, path in _REGISTRY.items()}
        aliases = {"fne": "ci-fne", "mecef": "bj-emecef", "emecef": "bj-emecef", "sfec": "cg-sfec"}
        key = aliases.get(key, by_module.get(key, key))
    if key not in _REGISTRY:
        raise ConfigurationError(
            f"unknown authority {code!r}; known: {', '.join(_REGISTRY)}", code="authority.unknown"
        )
    if key not in _cache:
        module_name, _, class_name = _REGISTRY[key].partition(":")
        driver_class = getattr(import_module(module_name), class_name)
        _cache[key] = driver_class()
    return _cache[key]


def all_drivers() -> list[AuthorityDriver]:
    return [get_driver(c) for c in _REGISTRY]
