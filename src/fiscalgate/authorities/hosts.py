"""Host safety, one policy for every authority's settings: which host a URL really names, whether it
is this machine or a private network (in any spelling of an IP address), and whether it is an
authority's production or test platform.

Why one module: test invoices must never reach a live, uninterrupted numbering series, and live
invoices must never be lost on a test platform or a simulator. Spelling tricks defeat per-authority
string comparisons: `sygmef.impots.bj.` (a trailing dot) is the production host, and `0x7f.1`,
`017700000001`, `2130706433` and `[::ffff:127.0.0.1]` are all 127.0.0.1.

`ip_literal` is public on purpose: it is the parser to use wherever a host must be classified
(an SSRF policy for outgoing webhooks, say), so that every check reads addresses the same way.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that resolve to this machine without DNS (RFC 6761 §6.3) and the placeholder suffixes the
# simulators use; none of them is ever an authority's platform.
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
LOCAL_SUFFIXES = (".localhost", ".local", ".mock", ".internal")

_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


def hostname(url: str) -> str:
    """The host a URL names, as DNS compares it: lower case, without brackets, port or the final
    dot(s) of a fully qualified name. Empty when there is none (or the URL cannot be parsed)."""
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""
    return normalise_host(host)


def normalise_host(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".")


def ip_literal(host: str) -> IPAddress | None:
    """The address a host written as an IP literal stands for, or None for a name.

    Accepts every spelling a resolver (inet_aton) or a browser accepts: dotted decimal, octal
    (`0177.0.0.1`) and hexadecimal (`0x7f.0.0.1`) parts, shortened forms (`127.1`, `127.0.1`), a
    single integer (`2130706433`), IPv6 with or without brackets and zone (`fe80::1%eth0`). An
    IPv4-mapped or -compatible IPv6 address (`::ffff:127.0.0.1`) is returned as its IPv4 address,
    so that loopback and private checks see through it."""
    text = normalise_host(host)
    if not text:
        return None
    if ":" in text:
        try:
            address = ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError:
            return None
        mapped = address.ipv4_mapped
        if mapped is None and address.packed[:12] == bytes(12) and int(address) > 1:
            mapped = ipaddress.IPv4Address(address.packed[12:])  # deprecated IPv4-compatible form
        return mapped or address
    return _ipv4(text)


def _ipv4(text: str) -> ipaddress.IPv4Address | None:
    parts = text.split(".")
    if len(parts) > 4 or not all(_PART.fullmatch(p) for p in parts):
        return None
    values = [_number(p) for p in parts]
    # inet_aton: a.b.c.d; a.b.c (c is 16 bits); a.b (b is 24 bits); a (32 bits).
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        return None
    number = last
    for position, value in enumerate(head):
        number += value << (8 * (3 - position))
    return ipaddress.IPv4Address(number)


def _number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    return int(part, 8) if part.startswith("0") else int(part)


def is_loopback(host: str) -> bool:
    """This machine: localhost names, 127.0.0.0/8, ::1, and the unspecified addresses."""
    name = normalise_host(host)
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        return True
    address = ip_literal(name)
    return address is not None and (address.is_loopback or address.is_unspecified)


def is_local(host: str) -> bool:
    """Never an authority's platform: this machine, a private or link-local network, a reserved
    address, or a local / placeholder name (`.local`, `.mock`...)."""
    name = normalise_host(host)
    if not name or is_loopback(name) or name.endswith(LOCAL_SUFFIXES):
        return True
    address = ip_literal(name)
    return address is not None and (
        address.is_private or address.is_link_local or address.is_reserved or address.is_multicast
    )


@dataclass(frozen=True)
class HostPolicy:
    """An authority's platforms by host: its production hosts (exact names, or any name under a
    suffix) and its test hosts (exact names, or names containing a marker such as `sandbox`)."""

    production: frozenset[str]
    production_suffixes: tuple[str, ...] = ()
    test: frozenset[str] = frozenset()
    test_markers: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        production: Iterable[str],
        *,
        production_suffixes: Iterable[str] = (),
        test: Iterable[str] = (),
        test_markers: Iterable[str] = (),
    ) -> HostPolicy:
        return cls(
            production=frozenset(normalise_host(h) for h in production),
            production_suffixes=tuple(s.lower() for s in production_suffixes),
            test=frozenset(normalise_host(h) for h in test),
            test_markers=tuple(m.lower() for m in test_markers),
        )

    def is_production(self, host: str) -> bool:
        name = normalise_host(host)
        return name in self.production or name.endswith(self.production_suffixes)

    def is_test(self, host: str) -> bool:
        name = normalise_host(host)
        return name in self.test or any(marker in name for marker in self.test_markers)
