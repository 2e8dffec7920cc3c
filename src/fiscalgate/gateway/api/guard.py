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

from fiscalgate.core.errors import ConfigurationError, GatewayError, Problem, Resolution
from fiscalgate.gateway.api.auth import CALLER_STATE, authenticate_request
from fiscalgate.gateway.api.ratelimit import RateLimiter, retry_after
from fiscalgate.gateway.errors import ApiError, Forbidden, InvalidRequest, error_body, http_status_for
from fiscalgate.gateway.tenants.service import Caller

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


class TooManyRequests(ApiError):
    default_code = "rate_limited"
    http_status = 429
    resolution = Resolution.RETRY_LATER
    retryable = True

    def __init__(self, message: str, *, code: str, wait: float) -> None:
        super().__init__(message, code=code)
        self.headers = {"Retry-After": retry_after(wait)}


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


RATE_PER_KEY_ENV = "FISCALGATE_RATE_LIMIT_PER_KEY"
RATE_PER_SOURCE_ENV = "FISCALGATE_RATE_LIMIT_PER_SOURCE"
RATE_AUTH_FAILURES_ENV = "FISCALGATE_RATE_LIMIT_AUTH_FAILURES"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class GuardSettings:
    max_body_bytes: int = DEFAULT_MAX_BODY
    # Requests per minute (0: unlimited), per process. Per credential (API key or admin token),
    # per source address (the client address; behind a proxy run uvicorn with --proxy-headers),
    # and failed authentications per source (a source past it is refused until it refills).
    rate_per_key: int = 1200
    rate_per_source: int = 3000
    rate_auth_failures: int = 30

    @classmethod
    def from_env(cls) -> GuardSettings:
        default = cls()
        return cls(
            max_body_bytes=_int_env(MAX_BODY_ENV, default.max_body_bytes),
            rate_per_key=_int_env(RATE_PER_KEY_ENV, default.rate_per_key),
            rate_per_source=_int_env(RATE_PER_SOURCE_ENV, default.rate_per_source),
            rate_auth_failures=_int_env(RATE_AUTH_FAILURES_ENV, default.rate_auth_failures),
        )


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
        self.per_key = RateLimiter(self.settings.rate_per_key)
        self.per_source = RateLimiter(self.settings.rate_per_source)
        self.auth_failures = RateLimiter(self.settings.rate_auth_failures)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refuse_head(scope, headers)
        if refusal is not None:
            await _answer(refusal)(scope, receive, send)
            return
        api = scope["path"].startswith("/v1/")
        if api or scope["method"] == "POST":  # the console's sign-in and forms are POSTs
            refusal = self._limit_source(scope, api)
            if refusal is not None:
                await _answer(refusal, refusal.headers)(scope, receive, send)
                return
        if api:
            outcome = await self._authenticate(scope, headers)
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

    def _limit_source(self, scope: Scope, api: bool) -> TooManyRequests | None:
        source = _source(scope)
        wait = self.auth_failures.blocked(source) if api else None
        if wait is not None:
            return TooManyRequests(
                f"too many failed authentications from {source}; retry in {retry_after(wait)} s",
                code="rate_limited.auth_failures",
                wait=wait,
            )
        wait = self.per_source.take(source)
        if wait is not None:
            return TooManyRequests(
                f"too many requests from {source} (limit {self.settings.rate_per_source} per minute, "
                f"{RATE_PER_SOURCE_ENV}); retry in {retry_after(wait)} s",
                code="rate_limited.source",
                wait=wait,
            )
        return None

    async def _authenticate(self, scope: Scope, headers: Headers) -> Caller | GatewayError:
        outcome = await authenticate_request(scope, headers)
        if isinstance(outcome, GatewayError):
            if headers.get("authorization"):  # a wrong credential, not a forgotten one
                self.auth_failures.take(_source(scope))
            return outcome
        wait = self.per_key.take(outcome.trigger)
        if wait is not None:
            return TooManyRequests(
                f"too many requests with this credential (limit {self.settings.rate_per_key} per "
                f"minute, {RATE_PER_KEY_ENV}); retry in {retry_after(wait)} s",
                code="rate_limited.key",
                wait=wait,
            )
        if outcome.scope == "read" and scope["method"] not in READ_METHODS:
            return Forbidden(
                f"this API key is read-only (scope `read`): {scope['method']} needs a key with scope "
                "`certify`",
                code="auth.read_only_key",
            )
        return outcome

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


def _source(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


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
