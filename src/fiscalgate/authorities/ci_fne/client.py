"""Async FNE client. The transport comes in through `Connection` (in-process simulator, real
network, recording wrapper); every request goes through `authorities.http.send`, which classifies
transport failures. There is no retry here: FNE has no idempotency key, a resend burns a number.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from fiscalgate.authorities.base import Connection
from fiscalgate.authorities.ci_fne import errors, regime
from fiscalgate.authorities.ci_fne.schemas import RefundRequest, RefundResponse, SignRequest, SignResponse
from fiscalgate.authorities.http import json_body, make_client, send
from fiscalgate.core.errors import OutcomeUnknown
from fiscalgate.core.masking import mask_mapping

SIGN_PATH = "/external/invoices/sign"
REFUND_PATH = "/external/invoices/{id}/refund"


class FneClient:
    def __init__(self, connection: Connection, api_key: str) -> None:
        self.connection = connection
        self._api_key = api_key

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json"}

    async def _post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        operation: str,
        success: tuple[int, ...],
        model: type[BaseModel],
        checkpoint: dict[str, Any] | None,
    ) -> tuple[Any, dict[str, Any]]:
        async with make_client(self.connection, self._headers()) as http:
            response = await send(
                http, "POST", path, authority=regime.AUTHORITY, json=body, checkpoint=checkpoint
            )
        raw = mask_mapping(json_body(response), [self._api_key])
        raw = raw if isinstance(raw, dict) else {"_body": raw}
        if response.status_code not in success:
            raise errors.classify(response.status_code, raw, operation=operation, checkpoint=checkpoint)
        try:
            return model.model_validate(raw), raw
        except ValidationError as exc:
            # A success status with a body we cannot read: the document was probably certified,
            # but we lack its ids. Treat as unknown rather than guess.
            raise OutcomeUnknown(
                f"FNE {operation}: HTTP {response.status_code} with an unreadable body ({exc.error_count()} "
                "problem(s)); check the portal before resending",
                authority=regime.AUTHORITY,
                code="authority.outcome_unknown.fne.unreadable",
                http_status=response.status_code,
                raw=raw,
                checkpoint=checkpoint,
            ) from exc

    async def sign(
        self, request: SignRequest, *, checkpoint: dict[str, Any] | None = None
    ) -> tuple[SignResponse, dict[str, Any]]:
        """API #1/#3: certify a sale invoice or a purchase slip (HTTP 200)."""
        return await self.sign_payload(request.wire(), checkpoint=checkpoint)

    async def sign_payload(
        self, payload: dict[str, Any], *, checkpoint: dict[str, Any] | None = None
    ) -> tuple[SignResponse, dict[str, Any]]:
        """Sign an already-built JSON body (what `sign` sends; also for replaying stored payloads)."""
        response, raw = await self._post(
            SIGN_PATH,
            payload,
            operation="sign",
            success=(200, 201),
            model=SignResponse,
            checkpoint=checkpoint,
        )
        assert isinstance(response, SignResponse)
        return response, raw

    async def refund(
        self, invoice_id: str, request: RefundRequest, *, checkpoint: dict[str, Any] | None = None
    ) -> tuple[RefundResponse, dict[str, Any]]:
        """API #2: a credit note on a certified invoice (HTTP 201, short body)."""
        response, raw = await self._post(
            REFUND_PATH.format(id=quote(invoice_id, safe="")),
            request.wire(),
            operation="refund",
            success=(200, 201),
            model=RefundResponse,
            checkpoint=checkpoint,
        )
        assert isinstance(response, RefundResponse)
        return response, raw
