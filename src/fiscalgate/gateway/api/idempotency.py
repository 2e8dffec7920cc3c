"""`Idempotency-Key` on POST requests.

Same caller + same key + same request (method, path, query, body) -> the stored response, replayed
with `Idempotent-Replayed: true`; same key with a different request -> 422; while the first one is
still running -> 409. The key is claimed by inserting a row (the unique constraint arbitrates
between concurrent duplicates). Keys are scoped by the caller's credential (its SHA-256). Responses
401/403 and 5xx are not stored, so the request can be retried.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fiscalgate.core.errors import GatewayError
from fiscalgate.gateway.api.models import IdempotencyRecord
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import Conflict, InvalidRequest, error_body
from fiscalgate.gateway.runtime import Gateway

HEADER = "idempotency-key"


def _claim(session: Session, scope: str, key: str, request_hash: str, method: str, path: str) -> None:
    session.add(
        IdempotencyRecord(
            scope=scope, key=key, request_hash=request_hash, method=method, path=path, created_at=utcnow()
        )
    )
    session.flush()


def _existing(session: Session, scope: str, key: str) -> IdempotencyRecord | None:
    return session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
    )


def _complete(session: Session, scope: str, key: str, status: int, body: Any) -> None:
    row = _existing(session, scope, key)
    if row is not None:
        row.response_status = status
        row.response_body = body


def _release(session: Session, scope: str, key: str) -> None:
    session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
    )


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
        who = hashlib.sha256(auth.encode()).hexdigest()
        path = scope["path"]
        digest = hashlib.sha256(
            b"\n".join([b"POST", path.encode(), scope.get("query_string", b""), body])
        ).hexdigest()

        try:
            await gw.db.run(_claim, who, key, digest, "POST", path)
        except IntegrityError:
            row = await gw.db.run(_existing, who, key)
            error: GatewayError
            if row is None:  # released in between: let the caller try again
                error = Conflict(
                    "a request with this Idempotency-Key just failed; retry", code="idempotency.retry"
                )
                await JSONResponse(error_body(error), status_code=409)(scope, receive, send)
            elif row.request_hash != digest:
                error = InvalidRequest(
                    f"Idempotency-Key {key!r} was already used for a different request "
                    f"({row.method} {row.path} with another body); use a new key for a new request",
                    code="idempotency.key_reused",
                )
                await JSONResponse(error_body(error), status_code=422)(scope, receive, send)
            elif row.response_status is None:
                error = Conflict(
                    f"the first request with Idempotency-Key {key!r} is still being processed; retry later",
                    code="idempotency.in_progress",
                )
                await JSONResponse(error_body(error), status_code=409)(scope, receive, send)
            else:
                replay = JSONResponse(
                    row.response_body,
                    status_code=row.response_status,
                    headers={"Idempotent-Replayed": "true"},
                )
                await replay(scope, receive, send)
            return

        sent_body = False

        async def replay_receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 500
        out: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                out.append(message.get("body", b""))
            await send(message)

        stored = False
        try:
            await self.app(scope, replay_receive, capture)
            if status < 500 and status not in (401, 403):
                raw = b"".join(out)
                try:
                    payload = json.loads(raw) if raw else None
                except ValueError:
                    payload = {"_text": raw.decode("utf-8", errors="replace")}
                await gw.db.run(_complete, who, key, status, payload)
                stored = True
        finally:
            if not stored:
                await gw.db.run(_release, who, key)
