"""The one table of SFEC failures: HTTP status -> error kind, neutral code, official message.

SFEC signals errors by HTTP status only (the online-report page, "Codes d'erreur"; spec §4); the
messages below are that page's, verbatim. The body's shape is undocumented, so details are read
defensively from `error.{code,message,field,details}`, `errors`, `message`, `detail`, `details`,
`validation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fiscalgate.core.errors import (
    AlreadyCertified,
    AuthorityAuthError,
    AuthorityError,
    AuthorityServerError,
    ConfigurationError,
    InvoiceRejected,
    Problem,
    RateLimited,
)

AUTHORITY = "cg-sfec"


@dataclass(frozen=True)
class ErrorEntry:
    kind: type[AuthorityError]
    code: str  # neutral, dotted
    message: str  # official, French, verbatim (the online-report page)


ERRORS: dict[int, ErrorEntry] = {
    400: ErrorEntry(
        InvoiceRejected,
        "authority.rejected.invalid_data",
        "Données invalides (format incorrect, champs manquants, incohérences dans les totaux)",
    ),
    401: ErrorEntry(
        AuthorityAuthError, "authority.auth.api_key", "Clé d’authentification invalide ou manquante"
    ),
    # 403 is not in the seed; an inactive key is how implementers read it (spec §4).
    403: ErrorEntry(
        AuthorityAuthError, "authority.auth.forbidden", "Clé d’authentification invalide ou manquante"
    ),
    # 404 is not in the seed; the look-up endpoints answer it for an unknown invoice (spec §2).
    404: ErrorEntry(InvoiceRejected, "authority.rejected.not_found", "Facture introuvable"),
    # 408 is not in the seed: the server gave up waiting for the request, so it was not processed;
    # retryable like a 5xx (and a resend is safe anyway, thanks to the 409 on invoice_id).
    408: ErrorEntry(
        AuthorityServerError, "authority.server_error.timeout", "Délai d'attente de la requête dépassé"
    ),
    409: ErrorEntry(AlreadyCertified, "authority.already_certified", "Facture déjà certifiée ou déclarée"),
    422: ErrorEntry(
        InvoiceRejected, "authority.rejected.business_rule", "Erreur de validation des données métier"
    ),
    # 429 is not in the seed; T-CONNECTOR throttles itself at 100/min (spec §8).
    429: ErrorEntry(RateLimited, "authority.rate_limited", "Trop de requêtes"),
    500: ErrorEntry(AuthorityServerError, "authority.server_error", "Erreur interne du serveur"),
}


def entry_for(status: int) -> ErrorEntry:
    if status in ERRORS:
        return ERRORS[status]
    if status >= 500:
        return ErrorEntry(AuthorityServerError, f"authority.server_error.{status}", ERRORS[500].message)
    return ErrorEntry(InvoiceRejected, f"authority.rejected.http_{status}", ERRORS[400].message)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _path(value: Any) -> str | None:
    """A field path, also from a list location such as FastAPI's ["body", "items", 0, "tax_rate"]."""
    if isinstance(value, list | tuple):
        out = ""
        for part in value:
            if part == "body" and not out:
                continue
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        return out or None
    return str(value) if value else None


def _details(body: Mapping[str, Any]) -> list[Any]:
    error = body.get("error")
    candidates: list[Any] = []
    if isinstance(error, Mapping):
        candidates += [error.get("details"), error.get("errors"), error.get("fields")]
    candidates += [body.get(k) for k in ("errors", "details", "validation", "detail")]
    for candidate in candidates:
        if isinstance(candidate, list):
            return candidate
        if isinstance(candidate, Mapping):  # {"field": ["message", ...]} (Laravel-style)
            return [{"field": k, "message": v} for k, v in candidate.items()]
    return []


def problems_from_body(body: Any) -> list[Problem]:
    """Per-field details of a 400/422 body, whatever its spelling."""
    if not isinstance(body, Mapping):
        return []
    problems = []
    for item in _details(body):
        if isinstance(item, Mapping):
            field = _path(item.get("field") or item.get("path") or item.get("loc")) or "(invoice)"
            message = item.get("message") or item.get("msg") or item.get("error") or ""
            if isinstance(message, list):
                message = "; ".join(str(m) for m in message)
            expected = item.get("expected")
            problems.append(
                Problem(
                    field=field,
                    rule=str(item.get("code") or item.get("rule") or "authority"),
                    message=str(message),
                    expected=None if expected is None else str(expected),
                )
            )
        elif isinstance(item, str):
            problems.append(Problem(field="(invoice)", rule="authority", message=item))
    error = body.get("error")
    error_field = _text(error.get("field")) if isinstance(error, Mapping) else None
    if not problems and error_field:
        problems.append(Problem(field=error_field, rule="authority", message=str(error_message(body) or "")))
    return problems


def error_code(body: Any) -> str | None:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return _text(error.get("code"))
        return _text(body.get("code"))
    return None


def error_message(body: Any) -> str | None:
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if isinstance(error, Mapping) and _text(error.get("message")):
        return str(error["message"])
    for key in ("message", "error", "detail"):
        if _text(body.get(key)):
            return str(body[key])
    return None


def endpoint_not_found(status: int, body: Any, *, what: str, url: str) -> ConfigurationError:
    """A 404/405 to a POST: the seed documents no such answer for certify or report (its codes are
    400, 401, 409, 422, 500), so the path does not exist on this host and the settings are wrong.
    Telling the user to fix the invoice ("Facture introuvable") would send them the wrong way."""
    said = error_message(body)
    return ConfigurationError(
        f"{AUTHORITY}: {what} answered {status}"
        + (f" ({said})" if said else "")
        + f": no such endpoint at {url}; check base_url, path_prefix and the *_path settings",
        code=f"settings.invalid.{AUTHORITY}",
        problems=[
            Problem(
                "path_prefix",
                "endpoint_not_found",
                f"{url} does not exist on the platform (HTTP {status}); the SFEC path families differ "
                "(/api/invoices/certify, /api/v1/invoices...), see the cg-sfec README",
            )
        ],
    )


def classify(status: int, body: Any, *, what: str, raw: Any) -> AuthorityError:
    """The error kind for a non-2xx answer, with SFEC's own code and message and the field details."""
    entry = entry_for(status)
    authority_message = error_message(body) or entry.message
    problems = problems_from_body(body)
    detail = "; ".join(f"{p.field}: {p.message}" for p in problems[:5])
    message = f"{AUTHORITY}: {what} answered {status}: {authority_message}" + (
        f" ({detail})" if detail else ""
    )
    return entry.kind(
        message,
        authority=AUTHORITY,
        code=entry.code,
        http_status=status,
        authority_code=error_code(body) or str(status),
        authority_message=authority_message,
        raw=raw,
        field=problems[0].field if problems else None,
        problems=problems,
    )
