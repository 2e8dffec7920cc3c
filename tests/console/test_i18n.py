"""One translation mechanism: both catalogs hold the same keys, every key the pages use exists in
both, and the language follows the user's choice, then the browser's Accept-Language."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fiscalgate.authorities import descriptors, get_driver
from fiscalgate.authorities.descriptor import LANGUAGES as DESCRIPTOR_LANGUAGES
from fiscalgate.authorities.descriptor import RECONCILE_ACTIONS
from fiscalgate.gateway.console import i18n
from fiscalgate.gateway.console.models import ROLES
from fiscalgate.gateway.console.routes import ENVIRONMENTS, KINDS, STATUSES
from tests.console.conftest import World, browser, csrf_of

pytestmark = pytest.mark.anyio

CONSOLE = Path(i18n.__file__).parent
# A call t('key') in a template, or page.t("key") in the routes.
_STATIC_KEYS = re.compile(r"""\bt\(\s*['"]([a-z_]+(?:\.[a-z0-9_-]+)+)['"](?!\s*\+)""")
_CONDITIONAL_KEYS = re.compile(
    r"""['"]([a-z_]+\.[a-z0-9_.-]+)['"]\s+(?:if|else)\b|\belse\s+['"]([a-z_]+\.[a-z0-9_.-]+)['"]"""
)


def used_keys() -> set[str]:
    keys: set[str] = set()
    sources = [*(CONSOLE / "templates").glob("*.html"), CONSOLE / "routes.py", CONSOLE / "web.py"]
    for path in sources:
        text = path.read_text("utf-8")
        keys.update(_STATIC_KEYS.findall(text))
        for a, b in _CONDITIONAL_KEYS.findall(text):
            keys.add(a or b)
    # Keys built from a prefix and a value: every value the pages can meet.
    keys |= {f"status.{s}" for s in STATUSES} | {f"env.{e}" for e in ENVIRONMENTS}
    keys |= {f"kind.{k}" for k in KINDS} | {f"role.{r}" for r in (*ROLES, "admin")}
    keys |= {f"reconcile.{c}" for c in RECONCILE_ACTIONS}  # whichever an authority offers
    keys |= {f"audit.kind.{k}" for k in ("authority_call", "settings_change", "lifecycle", "tenant", "user")}
    keys |= {f"invoice.done.{d}" for d in ("created", "approve", "certify", "reconcile", "credit-note")}
    keys |= {f"account.done.{d}" for d in ("password", "revoked")}
    keys |= {f"dashboard.test_banner_{e}" for e in ("mock", "sandbox")}
    keys |= {f"invoice.test_banner_{e}" for e in ("mock", "sandbox")}
    keys |= {"login.failed", "login.too_many", "login.csrf"}
    keys |= {"derived.nim", "derived.token_expires_at"}
    return keys


def settings_fields(code: str) -> list[str]:
    """The settings fields the console's settings page labels for an authority."""
    model = get_driver(code).settings_model
    return [
        n
        for n in model.model_fields
        if n not in ("environment", "active", "timeout_seconds") and n not in _ADVANCED
    ]


@pytest.mark.parametrize("described", descriptors(), ids=[d.code for d in descriptors()])
def test_every_authority_is_named_and_its_settings_labelled_in_both_languages(described: Any) -> None:
    """A new authority brings its console texts in its descriptor (labels, setting_labels); the
    catalogs keep the fields they already share (`field.api_key`...)."""
    assert set(DESCRIPTOR_LANGUAGES) == set(i18n.LANGUAGES)
    for lang in i18n.LANGUAGES:
        assert described.label(lang).strip()
        catalog = i18n.catalog(lang)
        unlabelled = [
            n
            for n in settings_fields(described.code)
            if not catalog.get(f"field.{n}") and not described.setting_label(n, lang)
        ]
        assert unlabelled == [], f"{described.code}: no {lang} label for settings fields {unlabelled}"


_ADVANCED = {
    "path_prefix",
    "certify_path",
    "report_path",
    "lookup_path",
    "list_path",
    "lookup_page_size",
    "lookup_max_pages",
    "max_attempts",
    "retry_backoff_seconds",
}


def test_both_catalogs_have_the_same_keys_and_no_empty_text() -> None:
    fr, en = i18n.catalog("fr"), i18n.catalog("en")
    assert set(fr) - set(en) == set(), "keys missing in en.po"
    assert set(en) - set(fr) == set(), "keys missing in fr.po"
    assert [k for k, v in {**fr, **en}.items() if not v.strip()] == []


def test_every_key_the_pages_use_is_translated_in_both_languages() -> None:
    keys = used_keys()
    assert len(keys) > 150  # the scan found the pages' keys (a broken regex would find none)
    for lang in i18n.LANGUAGES:
        missing = sorted(keys - set(i18n.catalog(lang)))
        assert missing == [], f"missing in {lang}.po: {missing}"


def test_placeholders_match_between_languages() -> None:
    fr, en = i18n.catalog("fr"), i18n.catalog("en")
    names = re.compile(r"\{(\w+)\}")
    assert {k: set(names.findall(v)) for k, v in fr.items()} == {
        k: set(names.findall(v)) for k, v in en.items()
    }


def test_the_po_loader_reads_multiline_strings_and_escapes() -> None:
    text = 'msgid ""\nmsgstr "header"\n\n# c\nmsgid "a.b"\nmsgstr ""\n"deux "\n"lignes \\"x\\""\n'
    assert i18n.parse_po(text) == {"a.b": 'deux lignes "x"'}


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("en-GB,en;q=0.9", "en"),
        ("fr-CI", "fr"),
        ("de, en;q=0.5", "en"),
        ("de", "fr"),
        ("en;q=0.2, fr;q=0.8", "fr"),
        ("", "fr"),
    ],
)
def test_accept_language(header: str, lang: str) -> None:
    assert i18n.negotiate(header) == lang


async def test_the_language_defaults_from_the_browser_and_the_choice_sticks(
    world: World, signed_in: Any
) -> None:
    async with browser(world.app, **{"Accept-Language": "en-US,en;q=0.9"}) as anon:
        page = await anon.get("/console/login")
        assert '<html lang="en">' in page.text and "Sign in" in page.text
    client = await signed_in("owner@demo.test")
    client.headers["Accept-Language"] = "en"
    page = await client.get("/console/dashboard")
    assert '<html lang="en">' in page.text
    r = await client.post(
        "/console/language", data={"lang": "fr", "csrf": csrf_of(page.text), "next": "/console/dashboard"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/dashboard"
    page = await client.get("/console/dashboard")
    assert '<html lang="fr">' in page.text and "Tableau de bord" in page.text
