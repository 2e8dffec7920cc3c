"""List pages on a big tenant: `GET /v1/invoices` with 100,000 invoices, on SQLite and (when
FISCALGATE_TEST_POSTGRES_URL is set) PostgreSQL.

Measured (median of `--repeat` calls, each the whole request through the in-process ASGI app:
authentication, the page query, the count, serialising 100 invoices):

- page 1: `?limit=100`
- cursor deep page: the last page reached with `?cursor=` (rows 99,900 to 99,999)
- offset deep page: the same rows with the deprecated `?offset=99900`
- COUNT: the `total` query alone (SELECT count(*) of the tenant's invoices), outside HTTP

    python benchmarks/list_pages.py [--n 100000] [--repeat 5]

The invoices are inserted straight into the table (one INSERT of many rows per thousand), a
second tenant gets 10% as many (so the tenant filter has something to skip), then ANALYZE
(PostgreSQL: VACUUM ANALYZE, as its autovacuum would after such a load).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
from cryptography.fernet import Fernet
from sqlalchemy import func, insert, select, text
from support import machine, scratch_schema, utc_now

from fiscalgate.gateway import create_app
from fiscalgate.gateway.api.guard import GuardSettings
from fiscalgate.gateway.invoices.models import InvoiceRow

ADMIN = "bench-admin"
DOCUMENT = {
    "number": "X",
    "currency": "XOF",
    "seller": {"name": "Boutique"},
    "buyer": {"kind": "individual", "name": "Client"},
    "lines": [{"description": "Riz 25 kg", "quantity": "2", "unit_price": "15000"}],
    "payments": [{"method": "cash"}],
}


def _fill(app: Any, tenant_id: str, n: int) -> None:
    gw = app.state.gateway
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with gw.db.engine.begin() as conn:
        for base in range(0, n, 1000):
            rows = []
            for i in range(base, min(base + 1000, n)):
                at = start + timedelta(seconds=i * 7)
                rows.append(
                    {
                        "id": uuid.uuid4().hex,
                        "tenant_id": tenant_id,
                        "authority": "ci-fne",
                        "number": f"B-{i:07d}",
                        "kind": "sale",
                        "status": "draft",
                        "document": {**DOCUMENT, "number": f"B-{i:07d}"},
                        "currency": "XOF",
                        "attempts": 0,
                        "created_at": at,
                        "updated_at": at,
                    }
                )
            conn.execute(insert(InvoiceRow), rows)
    # What the database's own maintenance does after a bulk load (PostgreSQL's autovacuum runs on
    # inserts too): statistics, and the visibility map an index-only count relies on.
    with gw.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if gw.db.engine.dialect.name == "postgresql":
            conn.execute(text("VACUUM ANALYZE invoices"))
        else:
            conn.execute(text("ANALYZE"))


async def _tenant(api: httpx.AsyncClient) -> tuple[str, str]:
    r = await api.post("/v1/admin/tenants", json={"name": f"Bench-{uuid.uuid4().hex[:6]}", "country": "CI"})
    tenant_id = r.json()["id"]
    key = (await api.post(f"/v1/admin/tenants/{tenant_id}/api-keys", json={})).json()["key"]
    return tenant_id, key


async def _median_ms(call: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await call()  # warm (caches, prepared plans)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await call()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


async def bench(url: str, name: str, n: int, repeat: int, var: Path) -> list[str]:
    app = create_app(
        url,
        admin_token=ADMIN,
        secret_key=Fernet.generate_key(),
        var_dir=var,
        guard=GuardSettings(rate_per_key=0, rate_per_source=0),  # unlimited: we measure the route
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers={"Authorization": f"Bearer {ADMIN}"}
    ) as adm:
        tenant_id, key = await _tenant(adm)
        other_id, _ = await _tenant(adm)
    t0 = time.perf_counter()
    await anyio.to_thread.run_sync(_fill, app, tenant_id, n)
    await anyio.to_thread.run_sync(_fill, app, other_id, n // 10)
    filled = time.perf_counter() - t0
    gw = app.state.gateway
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers={"Authorization": f"Bearer {key}"}
    ) as api:

        async def get(**params: Any) -> dict[str, Any]:
            r = await api.get("/v1/invoices", params=params)
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            assert len(body["items"]) == 100 and body["total"] == n, (len(body["items"]), body["total"])
            return body

        deep = n - 100
        # the cursor that leads to the last page: `next` of the page just before it
        before = await get(limit=100, offset=deep - 100)
        cursor = before["next"]
        page1 = await _median_ms(lambda: get(limit=100), repeat)
        by_cursor = await _median_ms(lambda: get(limit=100, cursor=cursor), repeat)
        by_offset = await _median_ms(lambda: get(limit=100, offset=deep), repeat)
        a = (await get(limit=100, cursor=cursor))["items"]
        b = (await get(limit=100, offset=deep))["items"]
        assert [i["id"] for i in a] == [i["id"] for i in b], "the cursor and the offset disagree"

        def count() -> int:
            with gw.db.engine.connect() as conn:
                stmt = select(func.count()).select_from(InvoiceRow).where(InvoiceRow.tenant_id == tenant_id)
                return int(conn.execute(stmt).scalar_one())

        async def counted() -> None:
            assert await anyio.to_thread.run_sync(count) == n

        counting = await _median_ms(counted, repeat)
    gw.db.dispose()
    return [
        f"| {name} | {n:,} | {page1:.1f} | {by_cursor:.1f} | {by_offset:.1f} | {counting:.1f} |"
        f" {filled:.0f} s |"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="invoices of the tenant (default 100,000)")
    parser.add_argument("--repeat", type=int, default=5, help="calls per figure (median; default 5)")
    args = parser.parse_args()
    lines = [
        "| database | invoices | page 1 (ms) | cursor deep page (ms) | offset deep page (ms) | COUNT (ms)"
        " | fill |",
        "|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        lines += anyio.run(bench, f"sqlite:///{tmp}/bench.db", "SQLite", args.n, args.repeat, Path(tmp))
        pg = os.environ.get("FISCALGATE_TEST_POSTGRES_URL")
        if pg:
            with scratch_schema(pg, "fg_bench") as url:
                lines += anyio.run(bench, url, "PostgreSQL", args.n, args.repeat, Path(tmp))
    print(f"List pages, {utc_now()}, {machine(python=False, loads=0)}; medians of {args.repeat}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
