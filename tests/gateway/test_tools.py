"""What the authorities offer besides certifying, through the gateway (gateway/tools): the list of
authorities and their capabilities, the connection test of saved settings, the information
topics, the report of a certified invoice. In-process (the tenant's built-in simulator) and over
real sockets (the gateway served, the simulators run apart)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fiscalgate.authorities import descriptor, descriptors, get_driver
from fiscalgate.authorities.capabilities import CONNECTION_TEST, INFORMATION, REPORT, capabilities
from fiscalgate.simkit.serve import free_port, serve_in_thread
from tests.gateway.conftest import REAL, mock_settings, new_tenant, real_invoice, real_tenant

pytestmark = pytest.mark.anyio

TESTABLE = [c for c in REAL if CONNECTION_TEST in capabilities(get_driver(c))]
NOT_TESTABLE = [c for c in REAL if CONNECTION_TEST not in capabilities(get_driver(c))]
REPORTING = [c for c in REAL if REPORT in capabilities(get_driver(c))]
NOT_REPORTING = [c for c in REAL if REPORT not in capabilities(get_driver(c))]


async def entries(api: httpx.AsyncClient, ids: list[str]) -> list[dict[str, Any]]:
    found = []
    for entry_id in ids:
        r = await api.get(f"/v1/audit/{entry_id}")
        assert r.status_code == 200, r.text
        found.append(r.json())
    return found


# --- the registry ---------------------------------------------------------------------------------
async def test_every_authority_is_listed_with_what_its_driver_offers(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app()
    first = descriptors()[0]
    _, api = await new_tenant(app, country=first.country)
    async with api:
        listed = (await api.get("/v1/authorities")).json()["items"]
        assert [a["code"] for a in listed] == list(REAL)
        for item in listed:
            driver = get_driver(item["code"])
            assert item["capabilities"] == capabilities(driver)
            assert (item["connection_test"] is not None) == (CONNECTION_TEST in item["capabilities"])
            assert (item["information"] is not None) == (INFORMATION in item["capabilities"])
            assert (item["report"] is not None) == (REPORT in item["capabilities"])
            assert item["available"] == (item["country"] == first.country)
        # by code, module or alias; an unknown one is a 404 in the one error shape
        one = (await api.get(f"/v1/authorities/{first.module}")).json()
        assert one["code"] == first.code and one["available"] is True
        missing = await api.get("/v1/authorities/atlantis-tax")
        assert missing.status_code == 404 and missing.json()["code"] == "authority.not_found"


async def test_emecef_publishes_its_information_topics(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    _, api = await new_tenant(app)
    async with api:
        info = (await api.get("/v1/authorities/bj-emecef")).json()["information"]
    assert [t["name"] for t in info["topics"]] == ["status", "taxGroups", "invoiceTypes", "paymentTypes"]
    assert info["topics"][1]["call"] == "GET /api/info/taxGroups"


# --- the connection test --------------------------------------------------------------------------
@pytest.mark.parametrize("authority", TESTABLE)
async def test_the_connection_test_makes_one_audited_harmless_call(
    make_app: Callable[..., FastAPI], authority: str
) -> None:
    app = make_app()
    _, api, counter, _ = await real_tenant(app, authority)
    async with api:
        r = await api.post(f"/v1/settings/{authority}/test")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["result"] == "ok" and body["authority"] == authority and body["environment"] == "mock"
        assert body["call"].startswith("GET ") and body["summary"]
        assert counter.calls and all(method == "GET" for method, _ in counter.calls)  # nothing written
        (entry,) = await entries(api, body["audit_entry_ids"])
        assert entry["kind"] == "authority_call" and entry["event"] == "settings.test"
        assert entry["response_status"] == 200 and entry["method"] == "GET"
        secrets = get_driver(authority).parse_settings(mock_settings(authority)).secrets()
        shown = str(entry)
        assert secrets and not any(s in shown for s in secrets)  # masked


async def test_a_refused_emecef_token_answers_401_in_the_error_body(make_app: Callable[..., FastAPI]) -> None:
    from fiscalgate.authorities.bj_emecef.simulator.state import mint_token

    app = make_app()
    _, api, _, _ = await real_tenant(app, "bj-emecef")
    async with api:
        settings = (await api.get("/v1/settings/bj-emecef")).json()["settings"]
        forged = mint_token(settings["ifu"], "TS01000001", "not-the-dgi-secret")
        assert (await api.put("/v1/settings/bj-emecef", json={"token": forged})).status_code == 200
        r = await api.post("/v1/settings/bj-emecef/test")
        body = r.json()
        assert r.status_code == 502 and body["kind"] == "AuthorityAuthError", r.text
        assert body["code"] == "authority.auth.token_refused" and body["authority_http_status"] == 401
        assert body["resolution"] == "fix_configuration" and forged not in r.text
        calls = (await api.get("/v1/audit", params={"kind": "authority_call"})).text
        assert '"response_status":401' in calls.replace(" ", "") and forged not in calls


async def test_a_wrong_sfec_key_carries_sfecs_code_and_text(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    _, api, _, _ = await real_tenant(app, "cg-sfec")
    async with api:
        await api.put("/v1/settings/cg-sfec", json={"api_key": "wrong-key-0123456789"})
        r = await api.post("/v1/settings/cg-sfec/test")
    body = r.json()
    assert r.status_code == 502 and body["kind"] == "AuthorityAuthError"
    assert (body["authority_code"], body["authority_http_status"]) == ("UNAUTHORIZED", 401)
    assert body["authority_message"] == "Clé d’authentification invalide ou manquante"
    assert "wrong-key-0123456789" not in r.text


@pytest.mark.parametrize("authority", TESTABLE)
async def test_an_unreachable_platform_is_a_503(make_app: Callable[..., FastAPI], authority: str) -> None:
    app = make_app()
    nowhere = f"http://127.0.0.1:{free_port()}"
    _, api = await new_tenant(
        app,
        country=descriptor(authority).country,
        settings={authority: mock_settings(authority, base_url=nowhere)},
    )
    async with api:
        r = await api.post(f"/v1/settings/{authority}/test")
        body = r.json()
        assert r.status_code == 503 and body["kind"] == "AuthorityUnreachable", r.text
        assert body["retryable"] is True and body["authority"] == authority
        # the attempt is audited too, as "no response"
        calls = (await api.get("/v1/audit", params={"kind": "authority_call"})).json()
        calls = calls["items"] if isinstance(calls, dict) else calls
        assert calls[0]["event"] == "settings.test" and calls[0]["outcome"].startswith("no response")


@pytest.mark.parametrize("authority", NOT_TESTABLE)
async def test_no_harmless_call_is_a_precise_422(make_app: Callable[..., FastAPI], authority: str) -> None:
    app = make_app()
    _, api, counter, _ = await real_tenant(app, authority)
    async with api:
        r = await api.post(f"/v1/settings/{authority}/test")
    assert r.status_code == 422 and r.json()["code"] == "authority.capability_missing", r.text
    assert r.json()["problems"][0]["field"] == "authority"
    assert counter.calls == []  # nothing sent


async def test_settings_missing_and_unknown_authority(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    _, api = await new_tenant(app, country="BJ")
    async with api:
        r = await api.post("/v1/settings/bj-emecef/test")
        assert r.status_code == 422 and r.json()["code"] == "settings.missing"
        r = await api.post("/v1/settings/atlantis/test")
        assert r.status_code == 404 and r.json()["code"] == "authority.not_found"


# --- information -----------------------------------------------------------------------------------
async def test_information_topics_with_the_tenants_credentials(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    _, api, counter, _ = await real_tenant(app, "bj-emecef")
    async with api:
        every = (await api.get("/v1/authorities/bj-emecef/info")).json()
        assert [i["topic"] for i in every["items"]] == ["status", "taxGroups", "invoiceTypes", "paymentTypes"]
        assert len(every["audit_entry_ids"]) == 4
        one = await api.get("/v1/authorities/emecef/info/taxGroups")
        assert one.status_code == 200, one.text
        assert one.json()["data"] == {"a": 0, "b": 18, "c": 0, "d": 18, "e": 0, "f": 0, "aibA": 1, "aibB": 5}
        assert (await api.get("/v1/authorities/bj-emecef/info/payment-types")).json()[
            "topic"
        ] == "paymentTypes"
        unknown = await api.get("/v1/authorities/bj-emecef/info/balance")
        assert unknown.status_code == 404 and unknown.json()["code"] == "info.topic_not_found"
        assert "taxGroups" in unknown.json()["message"]
        (entry,) = await entries(api, one.json()["audit_entry_ids"])
        assert entry["event"] == "authority.information" and entry["url"].endswith("/api/info/taxGroups")
    assert ("GET", "/api/info/taxGroups") in counter.calls


@pytest.mark.parametrize("authority", [c for c in REAL if INFORMATION not in capabilities(get_driver(c))])
async def test_information_from_an_authority_without_any(
    make_app: Callable[..., FastAPI], authority: str
) -> None:
    app = make_app()
    _, api, _, _ = await real_tenant(app, authority)
    async with api:
        r = await api.get(f"/v1/authorities/{authority}/info")
        assert r.status_code == 422 and r.json()["code"] == "authority.capability_missing"
        r = await api.get(f"/v1/authorities/{authority}/info/status")
        assert r.status_code == 422 and r.json()["code"] == "authority.capability_missing"


# --- report ----------------------------------------------------------------------------------------
async def certified(api: httpx.AsyncClient, authority: str) -> dict[str, Any]:
    created = await api.post("/v1/invoices", json={"invoice": real_invoice(authority), "approve": True})
    assert created.status_code == 201, created.text
    r = await api.post(f"/v1/invoices/{created.json()['id']}/certify")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


@pytest.mark.parametrize("authority", REPORTING)
async def test_a_certified_invoice_is_reported_once(make_app: Callable[..., FastAPI], authority: str) -> None:
    app = make_app()
    _, api, counter, _ = await real_tenant(app, authority)
    async with api:
        invoice = await certified(api, authority)
        r = await api.post(f"/v1/invoices/{invoice['id']}/report")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["invoice_id"] == invoice["id"] and body["acknowledgement"]["reference"]
        (entry,) = await entries(api, body["audit_entry_ids"])
        assert entry["event"] == "invoice.report" and entry["invoice_id"] == invoice["id"]
        assert entry["method"] == "POST" and entry["response_status"] == 201
        assert sum(1 for m, p in counter.calls if m == "POST" and p.endswith("/report/api")) == 1
        again = await api.post(f"/v1/invoices/{invoice['id']}/report")
        error = again.json()
        # the authority's own refusal, with its code; the invoice stays certified
        assert again.status_code == 409 and error["authority_code"] == "ALREADY_REPORTED", again.text
        assert (error["invoice_id"], error["invoice_status"]) == (invoice["id"], "certified")
        assert (await api.get(f"/v1/invoices/{invoice['id']}")).json()["status"] == "certified"


@pytest.mark.parametrize("authority", REPORTING)
async def test_only_a_certified_invoice_is_reported(make_app: Callable[..., FastAPI], authority: str) -> None:
    app = make_app()
    _, api, counter, _ = await real_tenant(app, authority)
    async with api:
        draft = (await api.post("/v1/invoices", json={"invoice": real_invoice(authority)})).json()
        r = await api.post(f"/v1/invoices/{draft['id']}/report")
        body = r.json()
        assert r.status_code == 409 and body["code"] == "invoice.not_certified", r.text
        assert (body["invoice_id"], body["invoice_status"]) == (draft["id"], "draft")
        assert (await api.post("/v1/invoices/nope/report")).status_code == 404
    assert counter.calls == []


@pytest.mark.parametrize("authority", NOT_REPORTING)
async def test_an_authority_without_report(make_app: Callable[..., FastAPI], authority: str) -> None:
    app = make_app()
    _, api, _, _ = await real_tenant(app, authority)
    async with api:
        invoice = await certified(api, authority)
        r = await api.post(f"/v1/invoices/{invoice['id']}/report")
    assert r.status_code == 422 and r.json()["code"] == "authority.capability_missing", r.text


@pytest.mark.parametrize("authority", REPORTING)
async def test_a_report_goes_where_the_invoice_was_certified(
    make_app: Callable[..., FastAPI], authority: str
) -> None:
    app = make_app()
    _, api, counter, _ = await real_tenant(app, authority)
    async with api:
        invoice = await certified(api, authority)
        sandbox = get_driver(authority).mock_credentials()
        assert (
            await api.put(f"/v1/settings/{authority}", json={**sandbox, "environment": "sandbox"})
        ).status_code == 200
        before = len(counter.calls)
        r = await api.post(f"/v1/invoices/{invoice['id']}/report")
    assert r.status_code == 422 and r.json()["code"] == "report.environment", r.text
    assert len(counter.calls) == before


async def test_another_tenants_invoice_and_settings_stay_out_of_reach(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app()
    authority = REPORTING[0]
    _, api_a, _, _ = await real_tenant(app, authority)
    _, api_b = await new_tenant(app, country="CI")
    async with api_a, api_b:
        invoice = await certified(api_a, authority)
        r = await api_b.post(f"/v1/invoices/{invoice['id']}/report")
        assert r.status_code == 404 and r.json()["code"] == "invoice.not_found"
        # B has no settings of its own: A's are never used for B's test or information
        r = await api_b.post(f"/v1/settings/{authority}/test")
        assert r.status_code == 422 and r.json()["code"] in (
            "settings.missing",
            "settings.authority_unavailable",
        )
        b_calls = (await api_b.get("/v1/audit", params={"kind": "authority_call"})).json()
        assert (b_calls["items"] if isinstance(b_calls, dict) else b_calls) == []


def test_openapi_lists_the_authority_statuses_of_the_new_routes(make_app: Callable[..., FastAPI]) -> None:
    paths = make_app().openapi()["paths"]
    for path, method in [
        ("/v1/settings/{authority}/test", "post"),
        ("/v1/authorities/{authority}/info", "get"),
        ("/v1/authorities/{authority}/info/{topic}", "get"),
        ("/v1/invoices/{invoice_id}/report", "post"),
    ]:
        listed = set(paths[path][method]["responses"])
        assert {
            "200",
            "401",
            "404",
            "409" if method == "post" else "404",
            "422",
            "502",
            "503",
            "504",
        } <= listed
    assert "404" in paths["/v1/authorities/{authority}"]["get"]["responses"]


# --- over sockets: the gateway served, the simulators run apart -----------------------------------
@pytest.mark.socket
async def test_over_sockets(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    apps = {c: get_driver(c).mock_app(get_driver(c).parse_settings(mock_settings(c))) for c in REAL}
    with (
        serve_in_thread(apps["bj-emecef"]) as emecef,
        serve_in_thread(apps["cg-sfec"]) as sfec,
    ):
        tenant, _ = await new_tenant(
            app,
            modules=("mecef", "sfec"),
            settings={
                "bj-emecef": mock_settings("bj-emecef", base_url=emecef),
                "cg-sfec": mock_settings("cg-sfec", base_url=sfec),
            },
        )
        with serve_in_thread(app) as gateway_url:
            headers = {"Authorization": f"Bearer {tenant['key']}"}
            async with httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=30) as api:
                for code in ("bj-emecef", "cg-sfec"):
                    r = await api.post(f"/v1/settings/{code}/test")
                    assert r.status_code == 200 and r.json()["result"] == "ok", r.text
                topic = await api.get("/v1/authorities/bj-emecef/info/invoiceTypes")
                assert [t["type"] for t in topic.json()["data"]] == ["FV", "FA", "EV", "EA"]
                invoice = await certified(api, "cg-sfec")
                r = await api.post(f"/v1/invoices/{invoice['id']}/report")
                assert r.status_code == 200, r.text
                (entry,) = await entries(api, r.json()["audit_entry_ids"])
                assert entry["url"].startswith(sfec) and entry["url"].endswith("/api/invoices/report/api")


async def test_a_secret_quoted_in_a_drivers_error_is_masked(
    make_app: Callable[..., FastAPI], fakes: dict[str, Any]
) -> None:
    """A driver of our own whose test echoes the key (as a careless platform might): the answer
    and the audit log show it masked, like a certification's errors."""
    from fiscalgate.authorities.base import Connection
    from fiscalgate.authorities.capabilities import ConnectionReport, ConnectionTester
    from fiscalgate.core.errors import AuthorityAuthError
    from tests.gateway.conftest import FAKE_SETTINGS
    from tests.gateway.fake_driver import FakeDriver

    class Echoing(FakeDriver, ConnectionTester[Any]):
        connection_test_call = "GET /echo"

        async def test_connection(self, settings: Any, connection: Connection) -> ConnectionReport:
            key = settings.api_key.get_secret_value()
            raise AuthorityAuthError(
                f"key {key} refused", authority=self.code, authority_message=f"bad {key}"
            )

    echoing = Echoing("ci-fne")
    app = make_app(lambda code: echoing if code == "ci-fne" else fakes[code])
    _, api = await new_tenant(app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        listed = (await api.get("/v1/authorities/ci-fne")).json()
        assert (
            listed["capabilities"] == [CONNECTION_TEST] and listed["connection_test"]["call"] == "GET /echo"
        )
        r = await api.post("/v1/settings/ci-fne/test")
    assert r.status_code == 502 and r.json()["kind"] == "AuthorityAuthError"
    assert FAKE_SETTINGS["api_key"] not in r.text and "refused" in r.json()["message"]


@pytest.mark.parametrize("authority", TESTABLE)
async def test_settings_switched_off_can_be_tested_before_switching_them_on(
    make_app: Callable[..., FastAPI], authority: str
) -> None:
    app = make_app()
    _, api, _, _ = await real_tenant(app, authority)
    async with api:
        assert (await api.put(f"/v1/settings/{authority}", json={"active": False})).status_code == 200
        r = await api.post(f"/v1/settings/{authority}/test")
        assert r.status_code == 200 and r.json()["result"] == "ok", r.text
        # a certification (or a report) still refuses them
        created = await api.post("/v1/invoices", json={"invoice": real_invoice(authority), "approve": True})
        certify = await api.post(f"/v1/invoices/{created.json()['id']}/certify")
        assert certify.json()["code"] == "settings.inactive", certify.text
