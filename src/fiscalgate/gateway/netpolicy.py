"""Which hosts a tenant may make the gateway call: public ones only, unless the operator allows more.

A tenant sets authority URLs (`base_url`, FNE's `production_url`, SFEC's paths...). Left alone, it
could point them at the gateway's own network (loopback, a database, a cloud metadata service)
and read the answers in its audit log. So a URL whose host is not a public address is refused
when the settings are saved (`check_url`), and again at call time, after DNS resolution, by the
transport every authority call goes through (`fiscalgate.authorities.http.guarded_transport`,
which calls `check_address` on every resolved address). The operator allows private addresses
with `FISCALGATE_ALLOW_PRIVATE_URLS=1` (simulators run apart on 127.0.0.1, a platform reached
through a private link).

IP literals are read by the one parser of the project, `authorities.hosts.ip_literal`, in every
spelling resolvers accept: dotted decimal,
the inet_aton short forms (`127.1`, `10.1.2`), one integer (`2130706433`), octal and hex parts
(`0177.0.0.1`, `0x7f.1`), IPv6 with or without brackets or a zone (`[::1]`, `fe80::1%eth0`),
IPv4 embedded in IPv6 (`::ffff:127.0.0.1`, 6to4, Teredo, NAT64), a trailing dot.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from fiscalgate.authorities import hosts
from fiscalgate.core.errors import ConfigurationError, Problem

ALLOW_PRIVATE_ENV = "FISCALGATE_ALLOW_PRIVATE_URLS"
IPAddress = hosts.IPAddress
# Names that never mean a public host, whatever DNS says (hosts' list, and home networks).
_LOCAL_SUFFIXES = (*hosts.LOCAL_SUFFIXES, ".localhost", ".home.arpa")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def private_urls_allowed() -> bool:
    return os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class UrlNotAllowed(ConfigurationError):
    default_code = "settings.url_not_public"


def _looks_numeric(host: str) -> bool:
    last = host.rsplit(".", 1)[-1].lower()
    return last.isdigit() or (last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:]))


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host written as an IP literal means, in any spelling (the one parser,
    `authorities.hosts.ip_literal`); None for a name.

    Raises UrlNotAllowed for a host that looks like an address but is none (`1.2.3.999`,
    `[::zz]`): resolvers disagree on those, so none is taken for a name."""
    address = hosts.ip_literal(host)
    if address is not None:
        return address
    text = hosts.normalise_host(host)
    if ":" in text:
        raise UrlNotAllowed(f"{host!r} is not a valid IPv6 address")
    if text and _looks_numeric(text):
        raise UrlNotAllowed(f"{host!r} is neither a host name nor a valid IPv4 address")
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None and not is_public(inner):
            return False
    return address.is_global and not address.is_multicast


def check_address(address: IPAddress, *, host: str, allow_private: bool) -> None:
    if allow_private or is_public(address):
        return
    raise UrlNotAllowed(
        f"{host} resolves to {address}, which is not a public address (loopback, private, link-local, "
        f"reserved...): authority URLs must be public unless the operator sets {ALLOW_PRIVATE_ENV}=1"
    )


def check_host(host: str, *, allow_private: bool) -> IPAddress | None:
    """Refuse a local name or a non-public IP literal; the literal's address, None for a name."""
    address = parse_ip_literal(host)
    if allow_private:
        return address
    if address is not None:
        check_address(address, host=host, allow_private=False)
        return address
    name = hosts.normalise_host(host)
    if name in hosts.LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        raise UrlNotAllowed(
            f"{host} is a local host name: authority URLs must be public unless the operator sets "
            f"{ALLOW_PRIVATE_ENV}=1"
        )
    return None


def check_settings_urls(values: dict[str, object], *, allow_private: bool) -> None:
    """Save-time check of every URL-valued setting (`base_url`, `production_url`, and any other
    string that names a host: a path given as an absolute URL replaces the base URL in httpx)."""
    for name, value in values.items():
        if isinstance(value, str) and ("://" in value or value.strip().startswith("//")):
            check_url(value, field=name, allow_private=allow_private)


def check_url(url: str, *, field: str, allow_private: bool) -> None:
    """Save-time check of a URL given by a tenant (DNS is checked again at call time)."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        raise UrlNotAllowed(f"{field}: {url!r} is not a valid URL") from None
    if not host:
        return  # not a URL with a host (a path): the call-time check covers what it becomes
    try:
        check_host(host, allow_private=allow_private)
    except UrlNotAllowed as exc:
        raise UrlNotAllowed(
            f"{field}: {exc.message}", problems=[Problem(field, "url_not_public", exc.message)]
        ) from None
