"""Country normalisation: ISO codes and French/English names, with or without accents.

The Republic of the Congo (CG, Brazzaville, SFEC) and the Democratic Republic of the Congo (CD,
Kinshasa) are different countries; every DRC spelling maps to CD, never to CG, and a bare "Congo"
means the Republic of the Congo, as in the issue.
"""

from __future__ import annotations

import re
import unicodedata

# name or code (normalised: no accents, lower case, letters and digits only) -> ISO alpha-2
_NAMES: dict[str, str] = {}


def _add(code: str, *names: str) -> None:
    for name in (code, *names):
        _NAMES[_key(name)] = code


def _key(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    # Letters and digits only: "Côte d'Ivoire", "cote divoire" and "COTE-D'IVOIRE" meet.
    return re.sub(r"[^a-z0-9]+", "", plain.lower())


_add("CI", "CIV", "Côte d'Ivoire", "Ivory Coast", "République de Côte d'Ivoire")
_add("BJ", "BEN", "Bénin", "Benin", "République du Bénin", "Republic of Benin")
_add(
    "CG",
    "COG",
    "Congo",
    "République du Congo",
    "Republic of the Congo",
    "Republic of Congo",
    "Congo-Brazzaville",
)
_add(
    "CD",
    "COD",
    "RDC",
    "DRC",
    "RD Congo",
    "Congo-Kinshasa",
    "République démocratique du Congo",
    "Democratic Republic of the Congo",
    "Democratic Republic of Congo",
)
_add("SN", "SEN", "Sénégal", "Senegal")
_add("BF", "BFA", "Burkina Faso", "Burkina")
_add("ML", "MLI", "Mali")
_add("TG", "TGO", "Togo")
_add("NE", "NER", "Niger")
_add("GN", "GIN", "Guinée", "Guinea")
_add("CM", "CMR", "Cameroun", "Cameroon")
_add("GA", "GAB", "Gabon")
_add("TD", "TCD", "Tchad", "Chad")
_add("CF", "CAF", "Centrafrique", "République centrafricaine", "Central African Republic")
_add("GQ", "GNQ", "Guinée équatoriale", "Equatorial Guinea")
_add("FR", "FRA", "France")
_add("MA", "MAR", "Maroc", "Morocco")


def normalise_country(value: str) -> str:
    """ISO 3166 alpha-2 code for a code or name, or ValueError naming what is accepted."""
    key = _key(value)
    code = _NAMES.get(key)
    if code is None:
        raise ValueError(
            f"unknown country {value!r}: give an ISO code (CI, BJ, CG...) or a name "
            "(Côte d'Ivoire, Bénin, Congo...)"
        )
    return code


def country_name(code: str) -> str:
    return {
        "CI": "Côte d'Ivoire",
        "BJ": "Bénin",
        "CG": "République du Congo",
        "CD": "République démocratique du Congo",
    }.get(code, code)
