"""Async FNE client. The transport comes in through `Connection` (in-process simulator, real
network, recording wrapper); every request goes through `authorities.http.send`, which classifies
transport failures. There is no retry here: FNE has no idempotency key, a resend burns a number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from fiscalgate.authorities.base import Connection
from fiscalgate.authorities.ci_fne import errors, regime
from fiscalgate.authorities.ci_fne.schemas import RefundRequest, RefundResponse, SignRequest, SignResponse
from fiscalgate.authorities.http import json_body, make_client, send
from fiscalgate.core.errors import AuthorityServerError, AuthorityUnreachable, OutcomeUnknown
from fiscalgate.core.masking import mask_if_needed

SIGN_PATH = "/external/invoices/sign"
REFUND_PATH = "/external/invoices/{id}/refund"


class WriteEvidence:
    """What the network transport says about writing one request (httpcore's `trace` extension):
    whether it began writing the request, and whether the whole body left this machine.

    FNE has no idempotency and no look-up, so every "maybe certified" goes to a person; the
    transport's evidence keeps that to the calls that may really have reached the platform. A
    request whose body was never completely written cannot have been processed (an HTTP server
    acts on a POST only once it has the whole body), whatever the exchange ended with. Over the
    in-process simulator (no trace) there is no evidence, and nothing changes."""

    def __init__(self) -> None:
        self.writing = False  # request headers started: the connection (and TLS) succeeded
        self.written = False  # the whole body was handed to the network

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        if event.endswith("send_request_headers.started"):
            self.writing = True
        elif event.endswith("send_request_body.complete"):
            self.written = True

    async def attach(self, request: httpx.Request) -> None:  # an httpx request hook
        request.extensions = {**request.extensions, "trace": self}

    @property
    def never_written(self) -> bool:
        """True only on proof: writing began (so the transport traces) and the body did not leave."""
        return self.writing and not self.written


def platform_answer(status: int, raw: Mapping[str, Any]) -> bool:
    """Does this error answer come from the FNE application itself? Its errors are JSON
    `{"message", "error", "statusCode", "errors"}` (spec §9, "Error shape"), `statusCode` echoing
    the HTTP status; a proxy in front of it answers an HTML page, plain text or nothing."""
    if raw.get("statusCode") == status:
        return True
    return isinstance(raw.get("error"), str) and "message" in raw


def not_sent(error: OutcomeUnknown, operation: str) -> AuthorityUnreachable:
    return AuthorityUnreachable(
        f"FNE {operation}: the connection failed before the request was completely written "
        f"({error.message}); nothing reached the platform, it can be sent again",
        authority=regime.AUTHORITY,
        code="authority.unreachable.fne.not_written",
    )


def proxy_answer(
    status: int, raw: dict[str, Any], operation: str, checkpoint: dict[str, Any] | None
) -> Exception:
    """A 5xx that is not FNE's own answer: something in front of the platform answered.

    Decision (the spec is silent on proxies): a 503 is a proxy or load balancer refusing to
    forward (no upstream alive, maintenance, overload), so nothing reached FNE: retryable. A 502
    or 504 may follow a forwarded request (the upstream closed or timed out while working on it),
    so it stays uncertain, with its own code telling the person that a proxy answered."""
    if status == 503:
        return AuthorityServerError(
            f"FNE {operation}: HTTP 503 from a proxy in front of the platform (not FNE's answer "
            "shape): the request was not forwarded; it can be sent again",
            authority=regime.AUTHORITY,
            code="authority.server_error.fne.proxy_unavailable",
            http_status=status,
            raw=raw,
        )
    return OutcomeUnknown(
        f"FNE {operation}: HTTP {status} from a proxy in front of the platform (not FNE's answer "
        "shape): it may have forwarded the request before failing; check the portal before resending",
        authority=regime.AUTHORITY,
        code="authority.outcome_unknown.fne.proxy",
        http_status=status,
        raw=raw,
        checkpoint=checkpoint,
    )


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
        evidence = WriteEvidence()
        async with make_client(self.connection, self._headers()) as http:
            http.event_hooks = {
                **http.event_hooks,
                "request": [*http.event_hooks["request"], evidence.attach],
            }
            try:
                response = await send(
                    http, "POST", path, authority=regime.AUTHORITY, json=body, checkpoint=checkpoint
                )
            except OutcomeUnknown as exc:
                if evidence.never_written:
                    raise not_sent(exc, operation) from exc
                raise
        # Walked value by value only when its JSON text shows the key or a secret-named field.
        raw = mask_if_needed(json_body(response), [self._api_key], response.content)
        raw = raw if isinstance(raw, dict) else {"_body": raw}
        if response.status_code not in success:
            if response.status_code >= 500 and not platform_answer(response.status_code, raw):
                raise proxy_answer(response.status_code, raw, operation, checkpoint)
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
