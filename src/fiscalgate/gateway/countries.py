"""Country normalisation: ISO codes and French/English names, with or without accents.

The countries of the registered authorities, and their names, come from the authorities'
descriptors (`country`, `country_names`); the table below only adds the other countries a tenant
may be based in. The Republic of the Congo (CG, Brazzaville, SFEC) and the Democratic Republic of
the Congo (CD, Kinshasa) are different countries; every DRC spelling maps to CD, never to CG, and
a bare "Congo" means the Republic of the Congo.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from fiscalgate.authorities import descriptors

# Countries without a registered authority: ISO alpha-2 -> (display name, other spellings...).
OTHER_COUNTRIES: dict[str, tuple[str, ...]] = {
    "CD": (
        "République démocratique du Congo",
        "COD",
        "RDC",
        "DRC",
        "RD Congo",
        "Congo-Kinshasa",
        "Democratic Republic of the Congo",
        "Democratic Republic of Congo",
    ),
    "SN": ("Sénégal", "SEN", "Senegal"),
    "BF": ("Burkina Faso", "BFA", "Burkina"),
    "ML": ("Mali", "MLI"),
    "TG": ("Togo", "TGO"),
    "NE": ("Niger", "NER"),
    "GN": ("Guinée", "GIN", "Guinea"),
    "CM": ("Cameroun", "CMR", "Cameroon"),
    "GA": ("Gabon", "GAB"),
    "TD": ("Tchad", "TCD", "Chad"),
    "CF": ("Centrafrique", "CAF", "République centrafricaine", "Central African Republic"),
    "GQ": ("Guinée équatoriale", "GNQ", "Equatorial Guinea"),
    "FR": ("France", "FRA"),
    "MA": ("Maroc", "MAR", "Morocco"),
}


def _key(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    # Letters and digits only: "Côte d'Ivoire", "cote divoire" and "COTE-D'IVOIRE" meet.
    return re.sub(r"[^a-z0-9]+", "", plain.lower())


@cache
def _tables() -> tuple[dict[str, str], dict[str, str]]:
    """(normalised name or code -> ISO code, ISO code -> display name)."""
    countries: dict[str, tuple[str, ...]] = {}
    for d in descriptors():
        names = countries.get(d.country, ())
        countries[d.country] = names + tuple(n for n in d.country_names if n not in names)
    for code, names in OTHER_COUNTRIES.items():
        countries.setdefault(code, names)
    by_key: dict[str, str] = {}
    for code, names in countries.items():
        for name in (code, *names):
            known = by_key.setdefault(_key(name), code)
            if known != code:
                raise ValueError(f"the country name {name!r} means both {known} and {code}")
    return by_key, {code: names[0] for code, names in countries.items()}


def normalise_country(value: str) -> str:
    """ISO 3166 alpha-2 code for a code or name, or ValueError naming what is accepted."""
    code = _tables()[0].get(_key(value))
    if code is None:
        examples = ", ".join(d.country for d in descriptors())
        names = ", ".join(d.country_name for d in descriptors())
        raise ValueError(
            f"unknown country {value!r}: give an ISO code ({examples}...) or a name ({names}...)"
        )
    return code


def country_name(code: str) -> str:
    return _tables()[1].get(code, code)
