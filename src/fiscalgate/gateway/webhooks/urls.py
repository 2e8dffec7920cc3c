"""Which URLs a webhook may point at.

HTTPS only, to a public address. Loopback and private addresses (and plain HTTP to them) only when
the operator allows private URLs (`FISCALGATE_ALLOW_PRIVATE_URLS=1`, for a receiver on the same
machine or network): otherwise a tenant could make the gateway call its own internal services
(SSRF). The rule is checked when the endpoint is registered (the URL as written, IP literals in
any spelling: `gateway.netpolicy`) and again at each delivery, on the addresses the host resolves
to then, by the same guarded transport the authority calls use (`authorities.http.GuardedTransport`:
the connection goes to the checked address, so DNS cannot change between check and connect).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import httpx

from fiscalgate.core.errors import Problem
from fiscalgate.gateway.errors import InvalidRequest
from fiscalgate.gateway.netpolicy import (
    ALLOW_PRIVATE_ENV,
    UrlNotAllowed,
    check_address,
    check_host,
    is_public,
    parse_ip_literal,
    private_urls_allowed,
)

MAX_URL_LENGTH = 2000

__all__ = ["ALLOW_PRIVATE_ENV", "check_destination", "private_urls_allowed", "validate_url"]


def _refuse(rule: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"webhook url refused: {why}",
        code=f"webhook.url_{rule}",
        problems=[Problem("url", rule, why)],
    )


def _is_private_host(host: str) -> bool:
    """A loopback/private/reserved IP literal or a local name (`localhost`, `*.internal`...)."""
    try:
        literal = parse_ip_literal(host)
    except UrlNotAllowed as exc:
        raise _refuse("invalid", exc.message) from None
    if literal is not None:
        return not is_public(literal)
    try:
        check_host(host, allow_private=False)
    except UrlNotAllowed:
        return True
    return False


def validate_url(url: str) -> str:
    """The URL as it will be called, or a 422 naming the `url` field and the rule it breaks."""
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise _refuse("too_long", f"at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise _refuse("invalid", "no spaces or control characters (percent-encode them)")
    try:
        httpx.URL(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a bad port
    except (ValueError, httpx.InvalidURL):
        raise _refuse("invalid", "not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _refuse("invalid", "an absolute https:// URL is required")
    if parts.username is not None or parts.password is not None:
        raise _refuse("credentials", "no user:password in the URL: the receiver checks the signature instead")
    if parts.fragment:
        raise _refuse("invalid", "no #fragment")
    private = _is_private_host(host)
    if private and not private_urls_allowed():
        raise _refuse(
            "private",
            f"{host} is a loopback or private address; the operator allows those only with "
            f"{ALLOW_PRIVATE_ENV}=1",
        )
    if parts.scheme != "https" and not private:
        raise _refuse("https_required", "https:// is required (http only to an allowed private host)")
    return url


def check_destination(host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """The guarded transport's check at delivery time (raises UrlNotAllowed to refuse)."""
    check_address(address, host=host, allow_private=private_urls_allowed())
