"""What the rest of fiscalgate knows about FNE (see `fiscalgate.authorities.descriptor`).

Onboarding: the DGI's « Procédure d'interfaçage des entreprises par API » (May 2025), as summarised
in this folder's README, section "Onboarding".
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

PORTAL = "https://fne.dgi.gouv.ci"


def mock_credentials(**hints: str) -> dict[str, Any]:
    # The simulator's defaults (simulator/app.py: DEFAULT_NCC, DEFAULT_API_KEY...).
    return {
        "ncc": hints.get("ncc", "9606123E"),
        "api_key": hints.get("api_key", "Fq3ZbW8mTx2LkR7nVc4PsY9dHj6QaE1u"),
        "point_of_sale": hints.get("point_of_sale", "Caisse 1"),
        "establishment": hints.get("establishment", "Siège Plateau"),
    }


DESCRIPTOR = AuthorityDescriptor(
    code="ci-fne",
    name="DGI — FNE",
    module="fne",
    aliases=(),
    country="CI",
    country_names=("Côte d'Ivoire", "CIV", "Ivory Coast", "Cote d'Ivoire", "République de Côte d'Ivoire"),
    currencies=("XOF",),
    driver="fiscalgate.authorities.ci_fne.driver:FneDriver",
    mock_credentials=mock_credentials,
    # FNE refunds any subset of the original's items and quantities (SOURCES.md §7).
    credit_notes=CreditNoteRules(partial=True, one_per_invoice=False),
    # The verification page FNE's QR codes point at (SOURCES.md §8.7).
    simulator_pages=(r"fr/verification/[A-Za-z0-9-]{1,100}",),
    sample_invoice=counter_sale("DEMO-FNE-0001", "XOF"),
    # FNE has no look-up API: only a person, checking the portal, settles an uncertain call
    # (SOURCES.md §4, §12; README, "Decisions where the sources are silent", `reconcile`).
    reconcile=ReconcileRules(actions=("record_reference", "not_certified"), automatic=False),
    # Each signature answers the stickers left on the account (SOURCES.md §8.6, `balance_sticker`).
    sticker_balance=True,
    labels={"fr": "FNE (Côte d'Ivoire)", "en": "FNE (Côte d'Ivoire)"},
    submission=("POST", "/external/invoices/sign"),
    onboarding=(
        step(
            "register",
            "registered",
            link=PORTAL,
            fr=(
                "S'inscrire sur le portail FNE",
                "Créez l'espace de l'entreprise sur fne.dgi.gouv.ci avec le RCCM, le NCC et "
                "l'attestation de régularité fiscale.",
            ),
            en=(
                "Register on the FNE portal",
                "Open the company's space on fne.dgi.gouv.ci with its RCCM, NCC and tax compliance "
                "certificate.",
            ),
        ),
        step(
            "sandbox_token",
            "sandbox_configured",
            link=PORTAL,
            fr=(
                "Recevoir la clé de test",
                "Copiez la clé API de test de l'espace « Paramétrage » du portail et enregistrez-la "
                "avec votre NCC, votre point de vente et votre établissement (environnement sandbox).",
            ),
            en=(
                "Receive the test key",
                "Copy the test API key from the portal's « Paramétrage » page and save it with your NCC, "
                "point of sale and establishment (sandbox environment).",
            ),
        ),
        step(
            "specimens",
            "sandbox_certified",
            link="http://54.247.95.108/ws",
            fr=(
                "Soumettre les spécimens",
                "Certifiez vos factures spécimens sur la plateforme de test (B2B, B2C, B2F, B2G, codes "
                "TVA, moyens de paiement) : la DGI valide la structure avant la production.",
            ),
            en=(
                "Submit the specimens",
                "Certify your specimen invoices on the test platform (B2B, B2C, B2F, B2G, VAT codes, "
                "payment methods): the DGI checks their structure before production.",
            ),
        ),
        step(
            "production_credentials",
            "production_configured",
            link=PORTAL,
            fr=(
                "Obtenir la clé et l'URL de production",
                "Après validation des spécimens, la DGI envoie la clé de production et l'URL de "
                "production propre à l'entreprise : enregistrez les deux (environnement production).",
            ),
            en=(
                "Get the production key and URL",
                "Once the specimens are approved, the DGI sends the production key and the company's own "
                "production URL: save both (production environment).",
            ),
        ),
        step(
            "go_live",
            "active",
            link=PORTAL,
            fr=(
                "Passer en production",
                "Activez les paramètres de production : chaque facture approuvée est alors signée par la "
                "FNE et le solde de stickers diminue à chaque appel.",
            ),
            en=(
                "Switch to production",
                "Switch the production settings on: every approved invoice is then signed by FNE and the "
                "sticker balance goes down with each call.",
            ),
        ),
    ),
)
