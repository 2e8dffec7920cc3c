"""The one place where transport failures are classified, for every authority client.

Before the request is fully sent, a failure means nothing reached the authority
(`AuthorityUnreachable`, safe to retry). After it, the authority may have acted on it
(`OutcomeUnknown`, reconcile before anything else).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Mapping
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
            follow_redirects=False,  # a redirect is an answer to classify, never a new destination
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


AddressCheck = Callable[[str, ipaddress.IPv4Address | ipaddress.IPv6Address], None]


class GuardedTransport(httpx.AsyncBaseTransport):
    """The network transport with a destination check at call time.

    The host of each request is resolved here and every address it resolves to is given to
    `check` (which raises to refuse: nothing is sent); the connection then goes to the checked
    address itself, the `Host` header and the TLS name (SNI, certificate) staying the original
    host's, so a DNS answer that changes between the check and the connection cannot slip another
    address in."""

    def __init__(self, check: AddressCheck, *, verify: ssl.SSLContext | bool = True) -> None:
        self.check = check
        self.inner = httpx.AsyncHTTPTransport(verify=verify)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        try:
            literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from exc
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        for address in addresses:
            self.check(host, address)
        if literal is None and addresses:
            extensions = dict(request.extensions)
            if request.url.scheme == "https":
                extensions["sni_hostname"] = host
            request = httpx.Request(
                request.method,
                request.url.copy_with(host=str(addresses[0])),
                headers=request.headers,  # carries Host: the original name
                stream=request.stream,
                extensions=extensions,
            )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def guarded_transport(check: AddressCheck, *, verify: ssl.SSLContext | bool = True) -> GuardedTransport:
    """A fresh network transport whose destinations pass `check` (see `GuardedTransport`)."""
    return GuardedTransport(check, verify=verify)


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
