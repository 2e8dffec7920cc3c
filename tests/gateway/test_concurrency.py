"""Two certify calls on one invoice lead to exactly one authority call: the database decides.

Real concurrency: many requests in flight at once on the ASGI app (each request's database work
runs in its own worker thread and connection), and two gateway instances sharing one database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio
import httpx
import pytest
from fastapi import FastAPI

from tests.gateway.conftest import REAL, client, install_simulator, real_invoice, real_tenant

pytestmark = pytest.mark.anyio


# The request that certifies (burns a number) on each platform.
def signs(counter: object, authority: str) -> int:
    """Requests that create something at the authority: every authority's certification is one POST
    (e-MECeF confirms with a PUT; FNE and SFEC have no second call)."""
    calls = counter.calls  # type: ignore[attr-defined]
    return sum(1 for method, _ in calls if method == "POST")


async def _burst(api: httpx.AsyncClient, path: str, n: int) -> list[httpx.Response]:
    responses: list[httpx.Response] = []

    async def one() -> None:
        responses.append(await api.post(path))

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return responses


@pytest.mark.parametrize("authority", REAL)
async def test_concurrent_certify_calls_reach_the_authority_once(real_app: FastAPI, authority: str) -> None:
    _, api, counter, injector = await real_tenant(real_app, authority)
    # Slow the authority down so the other calls arrive while the first is still in flight.
    injector.add("latency", seconds=0.2, method="POST")
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice(authority), "approve": True})
        ).json()
        responses = await _burst(api, f"/v1/invoices/{inv['id']}/certify", 8)
        final = (await api.get(f"/v1/invoices/{inv['id']}")).json()

    assert signs(counter, authority) == 1
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}, [r.text for r in responses]
    fresh = [r for r in responses if r.status_code == 200 and "Fiscalgate-Already-Certified" not in r.headers]
    assert len(fresh) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "invoice.cannot_certify.submitting"
        else:
            assert r.json()["reference"] == final["reference"]
    assert final["status"] == "certified" and final["attempts"] == 1


async def test_two_gateway_instances_on_one_database_certify_once(
    make_app: Callable[..., FastAPI],
) -> None:
    first, second = make_app(), make_app()
    tenant, api, counter_a, injector_a = await real_tenant(first, "cg-sfec")
    counter_b, _ = install_simulator(second, tenant["id"], "cg-sfec")
    injector_a.add("latency", seconds=0.1, path="/certify", method="POST")
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice("cg-sfec"), "approve": True})
        ).json()
    path = f"/v1/invoices/{inv['id']}/certify"
    async with client(first, tenant["key"]) as a, client(second, tenant["key"]) as b:
        results: list[httpx.Response] = []

        async def call(c: httpx.AsyncClient) -> None:
            results.append(await c.post(path))

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(call, a if i % 2 else b)
    assert signs(counter_a, "cg-sfec") + signs(counter_b, "cg-sfec") == 1, [r.text[:200] for r in results]
    assert (
        sum(1 for r in results if r.status_code == 200 and "Fiscalgate-Already-Certified" not in r.headers)
        == 1
    )


async def test_many_invoices_certified_concurrently_get_distinct_references(real_app: FastAPI) -> None:
    _, api, counter, _ = await real_tenant(real_app, "bj-emecef")
    async with api:
        ids = []
        for _ in range(6):
            r = await api.post("/v1/invoices", json={"invoice": real_invoice("bj-emecef"), "approve": True})
            ids.append(r.json()["id"])
        results: list[httpx.Response] = []

        async def certify(invoice_id: str) -> None:
            results.append(await api.post(f"/v1/invoices/{invoice_id}/certify"))

        async with anyio.create_task_group() as tg:
            for invoice_id in ids:
                tg.start_soon(certify, invoice_id)
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert len({r.json()["reference"] for r in results}) == 6
    assert signs(counter, "bj-emecef") == 6


async def test_idempotency_key_replays_the_stored_response(real_app: FastAPI) -> None:
    _, api, _, _ = await real_tenant(real_app, "cg-sfec")
    body = {"invoice": real_invoice("cg-sfec", "IDEM-1"), "approve": True}
    async with api:
        first = await api.post("/v1/invoices", json=body, headers={"Idempotency-Key": "k-1"})
        again = await api.post("/v1/invoices", json=body, headers={"Idempotency-Key": "k-1"})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
        assert len((await api.get("/v1/invoices")).json()["items"]) == 1

        other = {"invoice": real_invoice("cg-sfec", "IDEM-2")}
        r = await api.post("/v1/invoices", json=other, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 422 and r.json()["code"] == "idempotency.key_reused"

        # a failed request with a key is stored too: the same retry gets the same answer
        dup = await api.post("/v1/invoices", json=body, headers={"Idempotency-Key": "k-2"})
        assert dup.status_code == 409
        assert (
            await api.post("/v1/invoices", json=body, headers={"Idempotency-Key": "k-2"})
        ).json() == dup.json()

        certify = f"/v1/invoices/{first.json()['id']}/certify"
        one = await api.post(certify, headers={"Idempotency-Key": "c-1"})
        two = await api.post(certify, headers={"Idempotency-Key": "c-1"})
        assert one.status_code == 200 and two.json() == one.json()


async def test_idempotency_keys_are_scoped_by_caller(real_app: FastAPI) -> None:
    _, api_a, _, _ = await real_tenant(real_app, "cg-sfec")
    _, api_b, _, _ = await real_tenant(real_app, "cg-sfec")
    async with api_a, api_b:
        a = await api_a.post(
            "/v1/invoices",
            json={"invoice": real_invoice("cg-sfec", "S-1")},
            headers={"Idempotency-Key": "same"},
        )
        b = await api_b.post(
            "/v1/invoices",
            json={"invoice": real_invoice("cg-sfec", "S-1")},
            headers={"Idempotency-Key": "same"},
        )
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


async def test_concurrent_requests_with_one_idempotency_key_create_one_invoice(real_app: FastAPI) -> None:
    _, api, _, _ = await real_tenant(real_app, "bj-emecef")
    body = {"invoice": real_invoice("bj-emecef", "RACE-1")}
    results: list[httpx.Response] = []
    async with api:

        async def post() -> None:
            results.append(await api.post("/v1/invoices", json=body, headers={"Idempotency-Key": "race"}))

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(post)
        assert len((await api.get("/v1/invoices")).json()["items"]) == 1
    created = [r for r in results if r.status_code == 201]
    assert created and all(r.json()["id"] == created[0].json()["id"] for r in created)
    assert all(r.status_code in (201, 409) for r in results)
    for r in results:
        if r.status_code == 409:
            assert r.json()["code"] == "idempotency.in_progress"


async def test_the_claim_is_decided_by_the_database_under_threads(real_app: FastAPI) -> None:
    """Straight at the service: threads released together race on the conditional UPDATE."""
    from fiscalgate.gateway.certification.claim import claim as _claim
    from tests.gateway.conftest import gateway

    tenant, api, _, _ = await real_tenant(real_app, "ci-fne")
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice("ci-fne"), "approve": True})
        ).json()
    gw = gateway(real_app)
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def contender(i: int) -> None:
        barrier.wait()
        wins.append(gw.db.call(_claim, tenant["id"], inv["id"], f"t{i}", ("approved",)) is not None)

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]
