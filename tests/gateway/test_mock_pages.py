"""With a public URL, mock certifications carry QR / verification URLs the gateway itself serves.

`GET /mock/{tenant}/{authority}/{path}` forwards only the simulators' public pages (FNE's
verification page), only to the simulator of a tenant with mock settings, and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI

from fiscalgate.authorities import descriptor
from fiscalgate.core.errors import ConfigurationError
from fiscalgate.gateway import create_app
from fiscalgate.gateway.runtime import PUBLIC_URL_ENV, normalise_public_url
from tests.gateway.conftest import (
    REAL,
    client,
    gateway,
    install_simulator,
    mock_settings,
    new_tenant,
    real_invoice,
    real_tenant,
)

pytestmark = pytest.mark.anyio

PUBLIC = "http://gw.test:8000"


@pytest.fixture
def public_app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app(public_url=PUBLIC + "/")  # the trailing slash is dropped


async def fne_tenant(app: FastAPI) -> tuple[dict[str, Any], httpx.AsyncClient]:
    """A tenant with FNE in mock whose simulator the gateway creates itself at the first call."""
    return await new_tenant(app, settings={"ci-fne": mock_settings("ci-fne")})


async def certify(api: httpx.AsyncClient, invoice: dict[str, Any]) -> dict[str, Any]:
    created = await api.post("/v1/invoices", json={"invoice": invoice, "approve": True})
    assert created.status_code == 201, created.text
    r = await api.post(f"/v1/invoices/{created.json()['id']}/certify")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def path_of(url: str) -> str:
    assert url.startswith(PUBLIC + "/"), url
    return url[len(PUBLIC) :]


async def test_fne_verification_url_opens_through_the_gateway(public_app: FastAPI) -> None:
    tenant, api = await fne_tenant(public_app)
    mount = f"{PUBLIC}/mock/{tenant['id']}/ci-fne"
    async with api:
        invoice = await certify(api, real_invoice("ci-fne"))
        cert = invoice["certification"]
        assert cert["verification_url"].startswith(f"{mount}/fr/verification/")
        assert cert["qr_content"] == cert["verification_url"]
        calls = (await api.get("/v1/audit", params={"kind": "authority_call"})).json()["items"]
        assert [c["url"] for c in calls] == [f"{mount}/ws/external/invoices/sign"]

        # Anyone holding the printed invoice opens it: no key needed.
        async with client(public_app, None) as anyone:
            page = await anyone.get(path_of(cert["verification_url"]))
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert f"Facture de vente Nº {cert['reference']}" in page.text

        # A credit note's page too (the FNE refund builds its URL the same way).
        r = await api.post(
            f"/v1/invoices/{invoice['id']}/credit-notes",
            json={"number": "AV-1", "approve": True, "lines": [{"original_line": 1, "quantity": "1"}]},
        )
        assert r.status_code == 201, r.text
        r = await api.post(f"/v1/invoices/{r.json()['id']}/certify")
        assert r.status_code == 200, r.text
        credit = r.json()["certification"]
        assert credit["verification_url"].startswith(f"{mount}/fr/verification/")
        async with client(public_app, None) as anyone:
            page = await anyone.get(path_of(credit["verification_url"]))
        assert page.status_code == 200 and f"Facture d'avoir Nº {credit['reference']}" in page.text
        assert f"Facture d'origine : {cert['reference']}" in page.text


async def test_a_public_url_with_a_path(make_app: Callable[..., FastAPI]) -> None:
    """Behind a proxy at /fiscal: the mount (and the root_path given to the simulator) include it."""
    app = make_app(public_url="https://proxy.example/fiscal")
    tenant, api = await fne_tenant(app)
    async with api:
        cert = (await certify(api, real_invoice("ci-fne")))["certification"]
        calls = (await api.get("/v1/audit", params={"kind": "authority_call"})).json()["items"]
    mount = f"https://proxy.example/fiscal/mock/{tenant['id']}/ci-fne"
    assert cert["verification_url"].startswith(mount + "/fr/verification/")
    assert calls[0]["url"] == mount + "/ws/external/invoices/sign"
    async with client(app, None) as anyone:  # the proxy strips /fiscal
        page = await anyone.get(cert["verification_url"].removeprefix("https://proxy.example/fiscal"))
    assert page.status_code == 200 and cert["reference"] in page.text


async def test_an_unknown_token_gets_the_gateways_not_found(public_app: FastAPI) -> None:
    # The same answer as for an unknown tenant (issue 14): the page does not tell which ids exist.
    tenant, api = await fne_tenant(public_app)
    async with api:
        await certify(api, real_invoice("ci-fne"))
    async with client(public_app, None) as anyone:
        r = await anyone.get(f"/mock/{tenant['id']}/ci-fne/fr/verification/0000-not-a-token")
    assert r.status_code == 404 and r.json()["code"] == "mock.page_not_found"


@pytest.mark.parametrize("authority", REAL)
async def test_every_authority_certifies_under_the_mount(public_app: FastAPI, authority: str) -> None:
    """The mount keeps the path of the driver's placeholder URL, so each simulator's routes match."""
    from fiscalgate.authorities import descriptor, get_driver

    tenant, api = await new_tenant(
        public_app,
        country=descriptor(authority).country,
        settings={authority: mock_settings(authority)},
    )
    driver = get_driver(authority)
    placeholder = httpx.URL(driver.base_url(driver.parse_settings(mock_settings(authority))))
    base = f"{PUBLIC}/mock/{tenant['id']}/{authority}{placeholder.path.rstrip('/')}"
    async with api:
        invoice = await certify(api, real_invoice(authority))
        assert invoice["status"] == "certified"
        calls = (await api.get("/v1/audit", params={"kind": "authority_call"})).json()["items"]
    assert calls and all(c["url"].startswith(base + "/") for c in calls), [c["url"] for c in calls]


PRIVATE_PATHS = [
    "_sim/state",
    "_sim/faults",
    "_sim/drafts",
    "_sim/documents/X",
    "ws/external/invoices/sign",
    "fr/verification",
    "fr/verification/",
    "fr/verification/abc/_sim/faults",
    "fr/verification/..%2F_sim%2Fstate",
    "",
]


@pytest.mark.parametrize("path", PRIVATE_PATHS)
async def test_only_public_pages_are_forwarded(public_app: FastAPI, path: str) -> None:
    tenant, api, counter, _ = await real_tenant(public_app, "ci-fne")
    async with client(public_app, None) as anyone:
        r = await anyone.get(f"/mock/{tenant['id']}/ci-fne/{path}")
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "mock.page_not_found"
    assert counter.calls == []  # the simulator never saw it
    await api.aclose()


async def test_only_get_is_forwarded(public_app: FastAPI) -> None:
    tenant, api, counter, injector = await real_tenant(public_app, "ci-fne")
    async with api:
        cert = (await certify(api, real_invoice("ci-fne")))["certification"]
    counter.calls.clear()
    injector.add("error", path="/never", times=-1)
    async with client(public_app, None) as anyone:
        for method in ("POST", "PUT", "DELETE"):
            r = await anyone.request(method, path_of(cert["verification_url"]))
            assert r.status_code == 405 and r.json()["kind"] == "_Unhandled", r.text
        r = await anyone.delete(f"/mock/{tenant['id']}/ci-fne/_sim/faults")
        assert r.status_code == 405
    assert counter.calls == [] and len(injector.faults) == 1  # the queued fault is still there


@pytest.mark.parametrize(
    ("who", "authority", "code"),
    [
        ("unknown-tenant", "ci-fne", "mock.page_not_found"),
        ("tenant", "xx-nope", "mock.page_not_found"),
        ("tenant", "bj-emecef", "mock.page_not_found"),
        ("tenant", "cg-sfec", "mock.page_not_found"),
    ],
)
async def test_unknown_tenant_or_authority_is_not_found(
    public_app: FastAPI, who: str, authority: str, code: str
) -> None:
    tenant, api = await fne_tenant(public_app)
    async with api:
        token = (await certify(api, real_invoice("ci-fne")))["certification"]["verification_url"].rsplit(
            "/", 1
        )[1]
    for other in ("bj-emecef", "cg-sfec"):  # running simulators: they still have no public page
        install_simulator(public_app, tenant["id"], other)
    tenant_id = tenant["id"] if who == "tenant" else "0" * 32
    async with client(public_app, None) as anyone:
        r = await anyone.get(f"/mock/{tenant_id}/{authority}/fr/verification/{token}")
    assert r.status_code == 404 and r.json()["code"] == code, r.text


async def test_the_route_wakes_a_configured_simulator_only(public_app: FastAPI) -> None:
    """After a restart no simulator runs until a call needs it: the page wakes the tenant's own
    (from the memory the database keeps), and never one for a tenant without mock settings."""
    tenant, api = await fne_tenant(public_app)  # FNE configured in mock, but nothing certified yet
    other, other_api = await new_tenant(public_app)  # no FNE settings at all
    await api.aclose()
    await other_api.aclose()
    async with client(public_app, None) as anyone:
        r = await anyone.get(f"/mock/{tenant['id']}/ci-fne/fr/verification/abc")
        # One answer for an unknown token and a tenant without a simulator (issue 14).
        assert r.status_code == 404 and r.json()["code"] == "mock.page_not_found"
        r = await anyone.get(f"/mock/{other['id']}/ci-fne/fr/verification/abc")
        assert r.status_code == 404 and r.json()["code"] == "mock.page_not_found"
    assert gateway(public_app).simulators.find(tenant["id"], "ci-fne") is not None
    assert gateway(public_app).simulators.find(other["id"], "ci-fne") is None


async def test_mock_pages_only_under_their_tenant(public_app: FastAPI) -> None:
    """Tenant isolation for the key-less route: A's page is not served under B's prefix, whether B
    has a simulator of its own (which does not know A's token) or none."""
    a, api_a = await fne_tenant(public_app)
    b, api_b = await fne_tenant(public_app)
    async with api_a:
        url = (await certify(api_a, real_invoice("ci-fne")))["certification"]["verification_url"]
    under_b = path_of(url).replace(f"/mock/{a['id']}/", f"/mock/{b['id']}/")
    async with client(public_app, None) as anyone:
        assert (await anyone.get(path_of(url))).status_code == 200
        r = await anyone.get(under_b)
        # B's simulator is woken from its stored state (mock survives a restart): it does not know
        # A's token, and says so with the one 404 (issue 14)
        assert r.status_code == 404 and r.json()["code"] == "mock.page_not_found"
        async with api_b:
            await certify(api_b, real_invoice("ci-fne"))  # B's simulator now runs
        r = await anyone.get(under_b)
        assert r.status_code == 404 and r.json()["code"] == "mock.page_not_found"


async def test_fault_injection_still_works_under_the_mount(
    public_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fiscalgate.gateway.api.mock_pages as mock_pages

    tenant, api, counter, injector = await real_tenant(public_app, "ci-fne")
    async with api:
        # FNE's own error shape (a bare body would read as a proxy's answer: ci_fne/client.py)
        fne_503 = {"message": "down", "error": "Service Unavailable", "statusCode": 503}
        injector.add("error", path="/ws/external/invoices/sign", status=503, body=fne_503)
        created = await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne"), "approve": True})
        r = await api.post(f"/v1/invoices/{created.json()['id']}/certify")
        # the fault answered (FNE: a 5xx after sending leaves the outcome unknown)
        assert (r.json()["authority_http_status"], r.json()["authority_message"]) == (503, "down"), r.text
        url = (await certify(api, real_invoice("ci-fne")))["certification"]["verification_url"]
    assert counter.calls[0] == ("POST", f"/mock/{tenant['id']}/ci-fne/ws/external/invoices/sign")

    monkeypatch.setattr(mock_pages, "FORWARD_TIMEOUT", 0.2)
    injector.add("drop_before_processing", path="/fr/verification/")
    async with client(public_app, None) as anyone:
        r = await anyone.get(path_of(url))
        assert r.status_code == 504 and r.json()["code"] == "mock.page_unavailable", r.text
        assert (await anyone.get(path_of(url))).status_code == 200  # the fault was used up


async def test_replay_of_a_call_made_under_the_mount(public_app: FastAPI) -> None:
    _, api = await fne_tenant(public_app)
    async with api:
        await certify(api, real_invoice("ci-fne"))
        call = (await api.get("/v1/audit", params={"kind": "authority_call"})).json()["items"][0]
        r = await api.post(f"/v1/audit/{call['id']}/replay")
    assert r.status_code == 200, r.text
    assert r.json()["response_status"] == 200 and r.json()["url"] == call["url"]


async def test_without_a_public_url_nothing_changes(
    make_app: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PUBLIC_URL_ENV, raising=False)
    app = make_app()
    assert gateway(app).public_url is None
    tenant, api = await fne_tenant(app)
    async with api:
        cert = (await certify(api, real_invoice("ci-fne")))["certification"]
        calls = (await api.get("/v1/audit", params={"kind": "authority_call"})).json()["items"]
    assert cert["verification_url"].startswith("http://ci-fne.mock/fr/verification/")
    assert [c["url"] for c in calls] == ["http://ci-fne.mock/ws/external/invoices/sign"]
    # The page route exists but the URLs never point at it; the simulator still answers it.
    token = cert["verification_url"].rsplit("/", 1)[1]
    async with client(app, None) as anyone:
        r = await anyone.get(f"/mock/{tenant['id']}/ci-fne/fr/verification/{token}")
    assert r.status_code == 200 and cert["reference"] in r.text


def test_public_url_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PUBLIC_URL_ENV, "https://fiscal.example.com/gw/")
    app = create_app(f"sqlite:///{tmp_path}/p.db", admin_token="x", secret_key=Fernet.generate_key())
    assert gateway(app).public_url == "https://fiscal.example.com/gw"
    gateway(app).db.dispose()
    monkeypatch.setenv(PUBLIC_URL_ENV, "ftp://nope")
    with pytest.raises(ConfigurationError, match="public URL"):
        create_app(f"sqlite:///{tmp_path}/p.db", admin_token="x", secret_key=Fernet.generate_key())


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:1", "http://h:1"),
        ("http://h:1/", "http://h:1"),
        (" https://h/base/ ", "https://h/base"),
    ],
)
def test_normalise_public_url(url: str, expected: str) -> None:
    assert normalise_public_url(url) == expected


@pytest.mark.parametrize("url", ["h:1", "http://", "mailto:a@b", "http://h/?q=1", "http://h/#f", "/path"])
def test_normalise_public_url_refuses(url: str) -> None:
    with pytest.raises(ConfigurationError):
        normalise_public_url(url)


WITH_PAGES = [code for code in REAL if descriptor(code).simulator_pages]


@pytest.mark.parametrize("authority", WITH_PAGES)
async def test_each_authoritys_verification_url_opens_through_the_gateway(
    public_app: FastAPI, authority: str
) -> None:
    """Every authority whose descriptor lists public simulator pages: the verification URL of a
    mock certification is one of them, and the gateway serves it without a key."""
    tenant, api = await new_tenant(
        public_app, country=descriptor(authority).country, settings={authority: mock_settings(authority)}
    )
    async with api:
        invoice = await certify(api, real_invoice(authority))
    url = invoice["certification"]["verification_url"]
    prefix = f"/mock/{tenant['id']}/{authority}/"
    assert path_of(url).startswith(prefix), url
    assert any(page.fullmatch(path_of(url)[len(prefix) :]) for page in descriptor(authority).page_patterns())
    async with client(public_app, None) as anyone:
        page = await anyone.get(path_of(url))
    assert page.status_code == 200, page.text
    assert invoice["reference"] in page.text
