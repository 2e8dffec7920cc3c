"""The gateway over a real TCP socket (uvicorn), hit by several OS threads at once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from fiscalgate.simkit.serve import serve_in_thread
from tests.gateway.conftest import install_simulator, mock_settings, new_tenant, real_invoice

pytestmark = [pytest.mark.anyio, pytest.mark.socket]


async def test_threads_over_a_socket_certify_once(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    tenant, api = await new_tenant(app, country="BJ", settings={"bj-emecef": mock_settings("bj-emecef")})
    counter, injector = install_simulator(app, tenant["id"], "bj-emecef")
    injector.add("latency", seconds=0.2, path="/api/invoice", method="POST")
    async with api:
        inv = (
            await api.post("/v1/invoices", json={"invoice": real_invoice("bj-emecef"), "approve": True})
        ).json()

    answers: list[tuple[int, bool]] = []  # (status, already certified)
    with serve_in_thread(app) as base:
        headers = {"Authorization": f"Bearer {tenant['key']}"}
        barrier = threading.Barrier(6)

        def certify() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
                barrier.wait()
                r = c.post(f"/v1/invoices/{inv['id']}/certify")
                answers.append((r.status_code, "Fiscalgate-Already-Certified" in r.headers))

        threads = [threading.Thread(target=certify) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        async with httpx.AsyncClient(base_url=base, headers=headers) as c:
            final = (await c.get(f"/v1/invoices/{inv['id']}")).json()
            assert (await c.get("/healthz")).json()["status"] == "ok"

    # one fresh certification; the others are told it is in progress (or, if late, already done)
    assert [a for a in answers if a == (200, False)] == [(200, False)]
    assert all(a in ((409, False), (200, True)) for a in answers if a != (200, False)), answers
    assert sum(1 for m, p in counter.calls if m == "POST" and p.endswith("/api/invoice")) == 1
    assert final["status"] == "certified"
