"""The e-MCF simulator answers like the live platform on the points real clients trip on: the
`refundWithAibPayment` flag, error bodies with the error fields only, `POST /api/invoice/` with a
trailing slash, and an HTML 404 page for a path the platform does not serve."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.authorities.bj_emecef.conftest import Emecef

pytestmark = pytest.mark.anyio

CODE_20 = {"errorCode": "20", "errorDesc": "La facture n'existe pas ou elle est déjà finalisée / annulée"}


def request_body(emecef: Emecef) -> dict[str, Any]:
    return {
        "ifu": emecef.settings.ifu,
        "type": "FV",
        "items": [{"name": "Jus", "price": 1000, "quantity": 2, "taxGroup": "B"}],
        "operator": {"name": "Ama"},
        "payment": [{"name": "ESPECES", "amount": 2000}],
    }


def raw_client(emecef: Emecef) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emecef.sim),
        base_url="http://emcf.test",
        headers={"Authorization": f"Bearer {emecef.settings.token.get_secret_value()}"},
    )


async def test_confirm_and_cancel_carry_refund_with_aib_payment_false(emecef_local: Emecef) -> None:
    async with raw_client(emecef_local) as http:
        answers = []
        for action in ("confirm", "cancel"):
            uid = (await http.post("/api/invoice", json=request_body(emecef_local))).json()["uid"]
            answers.append((await http.put(f"/api/invoice/{uid}/{action}")).json())
    assert all(a["refundWithAibPayment"] is False for a in answers)
    assert answers[0]["codeMECeFDGI"] and answers[1]["codeMECeFDGI"] == ""


async def test_error_answers_carry_the_error_fields_only(emecef_local: Emecef) -> None:
    async with raw_client(emecef_local) as http:
        uid = (await http.post("/api/invoice", json=request_body(emecef_local))).json()["uid"]
        await http.put(f"/api/invoice/{uid}/confirm")
        again = await http.put(f"/api/invoice/{uid}/confirm")
        details = await http.get(f"/api/invoice/{uid}")
        bad = await http.post("/api/invoice", json={**request_body(emecef_local), "type": "XX"})
    assert again.status_code == 200 and again.json() == {**CODE_20, "refundWithAibPayment": False}
    assert details.status_code == 200 and details.json() == CODE_20
    assert bad.json() == {"errorCode": "3", "errorDesc": "Type de facture n'est pas valide"}


async def test_post_with_a_trailing_slash_is_served_not_redirected(emecef_local: Emecef) -> None:
    async with raw_client(emecef_local) as http:
        r = await http.post("/api/invoice/", json=request_body(emecef_local))
        status = await http.get("/api/invoice/")
    assert r.status_code == 200 and len(r.json()["uid"]) == 36, r.text
    assert status.status_code == 200 and status.json()["pendingRequestsCount"] == 1


async def test_an_unknown_path_answers_an_html_404_page(emecef_local: Emecef) -> None:
    async with raw_client(emecef_local) as http:
        for path in ("/api/invoices", "/api/nothing/here", "/"):
            r = await http.get(path)
            assert r.status_code == 404, path
            assert r.headers["content-type"].startswith("text/html"), path
            assert "404" in r.text
