"""The simulator on its own: independence from the client side, platform rules, formats, controls."""

from __future__ import annotations

import ast
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from fiscalgate.authorities.ci_fne.simulator import cli as sim_cli
from fiscalgate.authorities.ci_fne.simulator.app import DEFAULT_API_KEY, create_app, make_simulator
from fiscalgate.authorities.ci_fne.simulator.state import Platform, Taxpayer, half_up, uuid7

pytestmark = pytest.mark.anyio

SIMULATOR = Path(__file__).parents[3] / "src/fiscalgate/authorities/ci_fne/simulator"
AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}

SALE: dict[str, Any] = {
    "invoiceType": "sale",
    "paymentMethod": "cash",
    "template": "B2C",
    "clientCompanyName": "Client comptant",
    "clientPhone": "0102030405",
    "clientEmail": "client@example.ci",
    "pointOfSale": "Caisse 1",
    "establishment": "Siège Plateau",
    "items": [
        {"taxes": ["TVA"], "description": "pain", "quantity": 3, "amount": 250},
        {"taxes": ["TVAB"], "description": "lait", "quantity": 1.5, "amount": 1077.275, "discount": 5},
    ],
}


def forbidden_imports(source: str) -> list[str]:
    """Imports a simulator module may not have: anything of fiscalgate but simkit and itself."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 1:
                bad.append("." * node.level + (node.module or ""))
                continue
            names = [node.module or ""] if node.level == 0 else []
        for name in names:
            allowed = ("fiscalgate.simkit", "fiscalgate.authorities.ci_fne.simulator")
            if name.startswith("fiscalgate") and not name.startswith(allowed):
                bad.append(name)
    return bad


def test_simulator_imports_nothing_from_the_client_side() -> None:
    files = sorted(SIMULATOR.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "state.py", "app.py", "cli.py"}
    for path in files:
        assert forbidden_imports(path.read_text(encoding="utf-8")) == [], path.name


@pytest.mark.parametrize(
    "source",
    [
        "from fiscalgate.authorities.ci_fne import regime",
        "import fiscalgate.core.money",
        "from fiscalgate.authorities.base import Environment",
        "from ..convert import compute_totals",
        "from fiscalgate.authorities.ci_fne.schemas import SignRequest",
    ],
)
def test_the_import_rule_catches_violations(source: str) -> None:
    assert forbidden_imports(source) != []


def client(app: Any, host: str = "fne.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")


async def test_sign_response_shape_and_formats() -> None:
    app = make_simulator()
    async with client(app, "portal.example:8080") as http:
        response = await http.post("/ws/external/invoices/sign", json=SALE, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ncc", "reference", "token", "warning", "balance_sticker", "invoice"}
    invoice = body["invoice"]
    token = uuid.UUID(invoice["token"])
    assert token.version == 7 and token.variant == uuid.RFC_4122
    assert body["token"] == f"http://portal.example:8080/fr/verification/{invoice['token']}"
    assert uuid.UUID(invoice["id"]).version == 4
    documented = {
        "id", "parentId", "parentReference", "token", "reference", "type", "subtype", "date", "paymentMethod",
        "amount", "vatAmount", "fiscalStamp", "discount", "clientNcc", "clientCompanyName", "clientPhone",
        "clientEmail", "clientTerminal", "clientMerchantName", "clientRccm", "clientSellerName",
        "clientEstablishment", "clientPointOfSale", "status", "template", "description", "footer",
        "commercialMessage", "foreignCurrency", "foreignCurrencyRate", "isRne", "rne", "source",
        "createdAt", "updatedAt", "items", "customTaxes",
    }  # fmt: skip
    assert set(invoice) == documented
    assert (invoice["type"], invoice["subtype"], invoice["source"]) == ("invoice", "normal", "api")
    assert invoice["date"].endswith("Z") and len(invoice["date"]) == 24
    item = invoice["items"][1]
    assert item["amount"] == 1077.275 and item["quantity"] == 1.5  # echoed as sent
    assert item["taxes"][0]["shortName"] == "TVAB" and item["taxes"][0]["amount"] == 9
    # 750 + 1.5 x 1077.275 x 0.95 = 2285.11... -> HT 2285; VAT 135 + 138.2 -> 135 + 138
    assert (invoice["amount"], invoice["vatAmount"]) == (2285 + 135 + 138, 135 + 138)


def test_references_are_per_year_uninterrupted_series() -> None:
    now = [datetime(2025, 12, 31, 23, 59, tzinfo=UTC)]
    platform = Platform(clock=lambda: now[0])
    taxpayer = platform.add_taxpayer(Taxpayer("9606123E", "k", ["Siège Plateau"], ["Caisse 1"]))
    refs = [platform.sign(taxpayer, SALE, "http://x").body["reference"] for _ in range(2)]
    assert refs == ["9606123E25000000001", "9606123E25000000002"]
    purchase = {
        **SALE,
        "invoiceType": "purchase",
        "items": [{"description": "cacao", "quantity": 2, "amount": 1500}],
    }
    assert platform.sign(taxpayer, purchase, "http://x").body["reference"] == "9606123E25000000003"
    invoice_id = next(d.id for d in platform.documents.values() if d.reference == refs[0])
    item_id = platform.documents[invoice_id].lines[0].id
    refund = platform.refund(taxpayer, invoice_id, {"items": [{"id": item_id, "quantity": 1}]}, "http://x")
    assert (refund.status, refund.body["reference"]) == (201, "A9606123E2500000001")
    assert set(refund.body) == {"ncc", "reference", "token", "warning", "balance_sticker"}
    now[0] = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)  # the series restart each year
    assert platform.sign(taxpayer, SALE, "http://x").body["reference"] == "9606123E26000000001"


def test_refund_rules() -> None:
    platform = Platform()
    taxpayer = platform.add_taxpayer(Taxpayer("9606123E", "k", ["Siège Plateau"], ["Caisse 1"]))
    signed = platform.sign(taxpayer, SALE, "http://x").body["invoice"]
    a, b = (it["id"] for it in signed["items"])

    def refund(body: Any, invoice_id: str = signed["id"]) -> tuple[int, dict[str, Any]]:
        reply = platform.refund(taxpayer, invoice_id, body, "http://x")
        return reply.status, reply.body.get("errors", {})

    assert refund({}) == (400, {"items": {"required": "items is required"}})
    assert refund({"items": []})[1] == {"items": {"invalid": "items must be a non-empty array"}}
    assert refund({"items": [{"id": "nope", "quantity": 1}]})[1] == {
        "items.0.id": {"notFound": "Item not found on this invoice"}
    }
    assert "items.0.quantity" in refund({"items": [{"id": a, "quantity": 0}]})[1]
    assert "items.0.quantity" in refund({"items": [{"id": a}]})[1]
    # the same item twice in one request counts cumulatively (3 sold)
    assert "items.1.quantity" in refund({"items": [{"id": a, "quantity": 2}, {"id": a, "quantity": 2}]})[1]
    assert refund({"items": [{"id": a, "quantity": 2}, {"id": b, "quantity": 0.5}]})[0] == 201
    assert refund({"items": [{"id": a, "quantity": 1}, {"id": b, "quantity": 1}]})[0] == 201
    status, errors = refund({"items": [{"id": a, "quantity": 1}]})
    assert status == 400 and "left to refund (0)" in errors["items.0.quantity"]["invalid"]
    assert refund({"items": [{"id": a, "quantity": 1}]}, "not-an-invoice")[0] == 404
    assert taxpayer.stickers == 1000 - 1 - 2


def test_purchase_slips_cannot_be_refunded() -> None:
    platform = Platform()
    taxpayer = platform.add_taxpayer(Taxpayer("9606123E", "k", ["Siège Plateau"], ["Caisse 1"]))
    purchase = {
        **SALE,
        "invoiceType": "purchase",
        "items": [{"description": "cacao", "quantity": 2, "amount": 1500}],
    }
    signed = platform.sign(taxpayer, purchase, "http://x").body["invoice"]
    reply = platform.refund(
        taxpayer, signed["id"], {"items": [{"id": signed["items"][0]["id"], "quantity": 1}]}, "x"
    )
    assert reply.status == 400 and "id" in reply.body["errors"]


async def test_auth_is_checked_before_validation() -> None:
    app = make_simulator()
    async with client(app) as http:
        for headers in ({}, {"Authorization": DEFAULT_API_KEY}, {"Authorization": "Bearer nope"}):
            response = await http.post("/ws/external/invoices/sign", json={}, headers=headers)
            assert response.status_code == 401
            assert response.json() == {
                "message": "Invalid API Key",
                "error": "unauthorized",
                "statusCode": 401,
                "errors": {},
            }
        assert (await http.post("/ws/external/invoices/x/refund", json={})).status_code == 401


async def test_verification_url_follows_a_mount_prefix() -> None:
    """Mounted under a prefix (ASGI root_path, as the gateway does in mock), the simulator hands out
    verification URLs under that prefix, and serves the page there."""
    transport = httpx.ASGITransport(app=make_simulator(), root_path="/mock/t1/ci-fne")
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.example/mock/t1/ci-fne") as http:
        body = (await http.post("/ws/external/invoices/sign", json=SALE, headers=AUTH)).json()
        token = body["invoice"]["token"]
        assert body["token"] == f"http://gw.example/mock/t1/ci-fne/fr/verification/{token}"
        page = await http.get(f"/fr/verification/{token}")
    assert page.status_code == 200 and body["reference"] in page.text


async def test_verification_page_and_controls() -> None:
    app = make_simulator(stickers=3)
    async with client(app) as http:
        signed = (await http.post("/ws/external/invoices/sign", json=SALE, headers=AUTH)).json()
        page = await http.get(f"/fr/verification/{signed['invoice']['token']}")
        assert page.status_code == 200 and "Facture de vente Nº" in page.text and "TOTAL A PAYER" in page.text
        assert (await http.get("/fr/verification/unknown")).status_code == 404
        state = (await http.get("/_sim/state")).json()
        assert state["taxpayers"][0]["stickers"] == 2 and state["documents"] == 1
        assert (await http.post("/_sim/stickers", json={"balance": -1})).status_code == 400
        await http.post("/_sim/stickers", json={"balance": 0})
        failed = await http.post("/ws/external/invoices/sign", json=SALE, headers=AUTH)
        assert failed.status_code == 500 and failed.json()["error"] == "invoice_signing_error"
        assert len((await http.get("/_sim/drafts")).json()["drafts"]) == 1
        assert (await http.get("/_sim/documents/unknown")).status_code == 404
        # simkit's fault controls are there too
        assert (await http.post("/_sim/faults", json={"kind": "error", "status": 503})).status_code == 201
        assert (await http.post("/ws/external/invoices/sign", json=SALE, headers=AUTH)).status_code == 503


def test_half_up_and_uuid7() -> None:
    from fractions import Fraction

    assert [half_up(Fraction(x)) for x in ("53527.5", "3102.5", "3102.49", "0.5", "-0.5")] == [
        53528,
        3103,
        3102,
        1,
        -1,
    ]
    moment = datetime(2025, 1, 14, 16, 59, 11, tzinfo=UTC)
    token = uuid7(moment)
    assert int(token.replace("-", "")[:12], 16) == int(moment.timestamp() * 1000)
    assert token.startswith("01946")  # same era as the DOC's 019465c1-3f61-766c-… tokens


def test_simulate_command_prints_the_taxpayer(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[tuple[Any, str, int]] = []
    monkeypatch.setattr(sim_cli, "run_forever", lambda app, host, port: served.append((app, host, port)))
    result = CliRunner().invoke(
        sim_cli.simulate_fne,
        ["--port", "9100", "--ncc", "1304777N", "--api-key", "K" * 32, "--stickers", "7",
         "--establishment", "A", "--establishment", "B", "--point-of-sale", "P1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for text in ("1304777N", "K" * 32, "http://127.0.0.1:9100/ws", "A, B", "P1", "7"):
        assert text in result.output
    ((app, host, port),) = served
    taxpayer = next(iter(app.platform.taxpayers.values()))
    assert (taxpayer.establishments, taxpayer.points_of_sale, taxpayer.stickers) == (["A", "B"], ["P1"], 7)
    assert (host, port) == ("127.0.0.1", 9100)


def test_create_app_serves_several_taxpayers() -> None:
    platform = Platform()
    platform.add_taxpayer(Taxpayer("9606123E", "a", ["E"], ["P"]))
    platform.add_taxpayer(Taxpayer("1304777N", "b", ["E"], ["P"]))
    app = create_app(platform)
    assert app.platform.authenticate("Bearer b").ncc == "1304777N"  # type: ignore[union-attr]
    assert app.platform.authenticate("bearer a").ncc == "9606123E"  # type: ignore[union-attr]
    assert app.platform.authenticate("Basic a") is None
    platform.add_taxpayer(Taxpayer("1234567A", "", ["E"], ["P"]))  # misconfigured: empty key
    assert platform.authenticate("Bearer") is None and platform.authenticate("Bearer   ") is None


@pytest.mark.parametrize(
    ("changes", "status", "field"),
    [
        (
            {
                "invoiceType": "purchase",
                "items": [{"taxes": [], "description": "cacao", "quantity": 2, "amount": 1}],
            },
            200,
            None,
        ),
        (
            {
                "invoiceType": "purchase",
                "foreignCurrencyRate": "",
                "items": [{"description": "c", "quantity": 1, "amount": 1}],
            },
            200,
            None,
        ),
        ({"template": "B2F", "foreignCurrency": "EUR", "foreignCurrencyRate": "655.957"}, 200, None),
        (
            {"template": "B2F", "foreignCurrency": "EUR", "foreignCurrencyRate": "abc"},
            400,
            "foreignCurrencyRate",
        ),
        ({"clientNcc": "9502363N", "isRne": False, "discount": 0, "customTaxes": []}, 200, None),
        ({"isRne": "yes"}, 400, "isRne"),
    ],
    ids=[
        "purchase-empty-taxes",
        "purchase-empty-rate",
        "rate-as-string",
        "rate-not-a-number",
        "sdk-defaults",
        "isrne-type",
    ],
)
def test_bodies_other_fne_clients_send(changes: dict[str, Any], status: int, field: str | None) -> None:
    """Shapes seen in third-party SDKs (spec §6.4, §13) are judged the way the platform would."""
    platform = Platform()
    taxpayer = platform.add_taxpayer(Taxpayer("9606123E", "k", ["Siège Plateau"], ["Caisse 1"]))
    reply = platform.sign(taxpayer, {**SALE, **changes}, "http://x")
    assert reply.status == status, reply.body
    if field is not None:
        assert field in reply.body["errors"]


async def test_unknown_routes_answer_in_the_platform_error_shape() -> None:
    app = make_simulator()
    async with client(app) as http:
        missing = await http.post("/ws/external/invoice/sign", json=SALE, headers=AUTH)
        wrong_method = await http.get("/ws/external/invoices/sign", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json() == {
        "message": "Cannot POST /ws/external/invoice/sign",
        "error": "Not Found",
        "statusCode": 404,
        "errors": {},
    }
    assert wrong_method.status_code == 405 and wrong_method.json()["statusCode"] == 405
    assert wrong_method.headers["allow"] == "POST"


async def test_vat_rate_ids_are_the_platforms_published_ones() -> None:
    """TVA and TVAC carry the ids of the DGI's DOC example; TVAB and TVAD stable ids of our own."""
    sale = {
        **SALE,
        "items": [{**SALE["items"][0], "taxes": [code]} for code in ("TVA", "TVAB", "TVAC", "TVAD")],
    }
    answers = []
    for _ in range(2):  # two fresh simulators: the ids do not change from one run to the next
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=make_simulator()), base_url="http://fne.test"
        ) as http:
            r = await http.post("/ws/external/invoices/sign", json=sale, headers=AUTH)
        assert r.status_code == 200, r.text
        answers.append(
            {t["shortName"]: t["vatRateId"] for i in r.json()["invoice"]["items"] for t in i["taxes"]}
        )
    assert answers[0] == answers[1]
    assert answers[0]["TVA"] == "cdb6c5b2-5f35-407d-b5f6-c712a0792451"
    assert answers[0]["TVAC"] == "26b4c615-0c23-4084-803a-722e946779c8"
    assert len(set(answers[0].values())) == 4
