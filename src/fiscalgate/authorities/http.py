"""The one place where transport failures are classified, for every authority client.

Before the request is fully sent, a failure means nothing reached the authority
(`AuthorityUnreachable`, safe to retry). After it, the authority may have acted on it
(`OutcomeUnknown`, reconcile before anything else).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import anyio
import httpx

from fiscalgate.authorities.base import Connection
from fiscalgate.core.errors import AuthorityUnreachable, ConfigurationError, OutcomeUnknown


def make_client(connection: Connection, headers: dict[str, str]) -> httpx.AsyncClient:
    """An httpx client for one authority call; the transport is injected (in-process simulator,
    recording wrapper, or None for the real network)."""
    try:
        return httpx.AsyncClient(
            base_url=connection.base_url.rstrip("/"),
            transport=connection.transport,
            timeout=httpx.Timeout(connection.timeout, connect=min(connection.timeout, 10.0)),
            headers={"Accept": "application/json", **dict(connection.headers), **headers},
        )
    except (UnicodeEncodeError, httpx.InvalidURL, ValueError) as exc:
        # A header or URL that cannot go on the wire (e.g. a pasted key with an accented letter).
        # The value itself is not repeated: it may be a secret.
        raise ConfigurationError(
            f"cannot build requests to {connection.base_url}: {type(exc).__name__} in a header or the "
            "URL; check the settings (key, token, URL)",
            code="settings.unusable",
        ) from None


async def send(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    authority: str,
    json: Any = None,
    params: dict[str, Any] | None = None,
    deadline: float | None = None,
    checkpoint: dict[str, Any] | None = None,
) -> httpx.Response:
    """Send one request and classify transport failures.

    `deadline` bounds the whole exchange even over transports that ignore httpx timeouts (the
    in-process ASGI transport); it defaults to the client's read timeout.
    """
    limit = deadline if deadline is not None else (client.timeout.read or 30.0)
    what = f"{method} {path}"
    try:
        with anyio.fail_after(limit):
            return await client.request(method, path, json=json, params=params)
    except (httpx.LocalProtocolError, UnicodeEncodeError, httpx.InvalidURL) as exc:
        # The request could not even be built (a key with a non-ASCII character, a bad URL):
        # nothing left this machine, and only the settings can fix it.
        raise ConfigurationError(
            # Only the type: h11's message quotes the offending header value, which may be a key.
            f"{authority}: cannot build the request {what} ({type(exc).__name__}); "
            "check the settings (key, token, URL)",
            code="settings.unusable",
        ) from exc
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol) as exc:
        raise AuthorityUnreachable(
            f"{authority}: could not reach the authority for {what} ({type(exc).__name__}); nothing was sent",
            authority=authority,
        ) from exc
    except (TimeoutError, httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise OutcomeUnknown(
            f"{authority}: no answer to {what} after sending it ({type(exc).__name__}); "
            "the authority may have processed it, reconcile before retrying",
            authority=authority,
            checkpoint=checkpoint,
        ) from exc


def json_body(response: httpx.Response) -> Any:
    """The response's JSON, or its text when it is not JSON (kept for diagnosis)."""
    try:
        return response.json()
    except ValueError:
        return {"_text": response.text[:4000]}


class AuthoritySession:
    """One httpx client held for the duration of `async with`: the base of authority clients that
    make several calls in a row (e-MECeF's submit/confirm, SFEC's certify/look-up)."""

    def __init__(self, connection: Connection, headers: Mapping[str, str]) -> None:
        self.connection = connection
        self._headers = dict(headers)
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        self._http = make_client(self.connection, self._headers)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError(f"use `async with {type(self).__name__}(...)` before calling it")
        return self._http
