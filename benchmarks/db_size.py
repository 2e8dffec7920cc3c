"""Cost with the database's size: list, audit and certification at 100 and up to 100,000 invoices.

One tenant is filled step by step (invoices inserted straight into the table, one audit entry
each, a second tenant with 10 % as many so the tenant filter has something to skip); at 100
invoices, then every `--step` up to `--max`, the script measures through the gateway's ASGI app
in-process (authentication, queries, serialisation):

- `GET /v1/invoices?limit=100` (page 1 with its `total`);
- `GET /v1/audit?limit=100` (page 1 with its `total`);
- create (approved) + certify one FNE invoice in `mock` (its simulator in-process).

Each figure is printed as wall time / this process's CPU time (all its threads; the certification's
includes the simulator's): on a shared machine the CPU column is the steadier one.

Medians of `--repeat` calls. After each fill step, `ANALYZE` (PostgreSQL:
`VACUUM ANALYZE`), what the database's own maintenance does after such a load.

    python benchmarks/db_size.py [--max 100000] [--step 10000] [--repeat 5] [--sqlite-only]

PostgreSQL runs too when FISCALGATE_TEST_POSTGRES_URL is set (a fresh schema, dropped after).
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
from sqlalchemy import insert, text
from support import machine, scratch_schema, utc_now

from fiscalgate.authorities import get_driver
from fiscalgate.gateway import create_app
from fiscalgate.gateway.api.guard import GuardSettings
from fiscalgate.gateway.audit.models import AuditEntry
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


def _fill(app: Any, tenant_id: str, start: int, stop: int) -> None:
    """Invoices `start`..`stop` of the tenant, each with one audit entry, in chunks of 1,000."""
    gw = app.state.gateway
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    with gw.db.engine.begin() as conn:
        for base in range(start, stop, 1000):
            invoices, entries = [], []
            for i in range(base, min(base + 1000, stop)):
                at = origin + timedelta(seconds=i * 7)
                invoice_id = uuid.uuid4().hex
                invoices.append(
                    {
                        "id": invoice_id,
                        "tenant_id": tenant_id,
                        "authority": "ci-fne",
                        "number": f"F-{tenant_id[:6]}-{i:07d}",
                        "kind": "sale",
                        "status": "draft",
                        "document": {**DOCUMENT, "number": f"F-{i:07d}"},
                        "currency": "XOF",
                        "attempts": 0,
                        "created_at": at,
                        "updated_at": at,
                    }
                )
                entries.append(
                    {
                        "id": uuid.uuid4().hex,
                        "tenant_id": tenant_id,
                        "kind": "lifecycle",
                        "authority": "ci-fne",
                        "invoice_id": invoice_id,
                        "trigger": "bench",
                        "event": "invoice.create",
                        "detail": {"status": "draft"},
                        "created_at": at,
                    }
                )
            conn.execute(insert(InvoiceRow), invoices)
            conn.execute(insert(AuditEntry), entries)
    with gw.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if gw.db.engine.dialect.name == "postgresql":
            conn.execute(text("VACUUM ANALYZE invoices"))
            conn.execute(text("VACUUM ANALYZE audit_entries"))
        else:
            conn.execute(text("ANALYZE"))


async def _tenant(adm: httpx.AsyncClient) -> tuple[str, str]:
    r = await adm.post(
        "/v1/admin/tenants", json={"name": f"Size-{uuid.uuid4().hex[:6]}", "country": "CI", "modules": []}
    )
    r.raise_for_status()
    tenant_id = r.json()["id"]
    key = (await adm.post(f"/v1/admin/tenants/{tenant_id}/api-keys", json={})).json()["key"]
    return tenant_id, key


async def _median(call: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    """Median wall ms and median process CPU ms of `call`."""
    await call()  # warm: caches, prepared plans
    walls, cpus = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        await call()
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def _levels(maximum: int, step: int) -> list[int]:
    levels = [100]
    levels += [n for n in range(step, maximum + 1, step) if n > 100]
    return levels


async def bench(url: str, name: str, levels: list[int], repeat: int, var: Path) -> list[str]:
    app = create_app(
        url,
        admin_token=ADMIN,
        secret_key=Fernet.generate_key(),
        var_dir=var,
        guard=GuardSettings(rate_per_key=0, rate_per_source=0),  # unlimited: we measure the routes
    )
    transport = httpx.ASGITransport(app=app)
    out: list[str] = []
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers={"Authorization": f"Bearer {ADMIN}"}
    ) as adm:
        tenant_id, key = await _tenant(adm)
        other_id, _ = await _tenant(adm)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as api:
        r = await api.put(
            "/v1/settings/ci-fne", json={"environment": "mock", **get_driver("ci-fne").mock_credentials()}
        )
        assert r.status_code == 200, r.text
        certified = 0

        async def page(path: str) -> None:
            r = await api.get(path, params={"limit": 100})
            assert r.status_code == 200, r.text
            assert len(r.json()["items"]) == 100, path

        async def certify() -> None:
            nonlocal certified
            body = {
                **DOCUMENT,
                "number": f"C-{uuid.uuid4().hex[:12]}",
                "buyer": {
                    "kind": "individual",
                    "name": "Client",
                    "phone": "0709080765",
                    "email": "c@example.ci",
                },
                "operator": {"name": "Caisse 1"},
            }
            r = await api.post("/v1/invoices", json={"authority": "ci-fne", "approve": True, "invoice": body})
            assert r.status_code == 201, r.text
            r = await api.post(f"/v1/invoices/{r.json()['id']}/certify")
            assert r.status_code == 200 and r.json()["status"] == "certified", r.text
            certified += 1

        filled = 0
        for level in levels:
            t0 = time.perf_counter()
            await anyio.to_thread.run_sync(_fill, app, tenant_id, filled, level)
            await anyio.to_thread.run_sync(_fill, app, other_id, filled // 10, level // 10)
            fill_s = time.perf_counter() - t0
            filled = level
            inv_wall, inv_cpu = await _median(lambda: page("/v1/invoices"), repeat)
            aud_wall, aud_cpu = await _median(lambda: page("/v1/audit"), repeat)
            cert_wall, cert_cpu = await _median(certify, repeat)
            out.append(
                f"| {name} | {level:,} | {inv_wall:.1f} / {inv_cpu:.1f} | {aud_wall:.1f} / {aud_cpu:.1f} "
                f"| {cert_wall:.1f} / {cert_cpu:.1f} "
                f"| {fill_s:.0f} s |"
            )
            print(out[-1], flush=True)
    app.state.gateway.db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--max", type=int, default=100_000, help="invoices of the tenant at the end (default 100,000)"
    )
    parser.add_argument(
        "--step", type=int, default=10_000, help="sample every this many invoices (default 10,000)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="calls per figure (median; default 5)")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL even when its URL is set")
    args = parser.parse_args()
    levels = _levels(args.max, args.step)
    header = [
        "| database | invoices | invoice list page 1: wall / CPU ms | audit list page 1: wall / CPU ms "
        "| create + certify: wall / CPU ms | fill |",
        "|---|---:|---:|---:|---:|---|",
    ]
    print("\n".join(header), flush=True)
    lines = list(header)
    with tempfile.TemporaryDirectory() as tmp:
        lines += anyio.run(bench, f"sqlite:///{tmp}/size.db", "SQLite", levels, args.repeat, Path(tmp))
        pg = os.environ.get("FISCALGATE_TEST_POSTGRES_URL")
        if pg and not args.sqlite_only:
            with scratch_schema(pg, "fg_size") as url:
                lines += anyio.run(bench, url, "PostgreSQL", levels, args.repeat, Path(tmp))
    print(f"\nDatabase size, {utc_now()}: {machine()}; medians of {args.repeat}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
