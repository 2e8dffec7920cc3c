"""What the rest of fiscalgate knows about e-MECeF (see `fiscalgate.authorities.descriptor`).

Onboarding: the homologation of an SFE (SOURCES.md §14; README, "Onboarding").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fiscalgate.authorities.descriptor import (
    AuthorityDescriptor,
    CreditNoteRules,
    PendingCap,
    ReconcileRules,
    counter_sale,
    step,
)

# The simulator's defaults (simulator/state.py: DEFAULT_IFU, DEFAULT_NIM, DEFAULT_TOKEN_SECRET):
# public on purpose, worthless outside the simulator.
MOCK_IFU = "0202300000001"
MOCK_NIM = "TS01000001"
MOCK_TOKEN_SECRET = "fiscalgate-emecef-simulator-secret-not-for-production"


def mock_credentials(**hints: str) -> dict[str, Any]:
    # The token is a JWT with an expiry (e-MECeF reads IFU and NIM from it): minted at each call.
    from fiscalgate.authorities.bj_emecef.simulator.state import mint_token

    ifu = hints.get("ifu", MOCK_IFU)
    nim = hints.get("nim", MOCK_NIM)
    return {
        "ifu": ifu,
        "token": mint_token(ifu, nim, MOCK_TOKEN_SECRET),
        "operator_name": hints.get("operator_name", "Caisse 1"),
    }


DESCRIPTOR = AuthorityDescriptor(
    code="bj-emecef",
    name="DGI — e-MECeF",
    module="mecef",
    aliases=("emecef", "e-mecef"),
    country="BJ",
    country_names=("Bénin", "BEN", "Benin", "République du Bénin", "Republic of Benin"),
    currencies=("XOF",),
    driver="fiscalgate.authorities.bj_emecef.driver:EmecefDriver",
    mock_credentials=mock_credentials,
    # FA/EA invoices credit the original by its reference, line by line (SOURCES.md §9).
    credit_notes=CreditNoteRules(partial=True, one_per_invoice=False),
    sample_invoice=counter_sale("DEMO-MECEF-0001", "XOF"),
    # A submitted invoice waits, pending, for confirm or cancel; GET /{uid} reads it meanwhile
    # (SOURCES.md §5), so a machine can settle an uncertain call either way.
    reconcile=ReconcileRules(
        actions=("confirm", "cancel", "record_reference", "not_certified"), automatic=True
    ),
    # "At most 10 pending requests per e-MCF", each expiring 2 minutes after submission
    # (SOURCES.md §5, items 4-5). `hold`: the gateway's own bound on a live call's slot.
    pending_cap=PendingCap(limit=10, expiry=timedelta(minutes=2), hold=timedelta(minutes=10)),
    labels={"fr": "e-MECeF (Bénin)", "en": "e-MECeF (Benin)"},
    # Only the submission: a timeout on the confirm cannot be settled through the platform (a
    # finalised request is no longer visible, SOURCES.md §5 item 6), so it goes to a person.
    submission=("POST", "/api/invoice"),
    onboarding=(
        step(
            "test_access",
            "registered",
            link="https://developper.impots.bj/sygmef-emcf",
            fr=(
                "Demander l'accès à la plateforme de test",
                "Demandez à la DGI l'accès à la plateforme de test e-MCF et lisez la spécification de "
                "l'API (« Spécification de l'API pour l'e-MCF », v1.0).",
            ),
            en=(
                "Ask for test platform access",
                "Ask the DGI for access to the e-MCF test platform and read the API specification "
                "(« Spécification de l'API pour l'e-MCF », v1.0).",
            ),
        ),
        step(
            "test_token",
            "sandbox_configured",
            link="https://developper.impots.bj/sygmef-emcf",
            fr=(
                "Enregistrer le jeton de test",
                "Enregistrez votre IFU et le jeton de test (JWT) délivré par la DGI : le NIM et "
                "l'expiration du jeton en sont lus.",
            ),
            en=(
                "Save the test token",
                "Save your IFU and the test token (a JWT) the DGI issued: the NIM and the token's expiry "
                "are read from it.",
            ),
        ),
        step(
            "test_invoices",
            "sandbox_certified",
            link="https://developper.impots.bj/sygmef-test/verification",
            fr=(
                "Produire les 20 factures de test",
                "Certifiez les 20 factures de test de l'annexe 2 et remplissez l'auto-déclaration de SFE "
                "avec e-MECeF (annexe 1 : types de factures et groupes de taxation utilisés).",
            ),
            en=(
                "Produce the 20 test invoices",
                "Certify the 20 test invoices of annex 2 and fill in the SFE self-declaration with "
                "e-MECeF (annex 1: the invoice types and tax groups you use).",
            ),
        ),
        step(
            "send_for_approval",
            "registered",
            link="mailto:emecefbenin@finances.bj",
            fr=(
                "Envoyer le dossier d'homologation",
                "Envoyez les scans des factures de test (QR lisible) et l'auto-déclaration à "
                "emecefbenin@finances.bj, puis attendez l'approbation.",
            ),
            en=(
                "Send the approval file",
                "Send the scans of the test invoices (QR legible) and the self-declaration to "
                "emecefbenin@finances.bj, then wait for the approval.",
            ),
        ),
        step(
            "production_token",
            "production_configured",
            link="https://sygmef.impots.bj",
            fr=(
                "Enregistrer le jeton de production",
                "Après l'approbation, la DGI délivre le NIM et le jeton de production : enregistrez-les "
                "(environnement production).",
            ),
            en=(
                "Save the production token",
                "After the approval the DGI issues the production NIM and token: save them (production "
                "environment).",
            ),
        ),
        step(
            "go_live",
            "active",
            link="https://sygmef.impots.bj",
            fr=(
                "Passer en production",
                "Activez les paramètres de production. Surveillez l'expiration du jeton : l'API n'a pas "
                "de renouvellement, la DGI en délivre un nouveau.",
            ),
            en=(
                "Switch to production",
                "Switch the production settings on. Watch the token's expiry: the API cannot renew it, "
                "the DGI issues a new one.",
            ),
        ),
    ),
)
