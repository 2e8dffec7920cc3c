"""The async e-MCF client: one method per endpoint (spec §4), each usable on its own so the gateway
can record the uid between submit and confirm and resume after a crash.

Every request goes through `fiscalgate.authorities.http.send` (transport failures classified
there); every answer is classified here with `errors.py` (HTTP status, then `errorCode`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from fiscalgate.authorities.base import Connection
from fiscalgate.authorities.bj_emecef.errors import UNKNOWN_CODE, error_from_code, error_from_http
from fiscalgate.authorities.bj_emecef.regime import AUTHORITY, CODE_RE, parse_local_datetime, undash_code
from fiscalgate.authorities.bj_emecef.schemas import (
    InfoResponseDto,
    InvoiceDetailsDto,
    InvoiceRequestDataDto,
    InvoiceResponseDataDto,
    InvoiceTypeDto,
    PaymentTypeDto,
    SecurityElementsDto,
    StatusResponseDto,
    TaxGroupsDto,
)
from fiscalgate.authorities.http import AuthoritySession, json_body, send
from fiscalgate.core.errors import AuthorityError, AuthorityServerError, InvoiceRejected, OutcomeUnknown
from fiscalgate.core.masking import mask_mapping

M = TypeVar("M", bound=BaseModel)

INVOICE_PATH = "/api/invoice"
INFO_PATH = "/api/info"


class EmecefClient(AuthoritySession):
    """Use as `async with EmecefClient(connection, token) as client: ...`.

    `last_raw` holds the latest answer (secrets masked) for audit; errors carry it in `.raw`.
    """

    def __init__(self, connection: Connection, token: str) -> None:
        super().__init__(connection, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        self._token = token
        self.last_raw: Any = None

    # --- the invoicing API ------------------------------------------------------------------------
    async def status(self) -> StatusResponseDto:
        """GET /api/invoice: token validity and the pending requests (uid, date received)."""
        return await self._call("GET", INVOICE_PATH, StatusResponseDto, operation="status")

    async def submit(self, request: InvoiceRequestDataDto | Mapping[str, Any]) -> InvoiceResponseDataDto:
        """POST /api/invoice: the invoice becomes pending; returns the e-MCF's totals and uid.
        A raw mapping is sent as is (to reproduce what another SFE sends)."""
        body = request.wire() if isinstance(request, InvoiceRequestDataDto) else dict(request)
        response = await self._call(
            "POST",
            INVOICE_PATH,
            InvoiceResponseDataDto,
            operation="submit",
            json=body,
            checkpoint={"stage": "submit"},
        )
        if not response.uid:
            raise AuthorityServerError(
                "e-MECeF submit: the answer carries neither a uid nor an error code",
                authority=AUTHORITY,
                code="authority.malformed_answer",
                http_status=200,
                raw=self.last_raw,
            )
        return response

    async def confirm(self, uid: str) -> SecurityElementsDto:
        """PUT /api/invoice/{uid}/confirm: the invoice becomes normalised; security elements back.

        A confirm has no idempotency: once it may have been processed, the only safe next step is
        reconciliation (details while pending, else a human). So every answer that does not say for
        sure what happened (5xx, error 99, an unreadable or incomplete answer) is `OutcomeUnknown`
        carrying the uid, never a retryable error that would make the caller submit the invoice again
        and certify it twice. Definite answers keep their kind: 401 (not processed), 20 (not
        pending), 12 (refused)."""
        checkpoint = {"uid": uid, "stage": "confirm"}
        try:
            security = await self._finalize(uid, "confirm")
        except AuthorityServerError as exc:
            raise _unknown_after(exc, checkpoint) from exc
        except InvoiceRejected as exc:
            if exc.code != UNKNOWN_CODE:
                raise
            raise _unknown_after(exc, checkpoint) from exc  # an undocumented code says nothing for sure
        problem = _unprintable(security)
        if problem is not None:
            # Most likely confirmed, but we cannot print it: keep the answer and the uid for reconcile.
            raise OutcomeUnknown(
                f"e-MECeF confirm: the answer for {uid} {problem}; it may be certified, reconcile",
                authority=AUTHORITY,
                code="authority.malformed_answer",
                http_status=200,
                raw={"uid": uid, "answer": self.last_raw},
                checkpoint=checkpoint,
            )
        return security

    async def cancel(self, uid: str) -> SecurityElementsDto:
        """PUT /api/invoice/{uid}/cancel: the request is dropped (empty code and QR)."""
        return await self._finalize(uid, "cancel")

    async def details(self, uid: str) -> InvoiceDetailsDto:
        """GET /api/invoice/{uid}: a pending request's data (error 20 once it is not pending)."""
        return await self._call("GET", f"{INVOICE_PATH}/{uid}", InvoiceDetailsDto, operation="details")

    # --- the information API ----------------------------------------------------------------------
    async def info_status(self) -> InfoResponseDto:
        return await self._call("GET", f"{INFO_PATH}/status", InfoResponseDto, operation="info status")

    async def tax_groups(self) -> TaxGroupsDto:
        return await self._call("GET", f"{INFO_PATH}/taxGroups", TaxGroupsDto, operation="tax groups")

    async def invoice_types(self) -> list[InvoiceTypeDto]:
        return await self._call_list("GET", f"{INFO_PATH}/invoiceTypes", InvoiceTypeDto, "invoice types")

    async def payment_types(self) -> list[PaymentTypeDto]:
        return await self._call_list("GET", f"{INFO_PATH}/paymentTypes", PaymentTypeDto, "payment types")

    # --- plumbing ---------------------------------------------------------------------------------
    async def _finalize(self, uid: str, action: str) -> SecurityElementsDto:
        # A timeout here leaves the invoice pending or finalised: the uid is what reconcile needs.
        return await self._call(
            "PUT",
            f"{INVOICE_PATH}/{uid}/{action}",
            SecurityElementsDto,
            operation=action,
            checkpoint={"uid": uid, "stage": action},
        )

    async def _raw(
        self,
        method: str,
        path: str,
        operation: str,
        json: Any = None,
        checkpoint: dict[str, Any] | None = None,
    ) -> Any:
        response = await send(self.http, method, path, authority=AUTHORITY, json=json, checkpoint=checkpoint)
        body = mask_mapping(json_body(response), [self._token])
        self.last_raw = body
        if response.status_code >= 300:
            raise error_from_http(
                response.status_code,
                operation=operation,
                raw=body,
                challenge=response.headers.get("www-authenticate"),
            )
        return body

    async def _call(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        operation: str,
        json: Any = None,
        checkpoint: dict[str, Any] | None = None,
    ) -> M:
        body = await self._raw(method, path, operation, json, checkpoint)
        if isinstance(body, dict) and body.get("errorCode") not in (None, ""):
            raise error_from_code(
                str(body["errorCode"]), body.get("errorDesc"), operation=operation, raw=body
            )
        return self._parse(model, body, operation)

    async def _call_list(self, method: str, path: str, model: type[M], operation: str) -> list[M]:
        body = await self._raw(method, path, operation)
        if not isinstance(body, list):
            raise self._malformed(operation, body, "expected a JSON array")
        return [self._parse(model, item, operation) for item in body]

    def _parse(self, model: type[M], body: Any, operation: str) -> M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise self._malformed(operation, body, str(exc.errors()[:3])) from None

    @staticmethod
    def _malformed(operation: str, body: Any, why: str) -> AuthorityServerError:
        return AuthorityServerError(
            f"e-MECeF {operation}: unexpected answer ({why})",
            authority=AUTHORITY,
            code="authority.malformed_answer",
            http_status=200,
            raw=body,
        )


def _unprintable(security: SecurityElementsDto) -> str | None:
    """Why a confirm answer cannot become a printed normalised invoice, or None when it can."""
    if not security.code_mecef_dgi or not security.date_time or not security.qr_code:
        return "lacks the code MECeF/DGI, QR or time"
    if not CODE_RE.match(undash_code(security.code_mecef_dgi)):
        return f"carries a code MECeF/DGI {security.code_mecef_dgi!r} that is not 24 base32 characters"
    try:
        parse_local_datetime(security.date_time)
    except ValueError:
        return f"carries a time {security.date_time!r} that is not dd/MM/yyyy HH:mm:ss"
    return None


def _unknown_after(exc: AuthorityError, checkpoint: dict[str, Any]) -> OutcomeUnknown:
    return OutcomeUnknown(
        f"{exc.message}; the confirm may have been processed: reconcile, do not submit again",
        authority=AUTHORITY,
        code="authority.outcome_unknown.confirm",
        http_status=exc.http_status,
        authority_code=exc.authority_code,
        authority_message=exc.authority_message,
        raw=exc.raw,
        field=exc.field,
        problems=exc.problems,
        checkpoint=checkpoint,
    )
