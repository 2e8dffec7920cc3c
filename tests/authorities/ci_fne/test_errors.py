"""The FNE error table: each platform answer lands in the right kind with its code and message."""

from __future__ import annotations

import pytest

from fiscalgate.authorities.ci_fne import errors
from fiscalgate.core.errors import (
    AuthorityAuthError,
    AuthorityError,
    ConfigurationError,
    InvoiceRejected,
    OutcomeUnknown,
    RateLimited,
)


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (
            400,
            {
                "message": "Point of sale is not valid",
                "error": "bad_request",
                "statusCode": 400,
                "errors": {},
            },
            InvoiceRejected,
            "authority.rejected.fne.bad_request",
        ),
        (
            401,
            {"message": "Invalid API Key", "error": "unauthorized", "statusCode": 401, "errors": {}},
            AuthorityAuthError,
            "authority.auth.fne.invalid_key",
        ),
        (
            401,
            {"message": "Unauthorized", "error": "unauthorized_exception", "statusCode": 401},
            AuthorityAuthError,
            "authority.auth.fne.invalid_key",
        ),
        (403, {}, AuthorityAuthError, "authority.auth.fne.forbidden"),
        (
            404,
            {"message": "Invoice not found", "error": "not_found"},
            InvoiceRejected,
            "authority.rejected.fne.not_found",
        ),
        (409, {"message": "Conflict"}, InvoiceRejected, "authority.rejected.fne"),
        # spec §9: rely on the status, not on the `error` label (a proxy's bare 401, another spelling)
        (401, {}, AuthorityAuthError, "authority.auth.fne.invalid_key"),
        (
            401,
            {"message": "Unauthorized", "error": "Unauthorized", "statusCode": 401},
            AuthorityAuthError,
            "authority.auth.fne.invalid_key",
        ),
        (429, {}, RateLimited, "authority.rate_limited.fne"),
        (
            500,
            {
                "message": "Error signing invoice",
                "error": "invoice_signing_error",
                "statusCode": 500,
                "errors": {},
                "extraParams": {},
            },
            OutcomeUnknown,
            "authority.outcome_unknown.fne.signing_error",
        ),
        (
            500,
            {"message": "Internal Server Error", "error": "internal_server_error"},
            OutcomeUnknown,
            "authority.outcome_unknown.fne.server_error",
        ),
        (503, {"_text": "<html>"}, OutcomeUnknown, "authority.outcome_unknown.fne.server_error"),
    ],
    ids=[
        "400",
        "401",
        "401-doc-spelling",
        "403",
        "404-refund",
        "409",
        "401-bare",
        "401-other-label",
        "429",
        "500-stickers",
        "500",
        "503-html",
    ],
)
def test_classification(status: int, body: dict[str, object], kind: type[AuthorityError], code: str) -> None:
    # A 404 names a missing original on a refund; on sign it is a wrong URL (test_missing_sign_endpoint).
    operation = "refund" if status == 404 else "sign"
    error = errors.classify(status, body, operation=operation, checkpoint={"invoice_number": "F-1"})
    assert isinstance(error, AuthorityError)
    assert type(error) is kind
    assert error.code == code and error.http_status == status and error.authority == "ci-fne"
    assert error.raw == body
    if "message" in body:
        assert error.authority_message == body["message"]
        assert f"« {body['message']} »" in error.message
    if isinstance(error, OutcomeUnknown):
        assert error.checkpoint == {"invoice_number": "F-1"}


def test_field_details_become_problems() -> None:
    body = {
        "message": "Validation failed",
        "error": "bad_request",
        "statusCode": 400,
        "errors": {
            "clientNcc": {"required": "clientNcc is required"},
            "items.2.customTaxes.0.amount": {"required": "missing", "invalid": "not a rate"},
            "customTaxes.1": {"invalid": "bad"},
            "somethingNew": "flat text",
        },
    }
    error = errors.classify(400, body, operation="sign")
    assert [(p.field, p.rule, p.message) for p in error.problems] == [
        ("buyer.tax_id", "required", "clientNcc is required (clientNcc)"),
        ("lines[2].extra_taxes[0].rate", "required", "missing (items.2.customTaxes.0.amount)"),
        ("lines[2].extra_taxes[0].rate", "invalid", "not a rate (items.2.customTaxes.0.amount)"),
        ("authority_options.ci-fne.custom_taxes[1]", "invalid", "bad (customTaxes.1)"),
        ("somethingNew", "invalid", "flat text (somethingNew)"),
    ]
    assert error.field == "buyer.tax_id"


def test_message_arrays_are_joined() -> None:
    error = errors.classify(400, {"message": ["a", "b"], "error": "bad_request"}, operation="sign")
    assert error.authority_message == "a; b"


@pytest.mark.parametrize(
    ("wire", "neutral"),
    [
        ("items.0.taxes", "lines[0].tax_code"),
        ("items[3].amount", "lines[3].unit_price"),
        ("items.1", "lines[1]"),
        ("foreignCurrencyRate", "exchange_rate"),
        ("pointOfSale", "point_of_sale"),
        ("id", "original"),
    ],
)
def test_neutral_field_names(wire: str, neutral: str) -> None:
    assert errors.neutral_field(wire) == neutral


def test_every_table_row_has_french_advice() -> None:
    for row in errors.TABLE:
        prefix = "settings." if row.kind is ConfigurationError else "authority."
        assert row.advice_fr and row.neutral_code.startswith(prefix), row


@pytest.mark.parametrize("status", [404, 405])
def test_missing_sign_endpoint_is_a_configuration_error(status: int) -> None:
    # A base URL without /ws reaches no sign endpoint: nothing was processed, the settings are wrong.
    error = errors.classify(status, {"detail": "Not Found"}, operation="sign")
    assert type(error) is ConfigurationError
    assert error.code == "settings.invalid.ci-fne.base_url" and "/ws" in error.message
    refund = errors.classify(
        status, {"message": "Invoice not found", "error": "not_found"}, operation="refund"
    )
    assert type(refund) is InvoiceRejected  # on a refund the path names the original invoice


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("operation", ["sign", "refund"])
def test_a_redirect_is_a_configuration_error(status: int, operation: str) -> None:
    # e.g. an http:// URL the host redirects to https://: the POST was not processed, fix the URL
    error = errors.classify(status, {"_text": "<html>Moved</html>"}, operation=operation)
    assert type(error) is ConfigurationError and error.code == "settings.invalid.ci-fne.redirect"


def test_an_unexpected_3xx_is_not_assumed_unprocessed() -> None:
    # 303 "See Other" is how some servers answer a POST they DID process: stay on the safe side
    error = errors.classify(303, {}, operation="sign", checkpoint={"invoice_number": "F-1"})
    assert type(error) is OutcomeUnknown and error.checkpoint == {"invoice_number": "F-1"}
