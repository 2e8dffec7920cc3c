"""What an attempt ended with, and the one place a failure becomes an invoice status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import (
    AlreadyCertified,
    AuthorityError,
    ConfigurationError,
    GatewayError,
    InvoiceError,
    InvoiceRejected,
    OutcomeUnknown,
    Problem,
)
from fiscalgate.core.masking import mask_mapping, mask_text
from fiscalgate.gateway.errors import DriverFailedAfterSending


class DriverFailure(GatewayError):
    """The driver raised something outside the error tree (a bug): classified here, once."""

    default_code = "driver.failed"


@dataclass
class Outcome:
    """The invoice status an attempt leads to, and what goes with it."""

    status: str
    detail: str
    certification: Certification | None = None
    error: GatewayError | None = None
    raw: Any = None
    checkpoint: dict[str, Any] | None = None


def masked(exc: GatewayError, secrets: list[str]) -> GatewayError:
    """A copy of `exc` with every secret masked in its texts (message, authority message, problems,
    raw). A copy, because the driver may keep and raise its exception object again elsewhere."""
    if not secrets:
        return exc
    copy = type(exc).__new__(type(exc))
    copy.__dict__.update(exc.__dict__)
    copy.message = mask_text(exc.message, secrets)
    copy.args = (copy.message,)
    if isinstance(getattr(exc, "authority_message", None), str):
        copy.authority_message = mask_text(exc.authority_message, secrets)  # type: ignore[attr-defined]
    problems = getattr(exc, "problems", None)
    if problems:
        copy.problems = [  # type: ignore[attr-defined]
            Problem(
                p.field,
                p.rule,
                mask_text(p.message, secrets),
                None if p.expected is None else mask_text(p.expected, secrets),
            )
            for p in problems
        ]
    if getattr(exc, "raw", None) is not None:
        copy.raw = mask_mapping(exc.raw, secrets)  # type: ignore[attr-defined]
    return copy


def classify(exc: BaseException, sent: bool, secrets: list[str], authority: str | None) -> Outcome:
    """The one place an authority call's failure becomes an invoice status. Secrets the driver
    quoted anywhere in its error (h11 quotes a bad header value, say) are masked here, before the
    error is stored, audited or answered."""
    if isinstance(exc, GatewayError):
        exc = masked(exc, secrets)
    raw = mask_mapping(getattr(exc, "raw", None), secrets)
    if isinstance(exc, InvoiceError):
        return Outcome("rejected", "refused by our validation before sending: fix the invoice", error=exc)
    if isinstance(exc, AlreadyCertified):
        return Outcome(
            "unknown",
            "the authority says it is already certified: reconcile to adopt its certification",
            error=exc,
            raw=raw,
        )
    if isinstance(exc, OutcomeUnknown):
        return Outcome(
            "unknown",
            "no answer after sending: it may be certified; reconcile before anything else",
            error=exc,
            raw=raw,
            checkpoint=exc.checkpoint,
        )
    if isinstance(exc, AuthorityError):
        if isinstance(exc, InvoiceRejected):
            return Outcome("rejected", "refused by the authority: fix the invoice", error=exc, raw=raw)
        if exc.retryable:
            return Outcome("failed", "not certified; retryable: certify again later", error=exc, raw=raw)
        return Outcome("failed", "not certified: fix the settings, then certify again", error=exc, raw=raw)
    if isinstance(exc, ConfigurationError):
        return Outcome("failed", "not certified: fix the settings, then certify again", error=exc)
    text = mask_text(f"the authority driver failed: {type(exc).__name__}: {exc}", secrets)
    if sent and authority is not None:
        # A request left before the bug: the authority may have certified it. The error says
        # "reconcile" (not "fix the input"), like a timeout after sending.
        return Outcome(
            "unknown",
            "the driver failed after sending a request: reconcile first",
            error=DriverFailedAfterSending(text, authority=authority),
        )
    return Outcome("failed", "the driver failed before sending anything", error=DriverFailure(text))
