"""Screenshots of each console page into docs/console/ (run by hand, not a test):

.venv/bin/python -m tests.console.shoot
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tests.console.live import ADMIN, OWNER, PASSWORD, live_gateway

OUT = Path(__file__).resolve().parents[2] / "docs" / "console"


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, live_gateway(Path(tmp)) as live, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
        page = ctx.new_page()
        base = live.url

        def shot(name: str, full: bool = True) -> None:
            page.screenshot(path=str(OUT / f"{name}.png"), full_page=full)

        page.goto(f"{base}/console/login")
        shot("login", full=False)
        sign_in(page, base, OWNER)
        # certify one invoice per authority, and a partial credit note on the FNE one
        page.goto(f"{base}/console/invoices?status=approved")
        links = [a.get_attribute("href") for a in page.locator("table a").all()]
        for href in links:
            page.goto(f"{base}{href}")
            page.click("text=Certifier")
        page.goto(f"{base}/console/invoices?authority=ci-fne&status=certified")
        page.locator("table a").first.click()
        page.fill("#qty_1", "1")
        page.click("text=Créer l'avoir")
        page.click("text=Certifier")
        shot("invoice-credit-note")
        page.goto(f"{base}/console/invoices?authority=ci-fne&kind=sale")
        page.locator("table a").first.click()
        shot("invoice")
        page.goto(f"{base}/console/dashboard")
        shot("dashboard")
        page.goto(f"{base}/console/invoices")
        shot("invoices")
        page.goto(f"{base}/console/settings")
        page.select_option("#ci-fne-environment", "production")
        page.click("#ci-fne button[type=submit].primary")
        page.set_viewport_size({"width": 1280, "height": 1150})
        page.locator("#ci-fne").scroll_into_view_if_needed()
        shot("settings-refusal", full=False)
        # the connection test of every authority that offers one, with its answer
        page.goto(f"{base}/console/settings")
        page.click("form[action$='/settings/bj-emecef/test'] button")
        page.locator("#bj-emecef").scroll_into_view_if_needed()
        shot("settings-connection-test", full=False)
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(f"{base}/console/audit?kind=authority_call")
        page.locator("table a").first.click()
        shot("audit-entry")
        page.goto(f"{base}/console/audit")
        shot("audit", full=False)
        page.goto(f"{base}/console/team")
        shot("team")
        page.goto(f"{base}/console/account")
        shot("account")
        # English, on a tablet
        tablet = browser.new_context(viewport={"width": 820, "height": 1180}, locale="en-GB")
        page = tablet.new_page()
        sign_in(page, base, OWNER)
        page.goto(f"{base}/console/dashboard")
        shot("dashboard-en-tablet", full=False)
        admin = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
        page = admin.new_page()
        sign_in(page, base, ADMIN)
        page.fill("#c-name", "Groupe Abidjan-Cotonou")
        page.fill("#c-country", "Ivory Coast")
        page.check("input[value=fne]")
        page.check("input[value=mecef]")
        page.click("text=Create the company")
        shot("admin-company")
        page.goto(f"{base}/console/admin")
        shot("admin")
        browser.close()


if __name__ == "__main__":
    main()
