"""Gateway-level errors and the one stable JSON error body every route answers with.

Body: {"kind", "code", "message", "status", "problems": [{field, rule, message}], "resolution",
"retryable", "authority", "authority_code", "authority_message", "authority_http_status",
"invoice_id", "invoice_status"} (absent facts are null).
"""

from __future__ import annotations

from typing import Any, ClassVar

from fiscalgate.core.errors import (
    AlreadyCertified,
    AuthorityAuthError,
    AuthorityError,
    AuthorityServerError,
    AuthorityUnreachable,
    ConfigurationError,
    GatewayError,
    InvoiceError,
    InvoiceRejected,
    OutcomeUnknown,
    Problem,
    RateLimited,
)


class ApiError(GatewayError):
    """An error of the gateway's own API (not the authority's)."""

    http_status: ClassVar[int] = 400

    def __init__(self, message: str, *, code: str | None = None, problems: list[Problem] | None = None):
        super().__init__(message, code=code)
        self.problems = problems or []


class NotFound(ApiError):
    default_code = "not_found"
    http_status = 404


class Unauthorized(ApiError):
    default_code = "auth.unauthorized"
    http_status = 401


class Forbidden(ApiError):
    default_code = "auth.forbidden"
    http_status = 403


class Conflict(ApiError):
    """The request does not fit the resource's current state (e.g. certifying a draft)."""

    default_code = "conflict"
    http_status = 409


class InvalidRequest(ApiError):
    default_code = "request.invalid"
    http_status = 422


class DriverFailedAfterSending(OutcomeUnknown):
    """The authority driver raised a bug (not an error kind) after a request had left: the authority
    may have certified, so the caller must reconcile, exactly as after a timeout."""

    default_code = "driver.failed_after_sending"


# Most specific first; the HTTP status the gateway answers with for each kind.
_STATUS: list[tuple[type[Exception], int]] = [
    (ApiError, 400),  # replaced by the class's own http_status
    (DriverFailedAfterSending, 502),  # the exchange went wrong on our side of the gateway
    (InvoiceError, 422),
    (ConfigurationError, 422),
    (InvoiceRejected, 422),
    (AlreadyCertified, 409),
    (OutcomeUnknown, 504),
    (AuthorityUnreachable, 503),
    (RateLimited, 429),
    (AuthorityAuthError, 502),
    (AuthorityServerError, 502),
    (AuthorityError, 502),
]


def http_status_for(exc: GatewayError) -> int:
    if isinstance(exc, ApiError):
        return exc.http_status
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def http_status_for_kind(kind: str | None) -> int:
    """The status `http_status_for` gives an error of that class name (a stored error's `kind`)."""
    pending: list[type[GatewayError]] = [GatewayError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == kind:
            if issubclass(cls, ApiError):
                return cls.http_status
            return next((status for base, status in _STATUS if issubclass(cls, base)), 500)
        pending.extend(cls.__subclasses__())
    return 500


def error_body(
    exc: GatewayError, *, invoice_id: str | None = None, invoice_status: str | None = None
) -> dict[str, Any]:
    problems: list[Problem] = list(getattr(exc, "problems", []) or [])
    body: dict[str, Any] = {
        "kind": type(exc).__name__,
        "code": exc.code,
        "message": exc.message,
        "status": http_status_for(exc),
        "problems": [p.to_dict() for p in problems],
        "resolution": exc.resolution.value,
        "retryable": exc.retryable,
        "authority": None,
        "authority_code": None,
        "authority_message": None,
        "authority_http_status": None,
        "invoice_id": invoice_id,
        "invoice_status": invoice_status,
    }
    if isinstance(exc, AuthorityError):
        body.update(
            authority=exc.authority,
            authority_code=exc.authority_code,
            authority_message=exc.authority_message,
            authority_http_status=exc.http_status,
        )
    return body


class InvoiceOperationError(Exception):
    """Wraps a failure of an invoice operation with the invoice's id and resulting status."""

    def __init__(self, error: GatewayError, invoice_id: str, invoice_status: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.invoice_id = invoice_id
        self.invoice_status = invoice_status
