"""The console driven in headless Chromium (Debian's `chromium`, through Playwright's Python
package; no browser download). One live gateway on 127.0.0.1, port 0, for the module.

Locally they skip, with the reason, when Chromium or Playwright is missing; `.ci/run` installs
Chromium and sets FISCALGATE_REQUIRE_BROWSER=1, which turns that skip into a failure."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.live import ADMIN, OWNER, PASSWORD, Live, live_gateway

CHROMIUM = os.environ.get("FISCALGATE_CHROMIUM", "/usr/bin/chromium")


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("FISCALGATE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"FISCALGATE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_gateway(Path(tmp_path_factory.mktemp("browser"))) as running:
        yield running


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("the playwright package is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        _skip_or_fail(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run does it)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any, live: Live) -> Iterator[Any]:
    context = chromium.new_context(locale="fr-FR", viewport={"width": 1200, "height": 900})
    context.set_default_timeout(20_000)  # a generous deadline on a loaded machine; events, not sleeps
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page: Any, live: Live, email: str = OWNER) -> None:
    page.goto(f"{live.url}/console/login")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()


def test_sign_in(page: Any, live: Live) -> None:
    page.goto(f"{live.url}/console/dashboard")
    assert "/console/login" in page.url  # sent to sign in first
    page.get_by_label("Adresse e-mail").fill(OWNER)
    page.get_by_label("Mot de passe").fill("not the password")
    page.get_by_role("button", name="Se connecter").click()
    assert page.get_by_role("alert").inner_text() == "E-mail ou mot de passe incorrect."
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/console/dashboard")
    assert page.get_by_role("heading", level=1).inner_text() == "Tableau de bord"
    assert "SIMULATEUR" in page.locator(".banner").first.inner_text()


def test_fne_sandbox_then_production_is_refused_without_the_production_url(page: Any, live: Live) -> None:
    sign_in(page, live)
    page.goto(f"{live.url}/console/settings")
    fne = page.locator("#ci-fne")
    fne.get_by_label("Environnement").select_option("sandbox")
    fne.get_by_label("Clé / jeton API").fill("sandbox-token-123")
    fne.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url("**/console/settings?done=ci-fne*")
    assert "Paramètres ci-fne enregistrés." in page.get_by_role("status").first.inner_text()
    fne = page.locator("#ci-fne")
    assert fne.locator(".badge.e-sandbox").count() == 1
    assert "sandbox-token-123" not in page.content()  # the secret is never sent back
    fne.get_by_label("Environnement").select_option("production")
    fne.get_by_role("button", name="Enregistrer").click()
    error = page.locator("#ci-fne #err-production_url")
    assert "production needs the production_url" in error.inner_text()
    assert page.locator("#ci-fne-production_url").get_attribute("aria-invalid") == "true"
    # nothing was saved: after a reload the section is still in sandbox
    page.goto(f"{live.url}/console/settings")
    assert page.locator("#ci-fne .badge.e-sandbox").count() == 1
    # back to mock for the other scenarios (leaving sandbox needs no secret anew)
    page.locator("#ci-fne").get_by_label("Environnement").select_option("mock")
    page.locator("#ci-fne").get_by_label("Clé / jeton API").fill("Fq3ZbW8mTx2LkR7nVc4PsY9dHj6QaE1u")
    page.locator("#ci-fne").get_by_role("button", name="Enregistrer").click()
    page.wait_for_url("**/console/settings?done=ci-fne*")


def test_certify_then_partial_credit_note_then_audit_entry(page: Any, live: Live) -> None:
    sign_in(page, live)
    page.goto(f"{live.url}/console/invoices?authority=ci-fne&status=approved")
    page.locator("tbody a").first.click()
    number = page.get_by_role("heading", level=1).inner_text()
    page.get_by_role("button", name="Certifier").click()
    page.wait_for_url("**?done=certify")
    assert page.locator(".badge.s-certified").count() == 1
    reference = page.locator("code.big").inner_text()
    assert re.fullmatch(r"[A-Z0-9]+", reference)
    assert page.locator("figure.qr img").get_attribute("src").startswith("data:image/svg+xml")
    # partial credit note: one unit of line 1
    page.get_by_label("Riz 25 kg").fill("1")
    page.get_by_role("button", name="Créer l'avoir").click()
    page.wait_for_url("**?done=credit-note")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Avoir AV-")
    page.get_by_role("button", name="Certifier").click()
    page.wait_for_url("**?done=certify")
    assert page.locator(".badge.s-certified").count() == 1
    assert page.get_by_role("link", name=number.removeprefix("Facture ")).count() == 1  # the original
    # the audit entry of the refund call, request and response, by this user
    page.get_by_role("link", name=re.compile("journal d'audit")).click()
    row = page.locator("tbody tr", has_text="/refund").first
    assert "user:owner@demo.test" in row.inner_text()
    row.locator("a").click()
    assert page.get_by_role("heading", name="Requête").count() == 1
    assert "201" in page.locator("dl.pairs").inner_text()


def test_switch_the_language(page: Any, live: Live) -> None:
    sign_in(page, live)
    page.get_by_role("button", name="EN").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Dashboard"
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_role("link", name="Invoices").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Invoices"
    page.get_by_role("button", name="FR").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Factures"


def test_provision_a_company_as_administrator(page: Any, live: Live) -> None:
    sign_in(page, live, ADMIN)
    page.wait_for_url("**/console/admin")
    page.get_by_label("Nom").fill("Groupe Abidjan-Cotonou")
    page.get_by_label("Pays principal").fill("Cote d'Ivoire")
    page.get_by_label("FNE (Côte d'Ivoire)").check()
    page.get_by_label("e-MECeF (Bénin)").check()
    page.get_by_role("button", name="Créer l'entreprise").click()
    page.wait_for_url("**?done=created")
    assert page.get_by_role("heading", level=1).inner_text() == "Groupe Abidjan-Cotonou"
    assert "ci-fne, bj-emecef" in page.locator("dl.pairs").inner_text()
    # its owner, then an API key shown once
    page.get_by_label("Adresse e-mail").fill("dg@groupe-ac.ci")
    page.locator("#u-password").fill("a long password here")
    page.get_by_role("button", name="Ajouter l'utilisateur").click()
    assert page.locator("td", has_text="dg@groupe-ac.ci").count() == 1
    page.get_by_role("button", name="Créer une clé").click()
    assert page.locator("#new-key").inner_text().startswith("fgk_")
