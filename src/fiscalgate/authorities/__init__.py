"""The authority registry: adding an authority is one folder and one line here.

Each line names the module holding an authority's `DESCRIPTOR` (see `descriptor.py`); everything
else (drivers, the gateway's tables, the demo, the CLI, the shared tests) is read from those.
"""

from __future__ import annotations

from importlib import import_module

from fiscalgate.authorities.base import AuthorityDriver
from fiscalgate.authorities.descriptor import AuthorityDescriptor
from fiscalgate.core.errors import ConfigurationError

# Registration order is the order authorities are listed in (CLI, settings, demo).
_DESCRIPTOR_MODULES: tuple[str, ...] = (
    "fiscalgate.authorities.ci_fne.descriptor",
    "fiscalgate.authorities.bj_emecef.descriptor",
    "fiscalgate.authorities.cg_sfec.descriptor",
    # `fiscalgate new-authority` adds its line above this one.
)

_descriptors: tuple[AuthorityDescriptor, ...] | None = None
_by_name: dict[str, AuthorityDescriptor] = {}
_drivers: dict[str, AuthorityDriver] = {}


def descriptors() -> tuple[AuthorityDescriptor, ...]:
    """Every registered authority's descriptor, in registration order."""
    global _descriptors
    if _descriptors is None:
        found: list[AuthorityDescriptor] = []
        names: dict[str, AuthorityDescriptor] = {}
        for module_name in _DESCRIPTOR_MODULES:
            described = import_module(module_name).DESCRIPTOR
            if not isinstance(described, AuthorityDescriptor):
                raise TypeError(f"{module_name}.DESCRIPTOR is not an AuthorityDescriptor")
            for name in described.names():
                if name in names and names[name] is not described:
                    raise ValueError(f"{name!r} names both {names[name].code} and {described.code}")
                names[name] = described
            found.append(described)
        _by_name.update(names)
        _descriptors = tuple(found)
    return _descriptors


def descriptor(code_or_alias: str) -> AuthorityDescriptor:
    """The descriptor of an authority code (`ci-fne`), module slug (`fne`) or alias (`emecef`)."""
    descriptors()
    found = _by_name.get(code_or_alias.strip().lower())
    if found is None:
        raise ConfigurationError(
            f"unknown authority {code_or_alias!r}; known: {', '.join(codes())}", code="authority.unknown"
        )
    return found


def codes() -> list[str]:
    return [d.code for d in descriptors()]


def get_driver(code: str) -> AuthorityDriver:
    """The driver (one instance per authority) for a code, module slug or alias."""
    described = descriptor(code)
    if described.code not in _drivers:
        _drivers[described.code] = described.load_driver()
    return _drivers[described.code]


def all_drivers() -> list[AuthorityDriver]:
    return [get_driver(c) for c in codes()]


__all__ = ["AuthorityDescriptor", "all_drivers", "codes", "descriptor", "descriptors", "get_driver"]
