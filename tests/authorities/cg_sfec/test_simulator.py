"""The simulator on its own: its rules, its error bodies, and its independence from the client."""

from __future__ import annotations

import ast
import base64
import copy
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from fiscalgate.authorities.cg_sfec.driver import SfecDriver
from fiscalgate.authorities.cg_sfec.settings import SfecSettings
from fiscalgate.authorities.cg_sfec.simulator import state
from fiscalgate.authorities.cg_sfec.simulator.app import Simulator, create_simulator

from .conftest import invoice_from

pytestmark = pytest.mark.anyio

SIMULATOR = Path(state.__file__).parent


def test_the_simulator_imports_nothing_from_the_client_side() -> None:
    allowed_prefixes = ("fiscalgate.simkit", "fiscalgate.authorities.cg_sfec.simulator")
    checked = 0
    for source in sorted(SIMULATOR.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0 or node.module is not None, f"{source.name}: bare relative import"
                names = [("." * node.level) + (node.module or "")]
            for name in names:
                checked += 1
                if name.startswith("fiscalgate"):
                    assert name.startswith(allowed_prefixes), f"{source.name} imports {name}"
                assert not name.startswith(".."), f"{source.name} imports {name} relatively"
    assert checked > 10


@pytest.fixture
def sim(settings: SfecSettings) -> Simulator:
    return create_simulator(settings.niu, settings.api_key.get_secret_value())


@pytest.fixture
def payload(driver: SfecDriver, settings: SfecSettings) -> dict[str, Any]:
    return driver.build_payload(invoice_from("invoice.json"), settings)


async def call(
    sim: Simulator, method: str, path: str, *, key: str | None = "sk_mock_cg_sfec_0123456789", **kw: Any
) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim") as client:
        return await client.request(method, path, headers=headers, **kw)


async def test_certify_answers_201_with_a_real_png_qr(sim: Simulator, payload: dict[str, Any]) -> None:
    response = await call(sim, "POST", "/api/v1/invoices", json=payload)
    assert response.status_code == 201
    body = response.json()
    assert body["invoice_number"] == "FAC-2026-0042"
    assert re.fullmatch(r"[0-9a-f]{64}", body["signature"])
    assert re.fullmatch(r"[0-9A-F]{4}(-[0-9A-F]{4}){3}", body["short_signature"])
    png = base64.b64decode(body["qr_code"].removeprefix("data:image/png;base64,"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"IHDR" in png[:32]
    assert body["certification_date"].endswith("Z")


async def test_no_key_or_a_wrong_key_is_401(sim: Simulator, payload: dict[str, Any]) -> None:
    for key in (None, "wrong"):
        response = await call(sim, "POST", "/api/invoices/certify", key=key, json=payload)
        assert response.status_code == 401
        assert response.json()["error"] == {
            "code": "UNAUTHORIZED",
            "message": "Clé d’authentification invalide ou manquante",
        }
    assert sim.platform.records == {}


async def test_bad_json_and_non_objects_are_400(sim: Simulator) -> None:
    bad = await call(sim, "POST", "/api/invoices/certify", content=b"{not json")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "INVALID_JSON")
    array = await call(sim, "POST", "/api/invoices/certify", json=[1, 2])
    assert (array.status_code, array.json()["error"]["field"]) == (400, "(body)")


async def test_numeric_codes_of_the_online_report_page_are_accepted(
    sim: Simulator, payload: dict[str, Any]
) -> None:
    response = await call(
        sim, "POST", "/api/invoices/certify", json={**payload, "recipient_type": "1", "payment_method": "2"}
    )
    assert response.status_code == 201
    stored = sim.platform.records["FAC-2026-0042"].invoice
    assert (stored["recipient_type"], stored["payment_method"]) == ("business", "card")


async def test_an_individual_needs_nothing_but_a_business_needs_its_niu(
    sim: Simulator, payload: dict[str, Any]
) -> None:
    individual = {**payload, "recipient_type": "2", "recipient_niu": None, "invoice_id": "I-1"}
    assert (await call(sim, "POST", "/api/invoices/certify", json=individual)).status_code == 201
    business = {**payload, "recipient_niu": None, "invoice_id": "I-2"}
    response = await call(sim, "POST", "/api/invoices/certify", json=business)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "recipient_niu"


async def test_another_taxpayers_niu_is_refused(sim: Simulator, payload: dict[str, Any]) -> None:
    response = await call(
        sim, "POST", "/api/invoices/certify", json={**payload, "taxpayer_niu": "P000001212112130"}
    )
    assert (response.status_code, response.json()["error"]["code"]) == (422, "TAXPAYER_MISMATCH")


async def test_duplicates_are_409(sim: Simulator, payload: dict[str, Any]) -> None:
    assert (await call(sim, "POST", "/api/invoices/certify", json=payload)).status_code == 201
    again = await call(sim, "POST", "/api/invoices/certify", json=payload)
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "ALREADY_CERTIFIED",
        "message": "Facture déjà certifiée ou déclarée",
        "field": "invoice_id",
    }


def credit(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    note = copy.deepcopy(payload)
    note.update({"invoice_id": "AV-1", "invoice_type": "creditNote", "reference_invoice_id": "FAC-2026-0042"})
    note.update(changes)
    return note


async def test_credit_note_rules(sim: Simulator, payload: dict[str, Any]) -> None:
    missing = await call(
        sim, "POST", "/api/invoices/certify", json=credit(payload, reference_invoice_id=None)
    )
    assert (missing.status_code, missing.json()["error"]["field"]) == (400, "reference_invoice_id")
    unknown = await call(sim, "POST", "/api/invoices/certify", json=credit(payload))
    assert unknown.json()["error"]["code"] == "REFERENCE_NOT_FOUND"
    original = (await call(sim, "POST", "/api/invoices/certify", json=payload)).json()
    bigger = copy.deepcopy(payload)
    bigger["items"][0].update(
        quantity=3, subtotal=1050000, net_amount=1035000, tax_amount=186300, total_amount=1221300
    )
    bigger.update(
        subtotal=1381470,
        total_tax_t_amount=201600,
        total_tax_amount=213475,
        additional_cent_tax=10674,
        total_amount=1605619,
        amount_due=1605619,
    )
    too_much = await call(sim, "POST", "/api/invoices/certify", json=credit(bigger))
    assert too_much.json()["error"]["code"] == "CREDIT_EXCEEDS_ORIGINAL"
    # by the SFEC identifier too
    ok = await call(
        sim,
        "POST",
        "/api/invoices/certify",
        json=credit(payload, reference_invoice_id=original["identifier"]),
    )
    assert ok.status_code == 201
    second = await call(sim, "POST", "/api/invoices/certify", json=credit(payload, invoice_id="AV-2"))
    assert (second.status_code, second.json()["error"]["code"]) == (422, "CREDIT_NOTE_EXISTS")
    on_a_note = await call(
        sim,
        "POST",
        "/api/invoices/certify",
        json=credit(payload, invoice_id="AV-3", reference_invoice_id="AV-1"),
    )
    assert on_a_note.json()["error"]["code"] == "REFERENCE_NOT_SALES_INVOICE"


async def test_credit_note_in_another_currency_is_refused(sim: Simulator, payload: dict[str, Any]) -> None:
    await call(sim, "POST", "/api/invoices/certify", json=payload)
    response = await call(
        sim,
        "POST",
        "/api/invoices/certify",
        json=credit(payload, currency="USD", additional_cent_tax=0, total_amount=1181945, amount_due=0),
    )
    assert response.json()["error"]["code"] == "CURRENCY_MISMATCH"


async def test_report_needs_the_certification_fields(sim: Simulator, payload: dict[str, Any]) -> None:
    response = await call(sim, "POST", "/api/invoices/report/api", json=payload)
    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert fields == {
        "certification_date",
        "certification_status",
        "certification_signature",
        "certification_qr_code",
    }


async def test_list_rejects_a_bad_page(sim: Simulator) -> None:
    for query in ("page=0", "pageSize=0", "page=x"):
        assert (await call(sim, "GET", f"/api/invoices?{query}")).status_code == 400
    empty = await call(sim, "GET", "/api/v1/invoices")
    assert empty.json() == {"invoices": [], "page": 1, "pageSize": 20, "totalPages": 1, "total": 0}


async def test_an_unexpected_failure_is_a_500_without_details(
    sim: Simulator, payload: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(invoice: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(sim.platform, "certify", boom)
    response = await call(sim, "POST", "/api/invoices/certify", json=payload)
    assert response.status_code == 500
    assert response.json()["error"] == {"code": "INTERNAL_ERROR", "message": "Erreur interne du serveur"}


async def test_fault_injection_over_http(sim: Simulator, payload: dict[str, Any]) -> None:
    assert (await call(sim, "POST", "/_sim/faults", json={"kind": "error", "status": 503})).status_code == 201
    assert (await call(sim, "POST", "/api/invoices/certify", json=payload)).status_code == 503
    assert sim.platform.journal == []  # the fault answered before the platform saw it
    assert (await call(sim, "POST", "/api/invoices/certify", json=payload)).status_code == 201


async def test_an_invoice_reported_from_elsewhere_cannot_then_be_certified(
    sim: Simulator, payload: dict[str, Any]
) -> None:
    # certified by a TCC, say, then declared here: the invoice_id is taken ("déjà ... déclarée")
    report = {
        **payload,
        "invoice_status": "certified",
        "certification_date": "2026-03-02T08:30:00Z",
        "certification_status": "certified",
        "certification_signature": "0" * 64,
        "certification_qr_code": "iVBORw0KGgo=",
    }
    declared = await call(sim, "POST", "/api/invoices/report/api", json=report)
    assert declared.status_code == 201 and "sfec_certification_number" in declared.json()
    again = await call(sim, "POST", "/api/invoices/certify", json=payload)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "ALREADY_CERTIFIED")
    twice = await call(sim, "POST", "/api/invoices/report/api", json=report)
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "ALREADY_REPORTED")
    assert len(sim.platform.records) == 1
