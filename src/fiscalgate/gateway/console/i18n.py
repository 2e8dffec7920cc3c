"""Every console text goes through `translate(lang, key)`, read from gettext `.po` catalogs.

The catalogs (`translations/<lang>.po`) are standard gettext files, so translators' tools open
them; a small loader reads them at start-up (no compile step). Message ids are stable keys
(`nav.dashboard`), not English sentences, so a key missing in one language is visible: the
test suite compares the catalogs and the keys used in templates and code."""

from __future__ import annotations

import ast
from functools import cache
from importlib.resources import files

LANGUAGES = ("fr", "en")
DEFAULT = "fr"  # the product's home market; the browser's Accept-Language decides first


def parse_po(text: str) -> dict[str, str]:
    """msgid → msgstr for a .po file (single and multi-line strings; comments ignored)."""
    catalog: dict[str, str] = {}
    msgid: list[str] | None = None
    msgstr: list[str] | None = None
    current: list[str] | None = None

    def flush() -> None:
        if msgid is not None and msgstr is not None and "".join(msgid):
            catalog["".join(msgid)] = "".join(msgstr)

    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("msgid "):
            flush()
            msgid, msgstr = [ast.literal_eval(line[6:])], None
            current = msgid
        elif line.startswith("msgstr "):
            msgstr = [ast.literal_eval(line[7:])]
            current = msgstr
        elif line.startswith('"') and current is not None:
            current.append(ast.literal_eval(line))
    flush()
    return catalog


@cache
def catalog(lang: str) -> dict[str, str]:
    return parse_po((files("fiscalgate.gateway.console") / "translations" / f"{lang}.po").read_text("utf-8"))


def translate(lang: str, key: str, **values: object) -> str:
    text = catalog(lang if lang in LANGUAGES else DEFAULT).get(key) or catalog(DEFAULT).get(key) or key
    return text.format(**values) if values else text


def negotiate(accept_language: str | None) -> str:
    """The first of LANGUAGES the browser asks for (by q-value), else DEFAULT."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang in LANGUAGES and q > 0:
            choices.append((-q, index, lang))
    return min(choices)[2] if choices else DEFAULT
