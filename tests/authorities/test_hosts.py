"""The host-safety policy every authority's settings use (fiscalgate.authorities.hosts)."""

from __future__ import annotations

import ipaddress

import pytest

from fiscalgate.authorities import get_driver, hosts
from fiscalgate.core.errors import ConfigurationError


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0X7F.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("10.0.0.1.", "10.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("[::ffff:7f00:1]", "127.0.0.1"),
        ("::127.0.0.1", "127.0.0.1"),
        ("fe80::1%eth0", "fe80::1"),
        ("54.247.95.108", "54.247.95.108"),
    ],
)
def test_every_spelling_of_an_address_is_read_as_that_address(spelling: str, address: str) -> None:
    assert hosts.ip_literal(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize("name", ["sygmef.impots.bj", "localhost", "256.0.0.1", "1.2.3.4.5", "08.1.1.1", ""])
def test_names_and_impossible_addresses_are_not_ip_literals(name: str) -> None:
    assert hosts.ip_literal(name) is None


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST.",
        "api.localhost",
        "0x7f.1",
        "2130706433",
        "[::1]",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ],
)
def test_this_machine_in_any_spelling_is_loopback_and_local(host: str) -> None:
    assert hosts.is_loopback(host) and hosts.is_local(host)


@pytest.mark.parametrize(
    "host", ["10.1.2.3", "0xa.1", "192.168.0.10", "169.254.1.1", "fd00::1", "bj-emecef.mock"]
)
def test_private_networks_and_placeholders_are_local(host: str) -> None:
    assert hosts.is_local(host) and not hosts.is_loopback(host)


@pytest.mark.parametrize("host", ["54.247.95.108", "sygmef.impots.bj", "8.8.8.8", "api.sfec.gouv.cg"])
def test_public_hosts_are_not_local(host: str) -> None:
    assert not hosts.is_local(host)


def test_hostname_reads_the_host_as_dns_compares_it() -> None:
    assert hosts.hostname("https://SyGMeF.impots.BJ.:443/emcf") == "sygmef.impots.bj"
    assert hosts.hostname("http://[::1]:8000/ws") == "::1"
    assert hosts.hostname("not a url") == ""
    assert hosts.hostname("http://[broken") == ""


def test_a_policy_knows_production_and_test_hosts_whatever_the_spelling() -> None:
    policy = hosts.HostPolicy.of(
        ["Api.Example.cg."], production_suffixes=[".gouv.cg"], test_markers=["sandbox"]
    )
    assert policy.is_production("api.example.cg.") and policy.is_production("x.gouv.cg")
    assert policy.is_test("SANDBOX.example.cg") and not policy.is_test("api.example.cg")


# --- every authority refuses its production host outside production, trailing dot or not ---------
PRODUCTION_HOSTS = {
    "ci-fne": "https://fne.dgi.gouv.ci/ws",
    "bj-emecef": "https://sygmef.impots.bj/emcf",
    "cg-sfec": "https://api.sfec.gouv.cg",
}


@pytest.mark.parametrize("code", sorted(PRODUCTION_HOSTS))
@pytest.mark.parametrize("environment", ["mock", "sandbox"])
@pytest.mark.parametrize("dot", ["", "."])
def test_a_production_host_is_refused_outside_production(code: str, environment: str, dot: str) -> None:
    driver = get_driver(code)
    url = PRODUCTION_HOSTS[code].replace(".gouv.ci/", f".gouv.ci{dot}/").replace(".bj/", f".bj{dot}/")
    if code == "cg-sfec":
        url += dot
    assert hosts.hostname(url) == hosts.hostname(PRODUCTION_HOSTS[code])
    with pytest.raises(ConfigurationError) as caught:
        driver.parse_settings({**driver.mock_credentials(), "environment": environment, "base_url": url})
    assert any(p.field == "base_url" for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("code", sorted(PRODUCTION_HOSTS))
@pytest.mark.parametrize("host", ["127.0.0.1", "0x7f.1", "2130706433", "[::ffff:127.0.0.1]", "localhost."])
def test_production_never_points_at_this_machine(code: str, host: str) -> None:
    driver = get_driver(code)
    data = {**driver.mock_credentials(), "environment": "production", "base_url": f"https://{host}/"}
    if code == "ci-fne":
        data["production_url"] = f"https://{host}/ws"
    with pytest.raises(ConfigurationError):
        driver.parse_settings(data)
