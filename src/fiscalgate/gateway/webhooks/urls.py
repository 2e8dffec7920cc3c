"""Which URLs a webhook may point at.

HTTPS only, to a public address. Loopback and private addresses (and plain HTTP to them) only when
the operator allows private URLs (`FISCALGATE_ALLOW_PRIVATE_URLS=1`, for a receiver on the same
machine or network): otherwise a tenant could make the gateway call its own internal services
(SSRF). The rule is checked when the endpoint is registered (the URL as written) and again before
each delivery (the addresses its host name resolves to then).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from urllib.parse import urlsplit

import anyio

from fiscalgate.core.errors import Problem
from fiscalgate.gateway.errors import InvalidRequest

ALLOW_PRIVATE_ENV = "FISCALGATE_ALLOW_PRIVATE_URLS"
MAX_URL_LENGTH = 2000


def private_urls_allowed() -> bool:
    """The operator's choice, read at each use (so a restart is not needed to change it)."""
    return os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def is_private_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _private_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost") or is_private_address(host)


def _refuse(url: str, rule: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"webhook url refused: {why}",
        code=f"webhook.url_{rule}",
        problems=[Problem("url", rule, why)],
    )


def validate_url(url: str) -> str:
    """The URL as it will be called, or a 422 naming the `url` field and the rule it breaks."""
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(url, "too_long", f"at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise _refuse(url, "invalid", "not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _refuse(url, "invalid", "an absolute https:// URL is required")
    if parts.username is not None or parts.password is not None:
        raise _refuse(
            url, "credentials", "no user:password in the URL: the receiver checks the signature instead"
        )
    if parts.fragment:
        raise _refuse(url, "invalid", "no #fragment")
    private = _private_host(host)
    if private and not private_urls_allowed():
        raise _refuse(
            url,
            "private",
            f"{host} is a loopback or private address; the operator allows those only with "
            f"{ALLOW_PRIVATE_ENV}=1",
        )
    if parts.scheme != "https" and not private:
        raise _refuse(url, "https_required", "https:// is required (http only to an allowed private host)")
    return url


async def check_destination(url: str) -> str | None:
    """Before sending: why the URL may not be called now (None when it may). A public host name
    that resolves to a private address is refused unless private URLs are allowed."""
    if private_urls_allowed():
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _private_host(host):
        return f"{host} is a loopback or private address ({ALLOW_PRIVATE_ENV} is off)"
    try:
        infos = await anyio.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    for info in infos:
        address = str(info[4][0])
        if is_private_address(address):
            return f"{host} resolves to {address}, a loopback or private address ({ALLOW_PRIVATE_ENV} is off)"
    return None
