"""Every list of the API: the envelope `{items, total, next}`, keyset pages through an opaque cursor,
the deprecated `offset`, and unknown parameters or filter values refused (both databases)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.invoices.models import InvoiceRow
from tests.gateway.conftest import FAKE_SETTINGS, client, gateway, new_tenant, sample_invoice

pytestmark = pytest.mark.anyio

# Every list route (tenant ones; the admin ones are checked with the admin token).
TENANT_LISTS = ["/v1/invoices", "/v1/audit", "/v1/webhooks", "/v1/batches", "/v1/settings", "/v1/authorities"]
ADMIN_LISTS = ["/v1/admin/tenants", "/v1/admin/tenants/{tenant_id}/api-keys"]


async def _all_pages(api: httpx.AsyncClient, url: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Follow `next` to the end; (every item, how many pages)."""
    items: list[dict[str, Any]] = []
    pages, cursor = 0, None
    while True:
        r = await api.get(url, params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "total", "next"}
        items += body["items"]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            return items, pages


async def _invoices(api: httpx.AsyncClient, n: int, prefix: str = "F") -> list[str]:
    ids = []
    for i in range(n):
        r = await api.post("/v1/invoices", json={"invoice": sample_invoice(f"{prefix}-{i}")})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def test_every_list_route_answers_the_envelope(fake_app: FastAPI) -> None:
    tenant, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api, client(fake_app) as adm:
        await _invoices(api, 1)
        for url in TENANT_LISTS:
            body = (await api.get(url)).json()
            assert set(body) == {"items", "total", "next"}, (url, body)
            assert body["total"] == len(body["items"]) and body["next"] is None, url
        for url in ADMIN_LISTS:
            body = (await adm.get(url.format(tenant_id=tenant["id"]))).json()
            assert set(body) == {"items", "total", "next"}, (url, body)
        # the OpenAPI document says so too, for every GET that answers a list
        schema = fake_app.openapi()
        for url in [*TENANT_LISTS, *ADMIN_LISTS]:
            answer = schema["paths"][url]["get"]["responses"]["200"]["content"]["application/json"]
            ref = answer["schema"]["$ref"].rsplit("/", 1)[-1]
            assert set(schema["components"]["schemas"][ref]["properties"]) == {"items", "total", "next"}


def _list_routes(app: FastAPI) -> list[str]:
    """GET routes of the API whose 200 answer is an array: there must be none left."""
    schema = app.openapi()
    found = []
    for path, ops in schema["paths"].items():
        get = ops.get("get")
        if not get or not path.startswith("/v1/"):
            continue
        content = get["responses"].get("200", {}).get("content", {}).get("application/json", {})
        if content.get("schema", {}).get("type") == "array":
            found.append(path)
    return found


def test_no_route_answers_a_bare_array(fake_app: FastAPI) -> None:
    assert _list_routes(fake_app) == []


async def test_cursor_pages_walk_every_invoice_once_newest_first(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        ids = await _invoices(api, 7)
        # two of them share one instant: the id decides, and no page loses or repeats one
        same = utcnow() - timedelta(days=1)
        gw = gateway(fake_app)
        gw.db.call(
            lambda s: s.execute(update(InvoiceRow).where(InvoiceRow.id.in_(ids[2:4])).values(created_at=same))
        )
        first = (await api.get("/v1/invoices", params={"limit": 3})).json()
        assert first["total"] == 7 and len(first["items"]) == 3 and first["next"]
        items, pages = await _all_pages(api, "/v1/invoices", limit=3)
        assert pages == 3
        assert sorted(i["id"] for i in items) == sorted(ids)
        stamps = [(i["created_at"], i["id"]) for i in items]
        assert stamps == sorted(stamps, reverse=True)
        # a row added after page 1 does not shift page 2 (keyset, not offset)
        page2 = (await api.get("/v1/invoices", params={"limit": 3, "cursor": first["next"]})).json()
        await _invoices(api, 1, prefix="late")
        again = (await api.get("/v1/invoices", params={"limit": 3, "cursor": first["next"]})).json()
        assert [i["id"] for i in again["items"]] == [i["id"] for i in page2["items"]]
        assert again["total"] == 8


async def test_filters_apply_to_the_page_and_the_total_and_bind_the_cursor(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        ids = await _invoices(api, 5)
        for invoice_id in ids[:3]:
            assert (await api.post(f"/v1/invoices/{invoice_id}/approve")).status_code == 200
        items, _ = await _all_pages(api, "/v1/invoices", status="approved", limit=2)
        assert sorted(i["id"] for i in items) == sorted(ids[:3])
        page = (await api.get("/v1/invoices", params={"status": "approved", "limit": 2})).json()
        assert page["total"] == 3
        # the same cursor with other filters: refused, not a mixed list
        r = await api.get("/v1/invoices", params={"status": "draft", "limit": 2, "cursor": page["next"]})
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "cursor"
        assert "other filters" in r.json()["problems"][0]["message"]
        # a changed `limit` is fine (it is not a filter)
        r = await api.get("/v1/invoices", params={"status": "approved", "limit": 5, "cursor": page["next"]})
        assert r.status_code == 200 and len(r.json()["items"]) == 1


@pytest.mark.parametrize("cursor", ["garbage", "eyJ4Ijoi", "WyIxIiwiMjAyNi0wMS0wMSIsIngiLCJ5Il0", "x" * 401])
async def test_a_cursor_that_no_page_gave_is_a_422(fake_app: FastAPI, cursor: str) -> None:
    _, api = await new_tenant(fake_app)
    async with api:
        r = await api.get("/v1/invoices", params={"cursor": cursor})
    assert r.status_code == 422, r.text
    assert r.json()["problems"][0]["field"] == "cursor"


async def test_deprecated_offset_still_pages_and_hands_over_to_the_cursor(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        await _invoices(api, 5)
        every = [i["id"] for i in (await api.get("/v1/invoices")).json()["items"]]
        r = (await api.get("/v1/invoices", params={"offset": 1, "limit": 2})).json()
        assert [i["id"] for i in r["items"]] == every[1:3] and r["total"] == 5
        rest = (await api.get("/v1/invoices", params={"cursor": r["next"]})).json()
        assert [i["id"] for i in rest["items"]] == every[3:]
        both = await api.get("/v1/invoices", params={"offset": 1, "cursor": r["next"]})
        assert both.status_code == 422 and both.json()["problems"][0]["field"] == "offset"


@pytest.mark.parametrize("url", TENANT_LISTS)
async def test_an_unknown_query_parameter_is_refused_by_name(fake_app: FastAPI, url: str) -> None:
    _, api = await new_tenant(fake_app)
    async with api:
        r = await api.get(url, params={"stauts": "certified"})
    assert r.status_code == 422, r.text
    problem = r.json()["problems"][0]
    assert problem["field"] == "stauts" and "unknown query parameter" in problem["message"]


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/v1/invoices", {"authority": "xx-nope"}, "authority"),
        ("/v1/invoices", {"status": "done"}, "status"),
        ("/v1/invoices", {"kind": "bill"}, "kind"),
        ("/v1/invoices", {"limit": "1001"}, "limit"),
        ("/v1/audit", {"authority": "xx-nope"}, "authority"),
        ("/v1/audit", {"kind": "nope"}, "kind"),
        ("/v1/audit", {"status": "fine"}, "status"),
        ("/v1/batches", {"limit": "0"}, "limit"),
    ],
)
async def test_unknown_filter_values_are_refused_naming_the_field(
    fake_app: FastAPI, url: str, params: dict[str, str], field: str
) -> None:
    _, api = await new_tenant(fake_app)
    async with api:
        r = await api.get(url, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["problems"][0]["field"] == field
    assert not r.json()["problems"][0]["message"].startswith("Value error")


async def test_an_authority_alias_filters_like_its_code(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        await _invoices(api, 2)
        by_code = (await api.get("/v1/invoices", params={"authority": "ci-fne"})).json()
        by_alias = (await api.get("/v1/invoices", params={"authority": "FNE"})).json()
        assert by_code == by_alias and by_code["total"] == 2
        audit = (await api.get("/v1/audit", params={"authority": "fne"})).json()
        assert audit["total"] == len(audit["items"])


async def test_admin_lists_page_with_a_cursor(fake_app: FastAPI) -> None:
    tenant, api = await new_tenant(fake_app)
    async with api, client(fake_app) as adm:
        for label in ("b", "c"):
            r = await adm.post(f"/v1/admin/tenants/{tenant['id']}/api-keys", json={"label": label})
            assert r.status_code == 201
        keys, pages = await _all_pages(adm, f"/v1/admin/tenants/{tenant['id']}/api-keys", limit=1)
        assert [k["label"] for k in keys] == ["tests", "b", "c"] and pages == 3  # oldest first
        assert all("key" not in k for k in keys)
        for _ in range(2):
            await new_tenant(fake_app)
        tenants, _ = await _all_pages(adm, "/v1/admin/tenants", limit=2)
        assert tenant["id"] in {t["id"] for t in tenants}
        assert len({t["id"] for t in tenants}) == len(tenants) == 3
        missing = await adm.get("/v1/admin/tenants/nope/api-keys")
        assert missing.status_code == 404


async def test_batches_are_listed_newest_first_with_their_counts(fake_app: FastAPI) -> None:
    _, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        made = []
        for n in range(3):
            body = {"invoices": [{"invoice": sample_invoice(f"B{n}-1")}, {"invoice": {"number": ""}}]}
            r = await api.post("/v1/invoices/batch", json=body)
            assert r.status_code == 201, r.text
            made.append(r.json()["id"])
        page = (await api.get("/v1/batches", params={"limit": 2})).json()
        assert page["total"] == 3 and [b["id"] for b in page["items"]] == made[:0:-1]
        assert all("items" not in b for b in page["items"])
        assert page["items"][0]["counts"]["accepted"] == 1 and page["items"][0]["counts"]["refused"] == 1
        rest = (await api.get("/v1/batches", params={"limit": 2, "cursor": page["next"]})).json()
        assert [b["id"] for b in rest["items"]] == made[:1] and rest["next"] is None


async def test_another_tenants_rows_are_never_counted(fake_app: FastAPI) -> None:
    _, one = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    _, two = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with one, two:
        await _invoices(one, 3)
        page = (await one.get("/v1/invoices", params={"limit": 1})).json()
        assert page["total"] == 3
        theirs = (await two.get("/v1/invoices")).json()
        assert theirs == {"items": [], "total": 0, "next": None}
        # one tenant's cursor in another's list finds nothing of the first
        r = await two.get("/v1/invoices", params={"limit": 1, "cursor": page["next"]})
        assert r.status_code == 200 and r.json()["items"] == []
