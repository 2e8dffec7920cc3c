"""The error tree. Every failure is classified once, at the boundary, into one of these kinds.

The retry policy reads only the kind (`retryable`, `resolution`), never the message.

    GatewayError                 .code (stable, dotted), .message
    ├── ConfigurationError       unknown authority, missing or invalid settings   never retry
    ├── InvoiceError             our own validation, before any network           fix the input
    └── AuthorityError           .authority .http_status .authority_code .raw
        ├── AuthorityUnreachable nothing was sent                                 retry
        ├── OutcomeUnknown       timeout/reset after sending: may have certified  reconcile first
        ├── AuthorityAuthError   401/403                                          stop, tell the tenant
        ├── InvoiceRejected      the authority refused the content                fix and resubmit
        ├── AlreadyCertified     duplicate (e.g. SFEC 409)                        adopt after checking
        ├── RateLimited          429, quota, back-pressure                        retry later
        └── AuthorityServerError 5xx, "service down" codes                        retry with backoff
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar


class Resolution(StrEnum):
    """What the caller should do next; the only thing a retry policy may look at."""

    FIX_CONFIGURATION = "fix_configuration"
    FIX_INPUT = "fix_input"
    RETRY = "retry"
    RETRY_LATER = "retry_later"
    RECONCILE = "reconcile"
    ADOPT_AFTER_CHECK = "adopt_after_check"


@dataclass(frozen=True)
class Problem:
    """One precise complaint about one field: where, which rule, and in words."""

    field: str
    rule: str
    message: str
    expected: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"field": self.field, "rule": self.rule, "message": self.message}
        if self.expected is not None:
            out["expected"] = self.expected
        return out

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class GatewayError(Exception):
    """Root of every error fiscalgate raises on purpose."""

    default_code: ClassVar[str] = "gateway.error"
    resolution: ClassVar[Resolution] = Resolution.FIX_INPUT
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "code": self.code,
            "message": self.message,
            "resolution": self.resolution.value,
            "retryable": self.retryable,
        }


class ConfigurationError(GatewayError):
    default_code = "configuration.invalid"
    resolution = Resolution.FIX_CONFIGURATION

    def __init__(self, message: str, *, code: str | None = None, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message, code=code)
        self.problems = list(problems)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["problems"] = [p.to_dict() for p in self.problems]
        return out


class InvoiceError(GatewayError):
    """Our own validation refused the invoice; nothing was sent. Carries every problem found."""

    default_code = "invoice.invalid"
    resolution = Resolution.FIX_INPUT

    def __init__(
        self,
        problems: Iterable[Problem],
        *,
        message: str | None = None,
        code: str | None = None,
    ) -> None:
        self.problems = list(problems)
        if not self.problems:
            raise ValueError("an InvoiceError needs at least one problem")
        if message is None:
            head = "; ".join(str(p) for p in self.problems[:3])
            more = len(self.problems) - 3
            message = f"invalid invoice: {head}" + (f" (+{more} more)" if more > 0 else "")
        if code is None:
            code = f"invoice.invalid.{self.problems[0].rule}"
        super().__init__(message, code=code)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["problems"] = [p.to_dict() for p in self.problems]
        return out


class AuthorityError(GatewayError):
    """The authority (or the way to it) failed. `raw` must already have secrets masked."""

    default_code = "authority.error"

    def __init__(
        self,
        message: str,
        *,
        authority: str,
        code: str | None = None,
        http_status: int | None = None,
        authority_code: str | None = None,
        authority_message: str | None = None,
        raw: Any = None,
        field: str | None = None,
        problems: Sequence[Problem] = (),
    ) -> None:
        super().__init__(message, code=code)
        self.authority = authority
        self.http_status = http_status
        self.authority_code = authority_code
        self.authority_message = authority_message
        self.raw = raw
        self.field = field
        self.problems = list(problems)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(
            authority=self.authority,
            http_status=self.http_status,
            authority_code=self.authority_code,
            authority_message=self.authority_message,
            field=self.field,
            problems=[p.to_dict() for p in self.problems],
            raw=self.raw,
        )
        return out


class AuthorityUnreachable(AuthorityError):
    default_code = "authority.unreachable"
    resolution = Resolution.RETRY
    retryable = True


class OutcomeUnknown(AuthorityError):
    """The request may have been processed. Never resend blindly: reconcile first."""

    default_code = "authority.outcome_unknown"
    resolution = Resolution.RECONCILE

    def __init__(self, message: str, *, checkpoint: Mapping[str, Any] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        # What the authority driver knows so far (e.g. the e-MECeF uid), for reconciliation.
        self.checkpoint = dict(checkpoint or {})


class AuthorityAuthError(AuthorityError):
    default_code = "authority.auth"
    resolution = Resolution.FIX_CONFIGURATION


class InvoiceRejected(AuthorityError):
    default_code = "authority.rejected"
    resolution = Resolution.FIX_INPUT


class AlreadyCertified(AuthorityError):
    default_code = "authority.already_certified"
    resolution = Resolution.ADOPT_AFTER_CHECK


class RateLimited(AuthorityError):
    default_code = "authority.rate_limited"
    resolution = Resolution.RETRY_LATER
    retryable = True


class AuthorityServerError(AuthorityError):
    default_code = "authority.server_error"
    resolution = Resolution.RETRY
    retryable = True


def raise_if_problems(problems: Sequence[Problem], *, code: str | None = None) -> None:
    """Raise one InvoiceError carrying every problem, or do nothing."""
    if problems:
        raise InvoiceError(problems, code=code)
