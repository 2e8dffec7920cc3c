"""`Idempotency-Key` on POST requests.

Same caller + same key + same request (method, path, query, body) -> the stored response, replayed
with `Idempotent-Replayed: true` and the gateway's own headers of the first answer
(`Fiscalgate-Already-Certified`...); same key with a different request -> 422; while the first one is
still running -> 409. The key is claimed by inserting a row (the unique constraint arbitrates
between concurrent duplicates).

- Keys are scoped by who calls, resolved BEFORE any replay: a tenant (whichever of its API keys is
  used) or the administrator. An unknown or revoked credential is never answered from the store:
  the request goes on to the app, which answers 401.
- Answers that say "not now" rather than "here is the result" are not stored, so the same key can
  be retried: 401/403, 409 (in progress, claimed elsewhere), 429 and 5xx.
- A key whose first request never finished is taken over once the process that held it is dead
  (its heartbeat stopped, see queue/healing.py), or after `LEASE` when no process was recorded.
- The stored answer is sealed with the gateway's secret key (the one that seals authority
  credentials), never kept in clear: some answers carry a secret shown only once (a webhook's
  signing secret, a new API key), and their replay must show it again without the database
  holding it. Every answer is sealed, not only those routes', so that a new route returning a
  secret cannot leak it by forgetting a list. `fiscalgate rotate-keys` re-seals them; an answer
  sealed with a key no longer configured is not replayed (409 `idempotency.unreadable`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy import String, delete, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fiscalgate.core.errors import ConfigurationError, GatewayError, Resolution
from fiscalgate.gateway.api.auth import CALLER_STATE
from fiscalgate.gateway.api.models import IdempotencyRecord
from fiscalgate.gateway.certification.claim import DEAD_AFTER
from fiscalgate.gateway.crypto import SecretBox
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import Conflict, InvalidRequest, error_body
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller, authenticate_key

HEADER = "idempotency-key"
# Longer than any authority call can last (timeouts are at most 300 s, SFEC tries 3 times).
LEASE = timedelta(minutes=30)
# Statuses that describe the moment, not the request's result: never replayed.
NOT_STORED = frozenset({401, 403, 409, 429})
# The gateway's own headers carry meaning (`Fiscalgate-Already-Certified`): stored and replayed.
REPLAYED_HEADER_PREFIX = b"fiscalgate-"
SEALED = "sealed"  # response_body = {"sealed": <Fernet token of {"body": the answer's JSON}>}


class NotYet(Conflict):
    """The key's first request is still running, or just failed: the same request, sent again
    later with the same key, gets the answer (a retry policy reads `resolution` / `retryable`)."""

    resolution = Resolution.RETRY_LATER
    retryable = True


def seal_body(box: SecretBox, body: Any) -> dict[str, str]:
    return {SEALED: box.seal({"body": body})}


def open_body(box: SecretBox, stored: Any) -> Any:
    """The answer to replay; raises ConfigurationError when its key is no longer configured."""
    if isinstance(stored, dict) and set(stored) == {SEALED} and isinstance(stored[SEALED], str):
        return box.open(stored[SEALED]).get("body")
    return stored  # stored in clear by a version that did not seal answers yet


def _claim(
    session: Session, scope: str, key: str, request_hash: str, method: str, path: str, holder: str | None
) -> None:
    session.add(
        IdempotencyRecord(
            scope=scope,
            key=key,
            request_hash=request_hash,
            method=method,
            path=path,
            holder=holder,
            created_at=utcnow(),
        )
    )
    session.flush()


def _existing(session: Session, scope: str, key: str) -> IdempotencyRecord | None:
    return session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
    )


def _complete(
    session: Session, scope: str, key: str, status: int, body: Any, headers: dict[str, str]
) -> None:
    row = _existing(session, scope, key)
    if row is not None:
        row.response_status = status
        row.response_body = body
        row.response_headers = headers or None


def _release(session: Session, scope: str, key: str) -> None:
    session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
    )


def _take_over_abandoned(session: Session, scope: str, key: str) -> bool:
    """Delete a claim whose request never finished because its process died (its heartbeat
    stopped), or within LEASE; the row count says whether this caller is the one that removed it."""
    now = utcnow()
    dead = text(
        "SELECT id FROM gateway_processes WHERE stopped_at IS NOT NULL OR heartbeat_at < :dead_before"
    ).bindparams(dead_before=now - timedelta(seconds=DEAD_AFTER))
    result = session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
            IdempotencyRecord.response_status.is_(None),
            or_(
                IdempotencyRecord.created_at < now - LEASE,
                IdempotencyRecord.holder.in_(dead.columns(id=String)),
            ),
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def _scope_of(gw: Gateway, auth: str) -> str | None:
    """`tenant:<id>` or `admin` for a valid credential, None otherwise."""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    if gw.is_admin_token(token):
        return "admin"
    found = await gw.db.read(authenticate_key, token)
    return None if found is None else f"tenant:{found.tenant_id}"


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the already-read body to the app once, then defers to the server."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        auth = headers.get("authorization")
        if key is None or not auth:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 255:
            problem = InvalidRequest(
                "Idempotency-Key must be 1 to 255 characters", code="idempotency.key_invalid"
            )
            await JSONResponse(error_body(problem), status_code=422)(scope, receive, send)
            return

        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        gw: Gateway = scope["app"].state.gateway
        known = scope.get("state", {}).get(CALLER_STATE)  # resolved by the request guard
        if isinstance(known, Caller):
            who: str | None = "admin" if known.is_admin else f"tenant:{known.tenant_id}"
        else:
            who = await _scope_of(gw, auth)
        if who is None:  # let the app refuse the credential; never replay anything to it
            await self.app(scope, _replay(body, receive), send)
            return
        path = scope["path"]
        digest = hashlib.sha256(
            b"\n".join([b"POST", path.encode(), scope.get("query_string", b""), body])
        ).hexdigest()

        existing = await self._claim_or_existing(gw, who, key, digest, path)
        if existing is not None:
            await self._answer_existing(gw.box, existing, key, digest, scope, receive, send)
            return

        status = 500
        out: list[bytes] = []
        kept: dict[str, str] = {}

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower().startswith(REPLAYED_HEADER_PREFIX):
                        kept[name.decode("latin-1")] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                out.append(message.get("body", b""))
            await send(message)

        stored = False
        try:
            await self.app(scope, _replay(body, receive), capture)
            if status < 500 and status not in NOT_STORED:
                raw = b"".join(out)
                try:
                    payload = json.loads(raw) if raw else None
                except ValueError:
                    payload = {"_text": raw.decode("utf-8", errors="replace")}
                sealed = seal_body(gw.box, payload)
                await gw.db.run(_complete, who, key, status, sealed, kept)
                stored = True
        finally:
            if not stored:
                # Shielded: a cancelled request must not leave its key claimed.
                with anyio.CancelScope(shield=True):
                    await gw.db.run(_release, who, key)

    @staticmethod
    async def _claim_or_existing(
        gw: Gateway, who: str, key: str, digest: str, path: str
    ) -> IdempotencyRecord | None:
        """Claim the key (None), or return the row that already holds it."""
        for _ in range(2):
            try:
                await gw.db.run(_claim, who, key, digest, "POST", path, gw.process_id)
                return None
            except IntegrityError:
                row = await gw.db.run(_existing, who, key)
                if row is None or row.response_status is not None:
                    return row
                if not await gw.db.run(_take_over_abandoned, who, key):
                    return row
        return await gw.db.run(_existing, who, key)

    @staticmethod
    async def _answer_existing(
        box: SecretBox,
        row: IdempotencyRecord | None,
        key: str,
        digest: str,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        error: GatewayError
        if row is None:  # released in between: let the caller try again
            error = NotYet("a request with this Idempotency-Key just failed; retry", code="idempotency.retry")
            await JSONResponse(error_body(error), status_code=409)(scope, receive, send)
        elif row.request_hash != digest:
            error = InvalidRequest(
                f"Idempotency-Key {key!r} was already used for a different request "
                f"({row.method} {row.path} with another body); use a new key for a new request",
                code="idempotency.key_reused",
            )
            await JSONResponse(error_body(error), status_code=422)(scope, receive, send)
        elif row.response_status is None:
            error = NotYet(
                f"the first request with Idempotency-Key {key!r} is still being processed; retry later",
                code="idempotency.in_progress",
            )
            await JSONResponse(error_body(error), status_code=409)(scope, receive, send)
        else:
            try:
                body = open_body(box, row.response_body)
            except ConfigurationError:
                error = Conflict(
                    f"the answer stored for Idempotency-Key {key!r} was sealed with a secret key this "
                    "gateway no longer has, so it cannot be replayed; check the resource's current "
                    "state (GET) before sending it again with a new key",
                    code="idempotency.unreadable",
                )
                await JSONResponse(error_body(error), status_code=409)(scope, receive, send)
                return
            headers = {**(row.response_headers or {}), "Idempotent-Replayed": "true"}
            replay = JSONResponse(body, status_code=row.response_status, headers=headers)
            await replay(scope, receive, send)
