"""The SFEC error table and the defensive reading of error bodies."""

from __future__ import annotations

from typing import Any

import pytest

from fiscalgate.authorities.cg_sfec import errors
from fiscalgate.core.errors import (
    AlreadyCertified,
    AuthorityAuthError,
    AuthorityServerError,
    ConfigurationError,
    InvoiceRejected,
    RateLimited,
)


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (
            400,
            InvoiceRejected,
            "Données invalides (format incorrect, champs manquants, incohérences dans les totaux)",
        ),
        (401, AuthorityAuthError, "Clé d’authentification invalide ou manquante"),
        (403, AuthorityAuthError, "Clé d’authentification invalide ou manquante"),
        (408, AuthorityServerError, "Délai d'attente de la requête dépassé"),
        (409, AlreadyCertified, "Facture déjà certifiée ou déclarée"),
        (422, InvoiceRejected, "Erreur de validation des données métier"),
        (429, RateLimited, "Trop de requêtes"),
        (500, AuthorityServerError, "Erreur interne du serveur"),
        (503, AuthorityServerError, "Erreur interne du serveur"),
        (
            418,
            InvoiceRejected,
            "Données invalides (format incorrect, champs manquants, incohérences dans les totaux)",
        ),
    ],
)
def test_status_table(status: int, kind: type, message: str) -> None:
    error = errors.classify(status, "<html>oops</html>", what="POST /x", raw={"status": status})
    assert type(error) is kind
    assert error.http_status == status and error.authority_message == message
    assert error.authority_code == str(status)
    assert error.raw == {"status": status}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {
                "error": {
                    "code": "TOTALS_MISMATCH",
                    "message": "Totaux incohérents",
                    "details": [
                        {"field": "total_amount", "code": "TOTALS_MISMATCH", "message": "m", "expected": "10"}
                    ],
                }
            },
            [("total_amount", "m", "10")],
        ),
        (
            {"errors": {"recipient_niu": ["Le champ est obligatoire."]}},
            [("recipient_niu", "Le champ est obligatoire.", None)],
        ),
        ({"message": "bad", "details": ["free text"]}, [("(invoice)", "free text", None)]),
        (
            {"error": {"code": "X", "message": "Champ manquant", "field": "sciet"}},
            [("sciet", "Champ manquant", None)],
        ),
        ({"detail": [{"loc": "items", "msg": "too short"}]}, [("items", "too short", None)]),
        ("not json", []),
    ],
)
def test_problems_from_any_body(body: Any, expected: list[tuple[str, str, str | None]]) -> None:
    assert [(p.field, p.message, p.expected) for p in errors.problems_from_body(body)] == expected


def test_the_authority_code_and_message_come_from_the_body() -> None:
    body = {
        "error": {
            "code": "CREDIT_NOTE_EXISTS",
            "message": "Un avoir existe déjà",
            "field": "reference_invoice_id",
        }
    }
    error = errors.classify(422, body, what="POST /api/invoices/certify", raw=body)
    assert (error.authority_code, error.authority_message, error.field) == (
        "CREDIT_NOTE_EXISTS",
        "Un avoir existe déjà",
        "reference_invoice_id",
    )
    assert error.code == "authority.rejected.business_rule"
    assert errors.classify(400, {"code": "E1", "message": "x"}, what="w", raw=None).authority_code == "E1"


# The "Codes d'erreur" table of the online-report page (docs.sfec.gouv.cg/online-report), character
# for character (note the typographic apostrophe).
OFFICIAL = {
    400: "Données invalides (format incorrect, champs manquants, incohérences dans les totaux)",
    401: "Cl\u00e9 d\u2019authentification invalide ou manquante",
    409: "Facture déjà certifiée ou déclarée",
    422: "Erreur de validation des données métier",
    500: "Erreur interne du serveur",
}


@pytest.mark.parametrize("status", sorted(OFFICIAL))
def test_official_messages_are_the_seeds_verbatim(status: int) -> None:
    assert errors.ERRORS[status].message == OFFICIAL[status]


def test_a_list_location_becomes_a_field_path() -> None:
    body = {"detail": [{"loc": ["body", "items", 0, "tax_rate"], "msg": "bad rate"}]}
    assert [p.field for p in errors.problems_from_body(body)] == ["items[0].tax_rate"]


def test_an_unknown_endpoint_is_a_configuration_error() -> None:
    error = errors.endpoint_not_found(
        404, {"_text": "Not Found"}, what="POST /api/v2/x", url="http://h/api/v2/x"
    )
    assert isinstance(error, ConfigurationError)
    assert "path_prefix" in error.message and "http://h/api/v2/x" in error.message
    assert [p.field for p in error.problems] == ["path_prefix"]
