"""The ONE table of e-MECeF failures: errorCode (spec §13, DOC p.24) -> error kind, neutral code,
official French text (verbatim, typos included: the API sends them so) and the neutral invoice field.

Business errors arrive as HTTP 200 with `errorCode` in the normal DTO (§3); HTTP statuses are
classified here too, so the client never decides a kind anywhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fiscalgate.authorities.bj_emecef.regime import AUTHORITY
from fiscalgate.core.errors import (
    AuthorityAuthError,
    AuthorityError,
    AuthorityServerError,
    InvoiceRejected,
    Problem,
    RateLimited,
)


@dataclass(frozen=True)
class ErrorEntry:
    kind: type[AuthorityError]
    code: str  # neutral, stable
    message: str  # the API's errorDesc, verbatim
    field: str | None = None  # the neutral invoice field at fault, when known


ERRORS: dict[str, ErrorEntry] = {
    # Back-pressure, not a rejection: confirm or let expire the pending ones, then retry.
    "1": ErrorEntry(
        RateLimited, "authority.too_many_pending", "Le nombre maximum de factures en attente est dépassé"
    ),
    "3": ErrorEntry(
        InvoiceRejected, "authority.rejected.invoice_type", "Type de facture n'est pas valide", "kind"
    ),
    "4": ErrorEntry(
        InvoiceRejected,
        "authority.rejected.original_missing",
        "La référence de la facture originale est manquante",
        "original.reference",
    ),
    "5": ErrorEntry(
        InvoiceRejected,
        "authority.rejected.original_length",
        "La référence de la facture originale ne comporte pas 24 caractères",
        "original.reference",
    ),
    "6": ErrorEntry(
        InvoiceRejected,
        "authority.rejected.aib",
        "La valeur de l'AIB n'est pas valide",
        "authority_options.bj-emecef.aib",
    ),
    "7": ErrorEntry(
        InvoiceRejected, "authority.rejected.payment_type", "Le type de paiement n'est pas valide", "payments"
    ),
    "8": ErrorEntry(
        InvoiceRejected, "authority.rejected.no_items", "La facture doit contenu les articles", "lines"
    ),
    "9": ErrorEntry(
        InvoiceRejected,
        "authority.rejected.tax_group",
        "La groupe de taxation au niveau des articles n'est pas valide",
        "lines",
    ),
    # "Try again later": the e-MCF cannot check the original right now.
    "10": ErrorEntry(
        AuthorityServerError,
        "authority.original_unverifiable",
        "La référence de la facture originale ne peut pas être validée, veuillez réessayer plus tard",
        "original.reference",
    ),
    "11": ErrorEntry(
        InvoiceRejected,
        "authority.rejected.original_not_found",
        "La référence de la facture originale n'est pas valide (la facture originale est introuvable)",
        "original.reference",
    ),
    "12": ErrorEntry(
        InvoiceRejected,
        "authority.rejected.credit_exceeds_original",
        "La référence de la facture originale n'est pas valide (le montant sur la facture d'avoir "
        "dépassé le montant de la facture originale)",
        "original.reference",
    ),
    # Confirm/cancel/details of a uid that is not pending: finalised, cancelled, expired or unknown.
    # A rejection of that request (not retryable as such); reconcile() treats it specially.
    "20": ErrorEntry(
        InvoiceRejected,
        "authority.rejected.not_pending",
        "La facture n'existe pas ou elle est déjà finalisée / annulée",
    ),
    "99": ErrorEntry(
        AuthorityServerError, "authority.processing_error", "Erreur lors du traitement de la demande"
    ),
}

NOT_PENDING = "20"
UNKNOWN_CODE = "authority.rejected.unknown_code"  # the neutral code of an undocumented errorCode


def error_from_code(
    error_code: str, error_desc: str | None, *, operation: str, raw: Any, http_status: int = 200
) -> AuthorityError:
    """The AuthorityError for a business error the e-MCF answered."""
    entry = ERRORS.get(error_code.strip())
    message = error_desc or (entry.message if entry else "")
    if entry is None:
        # An undocumented code: do not retry blindly, a human has to look at it.
        return InvoiceRejected(
            f"e-MECeF {operation}: undocumented error {error_code}: {message}",
            authority=AUTHORITY,
            code=UNKNOWN_CODE,
            http_status=http_status,
            authority_code=error_code,
            authority_message=message,
            raw=raw,
        )
    problems = [Problem(entry.field, f"emecef.{error_code}", message)] if entry.field else []
    return entry.kind(
        f"e-MECeF {operation}: [{error_code}] {message}",
        authority=AUTHORITY,
        code=entry.code,
        http_status=http_status,
        authority_code=error_code,
        authority_message=message,
        raw=raw,
        field=entry.field,
        problems=problems,
    )


def bearer_challenge(header: str | None) -> tuple[str | None, str | None]:
    """(error, error_description) of a `WWW-Authenticate: Bearer error="…", error_description="…"`
    header (RFC 6750 §3), when the server sends them; (None, None) otherwise."""
    found = dict(re.findall(r'(\w+)="([^"]*)"', header or ""))
    return found.get("error") or None, found.get("error_description") or None


def error_from_http(status: int, *, operation: str, raw: Any, challenge: str | None = None) -> AuthorityError:
    """The AuthorityError for a non-2xx HTTP answer (no errorCode in it). `challenge` is the
    answer's WWW-Authenticate header: a 401 carries no body (DOC p.3), its only text is there."""
    text = raw.get("title") or raw.get("message") or raw.get("_text") if isinstance(raw, dict) else None
    detail = f" ({text})" if text else ""
    common: dict[str, Any] = {"authority": AUTHORITY, "http_status": status, "raw": raw}
    if status in (401, 403):
        error, description = bearer_challenge(challenge)
        said = f" ({'; '.join(x for x in (error, description) if x)})" if error or description else ""
        return AuthorityAuthError(
            f"e-MECeF {operation}: HTTP {status}{said}: the token was refused (missing, invalid or "
            "expired); ask the DGI for a new one",
            code="authority.auth.token_refused",
            authority_code=error,
            authority_message=description or text,
            **common,
        )
    if status == 400:
        # ASP.NET model binding refused the body (empty POST, wrong JSON types).
        return InvoiceRejected(
            f"e-MECeF {operation}: HTTP 400, the request body was refused{detail}",
            code="authority.rejected.bad_request",
            **common,
        )
    if status in (404, 405):
        return AuthorityServerError(
            f"e-MECeF {operation}: HTTP {status}: no such endpoint; check the base URL "
            "(…/sygmef-emcf for the test platform, …/emcf for production)",
            code="authority.endpoint_not_found",
            **common,
        )
    if status == 429:
        return RateLimited(f"e-MECeF {operation}: HTTP 429{detail}", code="authority.rate_limited", **common)
    return AuthorityServerError(
        f"e-MECeF {operation}: HTTP {status}{detail}", code=f"authority.http_{status}", **common
    )
