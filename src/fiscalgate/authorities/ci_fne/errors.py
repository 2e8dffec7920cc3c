"""The ONE table of FNE failures: HTTP status + platform `error` code -> error kind, neutral code,
the platform's official message (verbatim, the platform answers in English) and what to do, in French.

Source: SOURCES.md §9 and §11 (DOC text, DOC diagram, integrators' observations).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fiscalgate.authorities.ci_fne import regime
from fiscalgate.core.errors import (
    AuthorityAuthError,
    AuthorityError,
    ConfigurationError,
    GatewayError,
    InvoiceRejected,
    OutcomeUnknown,
    Problem,
    RateLimited,
)


@dataclass(frozen=True)
class FneError:
    status: int | None  # None: any status (fallback rows)
    code: str | None  # the body's `error`; None: any
    kind: type[AuthorityError] | type[ConfigurationError]
    neutral_code: str
    official_message: str  # as the platform sends it
    advice_fr: str  # what the user should do, in French
    operation: str | None = None  # "sign" or "refund"; None: both


_NO_ENDPOINT_ADVICE = (
    "Cette URL ne sert pas l'API FNE : l'URL de base doit se terminer par /ws "
    "(par exemple http://54.247.95.108/ws ou http://127.0.0.1:8010/ws pour le simulateur)."
)

# Order matters: the first row matching (operation, status, code) wins; rows with None are fallbacks.
TABLE: tuple[FneError, ...] = (
    # The sign path carries no id, so a 404/405 there can only mean the base URL does not serve the
    # FNE API (typically a missing /ws): nothing was processed, fix the settings.
    FneError(
        404,
        None,
        ConfigurationError,
        "settings.invalid.ci-fne.base_url",
        "Not Found",
        _NO_ENDPOINT_ADVICE,
        operation="sign",
    ),
    FneError(
        405,
        None,
        ConfigurationError,
        "settings.invalid.ci-fne.base_url",
        "Method Not Allowed",
        _NO_ENDPOINT_ADVICE,
        operation="sign",
    ),
    # httpx does not follow redirects. A 301/302/307/308 (e.g. http -> https, or a host that moved)
    # tells where to go and processes nothing; only the URL in the settings can fix it.
    *(
        FneError(
            status,
            None,
            ConfigurationError,
            "settings.invalid.ci-fne.redirect",
            "",
            "L'URL de base FNE redirige ailleurs (http/https, hôte déplacé) : configurez l'URL finale.",
        )
        for status in (301, 302, 307, 308)
    ),
    FneError(
        400,
        "bad_request",
        InvoiceRejected,
        "authority.rejected.fne.bad_request",
        "Point of sale is not valid",  # also "Establishment is invalid" and per-field texts
        "La plateforme FNE a refusé les données de la facture : corrigez les champs indiqués puis renvoyez.",
    ),
    FneError(
        401,
        "unauthorized",  # the DOC diagram and every observation
        AuthorityAuthError,
        "authority.auth.fne.invalid_key",
        "Invalid API Key",
        "Clé API FNE absente ou invalide : vérifiez la clé de l'onglet « Paramétrage » et l'environnement.",
    ),
    FneError(
        401,
        "unauthorized_exception",  # the DOC's text; kept so both spellings classify the same
        AuthorityAuthError,
        "authority.auth.fne.invalid_key",
        "Unauthorized",
        "Clé API FNE absente ou invalide : vérifiez la clé de l'onglet « Paramétrage » et l'environnement.",
    ),
    # Spec §9: "rely on the status, not on the `error` label" (both spellings above, or none at all).
    FneError(
        401,
        None,
        AuthorityAuthError,
        "authority.auth.fne.invalid_key",
        "Invalid API Key",
        "Clé API FNE absente ou invalide : vérifiez la clé de l'onglet « Paramétrage » et l'environnement.",
    ),
    FneError(
        403,
        None,
        AuthorityAuthError,
        "authority.auth.fne.forbidden",
        "Forbidden",
        "Accès refusé par la plateforme FNE : vérifiez la clé API et les droits du compte.",
    ),
    FneError(
        404,
        None,
        InvoiceRejected,
        "authority.rejected.fne.not_found",
        "Not Found",
        "Facture ou article introuvable sur la plateforme FNE : vérifiez l'identifiant "
        "de la facture d'origine.",
    ),
    FneError(
        429,
        None,
        RateLimited,
        "authority.rate_limited.fne",
        "Too Many Requests",
        "Trop de requêtes : réessayez plus tard.",
    ),
    # A 500 at signing leaves drafts behind and can burn a number: never resend, reconcile (spec §8.6, §9).
    FneError(
        500,
        "invoice_signing_error",
        OutcomeUnknown,
        "authority.outcome_unknown.fne.signing_error",
        "Error signing invoice",
        "Échec de signature FNE, souvent un stock de stickers épuisé : achetez des stickers (« Gestion des "
        "stickers »), puis vérifiez dans le portail si la facture a été certifiée avant de la renvoyer.",
    ),
    FneError(
        500,
        "internal_server_error",
        OutcomeUnknown,
        "authority.outcome_unknown.fne.server_error",
        "Internal Server Error",
        "Erreur interne de la plateforme FNE : vérifiez dans le portail si la facture a été certifiée "
        "avant de la renvoyer (pas d'idempotence).",
    ),
    FneError(
        None,
        None,
        OutcomeUnknown,
        "authority.outcome_unknown.fne.server_error",
        "Internal Server Error",
        "Erreur de la plateforme FNE après envoi : vérifiez dans le portail si la facture a été certifiée "
        "avant de la renvoyer (pas d'idempotence).",
    ),
)

# Wire field -> neutral invoice field, for per-field details of a 400.
_TOP_FIELDS: dict[str, str] = {
    "id": "original",
    "invoiceType": "kind",
    "paymentMethod": "payments",
    "template": "authority_options.ci-fne.template",
    "isRne": "authority_options.ci-fne.is_rne",
    "rne": "authority_options.ci-fne.rne",
    "clientNcc": "buyer.tax_id",
    "clientCompanyName": "buyer.name",
    "clientPhone": "buyer.phone",
    "clientEmail": "buyer.email",
    "clientSellerName": "operator.name",
    "pointOfSale": "point_of_sale",
    "establishment": "establishment",
    "commercialMessage": "commercial_message",
    "footer": "footer",
    "foreignCurrency": "foreign_currency",
    "foreignCurrencyRate": "exchange_rate",
    "discount": "discount",
    "items": "lines",
    "customTaxes": "authority_options.ci-fne.custom_taxes",
}
_ITEM_FIELDS: dict[str, str] = {
    "taxes": "tax_code",
    "customTaxes": "extra_taxes",
    "description": "description",
    "quantity": "quantity",
    "amount": "unit_price",
    "discount": "discount",
    "reference": "reference",
    "measurementUnit": "unit",
    "id": "original_line",
}
_ITEM_PATH = re.compile(r"^items[.\[](\d+)\]?(?:\.(\w+)(?:[.\[](\d+)\]?(?:\.(\w+))?)?)?$")
_CUSTOM_PATH = re.compile(r"^customTaxes[.\[](\d+)\]?(?:\.(\w+))?$")


def neutral_field(wire: str) -> str:
    """`items.2.taxes` -> `lines[2].tax_code`; unknown names are returned unchanged."""
    if wire in _TOP_FIELDS:
        return _TOP_FIELDS[wire]
    match = _ITEM_PATH.match(wire)
    if match:
        index, name, sub_index, sub_name = match.groups()
        out = f"lines[{index}]"
        if name:
            out += "." + _ITEM_FIELDS.get(name, name)
            if sub_index is not None:
                out += f"[{sub_index}]"
                if sub_name:
                    out += "." + ("rate" if sub_name == "amount" else sub_name)
        return out
    match = _CUSTOM_PATH.match(wire)
    if match:
        index, name = match.groups()
        out = f"authority_options.ci-fne.custom_taxes[{index}]"
        return out + ("." + ("rate" if name == "amount" else name) if name else "")
    return wire


def lookup(status: int, code: str | None, operation: str | None = None) -> FneError:
    for row in TABLE:
        if row.operation is not None and row.operation != operation:
            continue
        if row.status in (None, status) and row.code in (None, code):
            if row.status is None and status < 500 and not 300 <= status < 400:
                continue
            return row
    # Unlisted 4xx: the platform refused the content.
    return FneError(
        status, code, InvoiceRejected, "authority.rejected.fne", "", "Requête refusée par la plateforme FNE."
    )


def field_problems(errors: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for wire, rules in errors.items():
        if isinstance(rules, Mapping):
            for rule, text in rules.items():
                problems.append(Problem(neutral_field(str(wire)), str(rule), f"{text} ({wire})"))
        else:
            problems.append(Problem(neutral_field(str(wire)), "invalid", f"{rules} ({wire})"))
    return problems


def classify(
    status: int,
    body: Any,
    *,
    operation: str,
    checkpoint: Mapping[str, Any] | None = None,
) -> GatewayError:
    """One failed HTTP answer -> one error of the right kind. `body` must already be masked.

    Always an AuthorityError kind, except a sign endpoint that does not exist (ConfigurationError)."""
    data = body if isinstance(body, Mapping) else {}
    code = data.get("error") if isinstance(data.get("error"), str) else None
    message = data.get("message")
    if isinstance(message, list):  # one integrator's parser handles arrays; harmless to accept
        message = "; ".join(str(m) for m in message)
    errors = data.get("errors") if isinstance(data.get("errors"), Mapping) else {}
    row = lookup(status, code, operation)
    authority_message = str(message) if message else row.official_message or None
    problems = field_problems(errors or {})
    text = f"FNE {operation}: HTTP {status}"
    if authority_message:
        text += f" « {authority_message} »"
    text += f". {row.advice_fr}"
    common: dict[str, Any] = {
        "authority": regime.AUTHORITY,
        "code": row.neutral_code,
        "http_status": status,
        "authority_code": code,
        "authority_message": authority_message,
        "raw": body,
        "field": problems[0].field if problems else None,
        "problems": problems,
    }
    if row.kind is OutcomeUnknown:
        return OutcomeUnknown(text, checkpoint=checkpoint, **common)
    if issubclass(row.kind, AuthorityError):
        return row.kind(text, **common)
    return ConfigurationError(text, code=row.neutral_code)
