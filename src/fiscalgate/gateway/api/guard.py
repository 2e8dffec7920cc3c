"""The request guard: a pure ASGI middleware that runs before any route reads a body.

In order, for every HTTP request:
1. NUL characters in the path, query string or headers are refused (422 `request.nul_byte`):
   PostgreSQL cannot store them in text, and no field of the API has a use for them.
2. API routes (`/v1/...`) are authenticated from the `Authorization` header alone (401 without
   reading a byte of the body), then rate limited per credential and per source (429 +
   `Retry-After`). The resolved caller is handed to the route (`scope["state"]`), so the route's
   own dependency does not look the key up again. Other paths (`/console` with its own session
   auth, `/mock` public pages, `/docs`, static assets) are not authenticated here.
3. The body is read by counting: a `Content-Length` above the limit is refused at once (413), a
   streamed body as soon as the count passes it; what was read is then handed to the app. A JSON
   or form body carrying a NUL character is refused (422, naming the field).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fiscalgate.core.errors import ConfigurationError, GatewayError, Problem
from fiscalgate.gateway.api.auth import CALLER_STATE, authenticate_request
from fiscalgate.gateway.errors import ApiError, InvalidRequest, error_body, http_status_for

MAX_BODY_ENV = "FISCALGATE_MAX_BODY_BYTES"
# 16 MiB: a 1,000-line invoice is about 0.3 MB and a 1,000-invoice batch of 10-line invoices about
# 3.5 MB (tests/security/test_body_limits.py measures both); this leaves room for long texts.
DEFAULT_MAX_BODY = 16 * 1024 * 1024

# A JSON `\u0000` escape not itself escaped (an even number of backslashes before it), or a raw NUL.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000|\x00")
_FORM_NUL = re.compile(rb"%00|\x00")


class PayloadTooLarge(ApiError):
    default_code = "request.too_large"
    http_status = 413


def _answer(error: GatewayError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(error), status_code=http_status_for(error), headers=headers)


def _nul_path(value: Any, path: str = "") -> str | None:
    """Where in a decoded JSON document the first NUL character is."""
    if isinstance(value, str):
        return path or "(body)" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here
            found = _nul_path(item, here)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_path(item, f"{path}[{i}]")
            if found:
                return found
    return None


def _nul_error(where: str) -> InvalidRequest:
    return InvalidRequest(
        f"{where} contains a NUL character (\\u0000), which is not accepted anywhere",
        code="request.nul_byte",
        problems=[Problem(where, "nul_byte", "NUL characters are not accepted")],
    )


@dataclass(frozen=True)
class GuardSettings:
    max_body_bytes: int = DEFAULT_MAX_BODY

    @classmethod
    def from_env(cls) -> GuardSettings:
        return cls(max_body_bytes=_int_env(MAX_BODY_ENV, DEFAULT_MAX_BODY))


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}", code="settings.server")
    return int(raw)


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: GuardSettings | None = None) -> None:
        self.app = app
        self.settings = settings or GuardSettings()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refuse_head(scope, headers)
        if refusal is not None:
            await _answer(refusal)(scope, receive, send)
            return
        if scope["path"].startswith("/v1/"):
            outcome = await authenticate_request(scope, headers)
            if isinstance(outcome, GatewayError):
                await _answer(outcome, getattr(outcome, "headers", None))(scope, receive, send)
                return
            scope.setdefault("state", {})[CALLER_STATE] = outcome

        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") and "content-length" not in headers:
            await self.app(scope, receive, send)  # nothing to read
            return
        body, refusal = await self._read_body(headers, receive)
        if refusal is not None:
            await _answer(refusal, {"Connection": "close"})(scope, receive, send)
            return
        refusal = self._refuse_body(headers, body)
        if refusal is not None:
            await _answer(refusal)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    def _refuse_head(scope: Scope, headers: Headers) -> GatewayError | None:
        if "\x00" in scope["path"]:
            return _nul_error("the path")
        query = scope.get("query_string", b"")
        if b"\x00" in query or b"%00" in query:
            return _nul_error("the query string")
        for name, value in scope.get("headers", []):
            if b"\x00" in value:
                return _nul_error(f"header {name.decode('latin-1')}")
        return None

    async def _read_body(self, headers: Headers, receive: Receive) -> tuple[bytes, GatewayError | None]:
        limit = self.settings.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return b"", self._too_large(f"Content-Length {declared}")
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # stop reading at once: the rest is never pulled in
                return b"", self._too_large(f"more than {limit} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks), None

    def _too_large(self, what: str) -> PayloadTooLarge:
        limit = self.settings.max_body_bytes
        return PayloadTooLarge(
            f"the request body is too large ({what}); the limit is {limit} bytes ({MAX_BODY_ENV})",
        )

    @staticmethod
    def _refuse_body(headers: Headers, body: bytes) -> GatewayError | None:
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind.endswith("json") or not kind:
            if _JSON_NUL.search(body) is None:
                return None
            try:
                where = _nul_path(json.loads(body)) or "(body)"
            except ValueError:
                where = "(body)"
            return _nul_error(where)
        if kind == "application/x-www-form-urlencoded" and _FORM_NUL.search(body):
            return _nul_error("(form)")
        return None


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
