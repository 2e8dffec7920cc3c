"""What the rest of fiscalgate knows about SFEC (see `fiscalgate.authorities.descriptor`).

Onboarding: the « portail e-Facture » issues the API keys (README, "Onboarding").
"""

from __future__ import annotations

from typing import Any

from fiscalgate.authorities.descriptor import (
    AuthorityDescriptor,
    CreditNoteRules,
    ReconcileRules,
    counter_sale,
    step,
)

# The simulator's defaults (simulator/cli.py: DEFAULT_NIU, DEFAULT_API_KEY).
MOCK_NIU = "M2400000000001A"
MOCK_API_KEY = "sk_mock_cg_sfec_0123456789"


def mock_credentials(**hints: str) -> dict[str, Any]:
    return {
        "niu": hints.get("niu", MOCK_NIU),
        "api_key": hints.get("api_key", MOCK_API_KEY),
        "sciet": hints.get("sciet", "24-B-12345"),
        "terminal_identifier": hints.get("terminal_identifier", "ERP-01"),
    }


DESCRIPTOR = AuthorityDescriptor(
    code="cg-sfec",
    name="SFEC",
    module="sfec",
    aliases=(),
    country="CG",
    country_names=(
        "République du Congo",
        "COG",
        "Congo",
        "Republic of the Congo",
        "Republic of Congo",
        "Congo-Brazzaville",
    ),
    currencies=("XAF", "USD"),
    driver="fiscalgate.authorities.cg_sfec.driver:SfecDriver",
    mock_credentials=mock_credentials,
    # At most one credit note per invoice (SOURCES.md §3: T-CONNECTOR's test book TC-032..034).
    credit_notes=CreditNoteRules(partial=True, one_per_invoice=True),
    sample_invoice=counter_sale("DEMO-SFEC-0001", "XAF"),
    # SFEC looks an invoice up by its invoice_id (README, "Errors, retries, reconciliation"): a
    # machine can tell; there is nothing pending to cancel.
    reconcile=ReconcileRules(actions=("confirm", "record_reference", "not_certified"), automatic=True),
    labels={"fr": "SFEC (Congo)", "en": "SFEC (Congo)"},
    submission=("POST", "/invoices/certify"),
    onboarding=(
        step(
            "portal_account",
            "registered",
            link="https://efacture.gouv.cg",
            fr=(
                "Ouvrir un compte sur le portail e-Facture",
                "Inscrivez l'entreprise sur le portail e-Facture avec son NIU ; notez le numéro SCIET de "
                "l'établissement.",
            ),
            en=(
                "Open an e-Facture portal account",
                "Register the company on the portail e-Facture with its NIU; note the establishment's "
                "SCIET number.",
            ),
        ),
        step(
            "sandbox_key",
            "sandbox_configured",
            link="https://sandbox.efacture.gouv.cg",
            fr=(
                "Enregistrer la clé API de test",
                "Créez une clé X-API-Key sur le portail de test et enregistrez-la avec le NIU, le SCIET et "
                "l'identifiant du terminal (environnement sandbox).",
            ),
            en=(
                "Save the test API key",
                "Create an X-API-Key on the test portal and save it with the NIU, the SCIET and the "
                "terminal identifier (sandbox environment).",
            ),
        ),
        step(
            "sandbox_invoice",
            "sandbox_certified",
            link="https://sandbox.efacture.gouv.cg",
            fr=(
                "Certifier une facture de test",
                "Certifiez une facture et un avoir sur le bac à sable et vérifiez-les sur le portail.",
            ),
            en=(
                "Certify a test invoice",
                "Certify an invoice and a credit note in the sandbox and check them on the portal.",
            ),
        ),
        step(
            "production_key",
            "production_configured",
            link="https://efacture.gouv.cg",
            fr=(
                "Enregistrer la clé de production",
                "Créez la clé X-API-Key de production sur le portail e-Facture et enregistrez-la "
                "(environnement production).",
            ),
            en=(
                "Save the production key",
                "Create the production X-API-Key on the portail e-Facture and save it (production "
                "environment).",
            ),
        ),
        step(
            "go_live",
            "active",
            link="https://efacture.gouv.cg",
            fr=(
                "Passer en production",
                "Activez les paramètres de production : chaque facture est certifiée par SFEC, qui renvoie "
                "son numéro, sa signature et son QR code.",
            ),
            en=(
                "Switch to production",
                "Switch the production settings on: every invoice is certified by SFEC, which returns its "
                "number, signature and QR code.",
            ),
        ),
    ),
)
