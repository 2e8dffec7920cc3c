"""Onboarding steps per authority: read from the authority descriptors (h-descr) when they exist,
else from the table below (the same shape: OnboardingStep key/title/text/link/done_when)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    key: str
    title: Mapping[str, str]
    text: Mapping[str, str]
    link: str | None
    done_when: str


def _s(key: str, done_when: str, link: str | None, fr: tuple[str, str], en: tuple[str, str]) -> Step:
    return Step(key, {"fr": fr[0], "en": en[0]}, {"fr": fr[1], "en": en[1]}, link, done_when)


# FNE's five steps come from the seed (Procura's onboarding card); e-MECeF's and SFEC's from their
# specs (/work/shared/specs/mecef.md, sfec.md). A first "try the mock" step is ours for each.
_FALLBACK: dict[str, tuple[Step, ...]] = {
    "ci-fne": (
        _s(
            "mock",
            "mock_tried",
            None,
            ("Essayer le simulateur", "Certifiez une facture en environnement mock : rien ne part à la DGI."),
            ("Try the simulator", "Certify an invoice in the mock environment: nothing reaches the DGI."),
        ),
        _s(
            "register",
            "registered",
            "https://fne.dgi.gouv.ci",
            ("S'inscrire sur fne.dgi.gouv.ci", "Déposez RCCM, NCC et attestation de régularité fiscale."),
            ("Register on fne.dgi.gouv.ci", "Submit your RCCM, NCC and tax compliance certificate."),
        ),
        _s(
            "specimens",
            "sandbox_configured",
            "http://54.247.95.108/ws",
            ("Recevoir le jeton Sandbox", "Saisissez le NCC et le jeton de test, environnement Sandbox."),
            ("Receive the Sandbox token", "Enter your NCC and the test token, environment Sandbox."),
        ),
        _s(
            "sandbox",
            "sandbox_certified",
            "http://54.247.95.108/ws",
            ("Soumettre les spécimens", "Certifiez des factures spécimens sur la plateforme de test."),
            ("Submit specimens", "Certify specimen invoices on the test platform."),
        ),
        _s(
            "production",
            "production_configured",
            "https://fne.dgi.gouv.ci",
            (
                "Jeton et URL de production",
                "Saisissez l'URL de production propre à votre entreprise et le jeton.",
            ),
            ("Production token and URL", "Enter the production URL the DGI sent you, and the token."),
        ),
        _s(
            "live",
            "active",
            None,
            ("Passer en production", "Activez le réglage : chaque facture approuvée est signée."),
            ("Switch to production", "Switch the settings on: every approved invoice gets signed."),
        ),
    ),
    "bj-emecef": (
        _s(
            "mock",
            "mock_tried",
            None,
            ("Essayer le simulateur", "Certifiez une facture en environnement mock."),
            ("Try the simulator", "Certify an invoice in the mock environment."),
        ),
        _s(
            "register",
            "registered",
            "https://developper.impots.bj/sygmef-emcf",
            ("Demander l'accès e-MECeF", "Demandez à la DGI l'accès au portail développeur avec votre IFU."),
            ("Request e-MECeF access", "Ask the DGI for developer portal access with your IFU."),
        ),
        _s(
            "sandbox",
            "sandbox_configured",
            "https://developper.impots.bj/sygmef-emcf",
            ("Jeton de test", "Saisissez l'IFU et le jeton (JWT) de test ; testez la connexion."),
            ("Test token", "Enter the IFU and the test token (JWT); test the connection."),
        ),
        _s(
            "sandbox-invoice",
            "sandbox_certified",
            "https://developper.impots.bj/sygmef-emcf",
            ("Facture de test", "Certifiez une facture de test (soumission puis confirmation)."),
            ("Test invoice", "Certify a test invoice (submit, then confirm)."),
        ),
        _s(
            "production",
            "production_configured",
            "https://sygmef.impots.bj/emcf",
            ("Jeton de production", "Saisissez le jeton de production délivré pour votre e-MCF."),
            ("Production token", "Enter the production token issued for your e-MCF."),
        ),
        _s(
            "live",
            "active",
            None,
            ("Passer en production", "Activez le réglage de production."),
            ("Switch to production", "Switch the production settings on."),
        ),
    ),
    "cg-sfec": (
        _s(
            "mock",
            "mock_tried",
            None,
            ("Essayer le simulateur", "Certifiez une facture en environnement mock."),
            ("Try the simulator", "Certify an invoice in the mock environment."),
        ),
        _s(
            "register",
            "registered",
            "https://efacture.gouv.cg",
            ("S'inscrire au portail e-Facture", "Obtenez NIU, SCIET et la clé API sur le portail e-Facture."),
            ("Register on the e-Facture portal", "Get your NIU, SCIET and API key on the e-Facture portal."),
        ),
        _s(
            "sandbox",
            "sandbox_configured",
            "https://sandbox.efacture.gouv.cg",
            ("Clé API Sandbox", "Saisissez NIU, SCIET, terminal et la clé API de test."),
            ("Sandbox API key", "Enter NIU, SCIET, terminal and the test API key."),
        ),
        _s(
            "sandbox-invoice",
            "sandbox_certified",
            "https://sandbox.efacture.gouv.cg",
            ("Facture de test", "Certifiez une facture sur la sandbox SFEC."),
            ("Test invoice", "Certify an invoice on the SFEC sandbox."),
        ),
        _s(
            "production",
            "production_configured",
            "https://efacture.gouv.cg",
            ("Clé de production", "Saisissez la clé API de production."),
            ("Production key", "Enter the production API key."),
        ),
        _s(
            "live",
            "active",
            None,
            ("Passer en production", "Activez le réglage de production."),
            ("Switch to production", "Switch the production settings on."),
        ),
    ),
}


def steps(authority: str) -> tuple[Any, ...]:
    try:  # the authority describes itself once h-descr's registry is there
        from fiscalgate.authorities import descriptor  # type: ignore[attr-defined]

        found = tuple(descriptor(authority).onboarding)
        if found:
            return found
    except (ImportError, AttributeError, Exception):  # registry absent or authority unknown to it
        pass
    return _FALLBACK.get(authority, ())


def authority_name(authority: str) -> str:
    try:
        from fiscalgate.authorities import descriptor  # type: ignore[attr-defined]

        return str(descriptor(authority).name)
    except (ImportError, AttributeError, Exception):
        return {"ci-fne": "DGI — FNE", "bj-emecef": "DGI — e-MECeF", "cg-sfec": "SFEC"}.get(
            authority, authority
        )
