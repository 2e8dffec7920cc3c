"""Gateway throughput: create and certify N invoices (ci-fne, bj-emecef, cg-sfec in turn) through
the gateway, once sequentially and once with concurrent clients, on SQLite and (when
FISCALGATE_TEST_POSTGRES_URL is set) PostgreSQL.

The gateway's ASGI app is driven in-process with httpx (no socket), and each authority is its
built-in simulator, in-process too (mock environment). Per invoice = one POST /v1/invoices
(approve=true) + one POST /v1/invoices/{id}/certify.

CPU: `process` is the whole process's CPU time per invoice (all threads: gateway, database
driver, simulators, the httpx client driving it); `simulators` is the CPU measured inside the
simulators' ASGI calls in the sequential run; `gateway` = process - simulators.

Database work per invoice: `transactions` started and SQL `statements` sent by the gateway
(BEGIN/COMMIT and the pool's pre-ping not counted), from the engine's events.

    python benchmarks/gateway_throughput.py --n 60 --concurrency 8 [--output FILE]

The before/after figures, with the machine and where the time goes, are in results.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
from cryptography.fernet import Fernet
from sqlalchemy import Engine, event
from support import machine, scratch_schema, utc_now

from fiscalgate.authorities import get_driver
from fiscalgate.gateway import create_app
from fiscalgate.gateway.api.guard import GuardSettings

AUTHORITIES = ("ci-fne", "bj-emecef", "cg-sfec")
ADMIN = "bench-admin"


class SqlCounter:
    """Counts the transactions the gateway starts and the statements it sends."""

    def __init__(self, *engines: Engine | None) -> None:
        self.transactions = 0
        self.statements = 0
        for engine in engines:
            if engine is not None:
                event.listen(engine, "begin", self._begin)
                event.listen(engine, "before_cursor_execute", self._statement)

    def _begin(self, _conn: Any) -> None:
        self.transactions += 1

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            self.statements += 1


class TimedSimulator:
    """Wraps a simulator's ASGI app and adds up the CPU time spent inside it (main thread)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cpu = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        start = time.thread_time()
        try:
            await self.app(scope, receive, send)
        finally:
            self.cpu += time.thread_time() - start


@dataclass
class Result:
    database: str
    mode: str
    n: int
    seconds: float
    latencies: list[float]
    cpu: float
    simulator_cpu: float
    transactions: int
    statements: int

    @property
    def rate(self) -> float:
        return self.n / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def invoice(authority: str) -> dict[str, Any]:
    return {
        "number": f"B-{uuid.uuid4().hex[:12]}",
        "currency": "XAF" if authority == "cg-sfec" else "XOF",
        "seller": {"name": "Boutique Bench"},
        "buyer": {"kind": "individual", "name": "Client", "phone": "0709080765", "email": "c@example.ci"},
        "operator": {"name": "Caisse 1"},
        "lines": [
            {"description": "Riz 25 kg", "quantity": "2", "unit_price": "15000"},
            {"description": "Huile 5 l", "quantity": "3", "unit_price": "6000"},
        ],
        "payments": [{"method": "cash"}],
    }


async def setup(app: Any, wrap: bool = True) -> tuple[httpx.AsyncClient, list[TimedSimulator]]:
    """A tenant with the three authorities in mock. `wrap`: each simulator is replaced by a timed
    one that the gateway does not persist (its memory is not stored: `simulators` CPU is the
    simulator's own); without it the gateway builds and persists its simulators as in production."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gw", headers={"Authorization": f"Bearer {ADMIN}"}
    ) as admin:
        tenant = (
            await admin.post(
                "/v1/admin/tenants",
                json={"name": f"Bench {uuid.uuid4().hex[:6]}", "country": "CI", "modules": ["mecef", "sfec"]},
            )
        ).json()
        key = (await admin.post(f"/v1/admin/tenants/{tenant['id']}/api-keys", json={})).json()["key"]
    api = httpx.AsyncClient(
        transport=transport, base_url="http://gw", headers={"Authorization": f"Bearer {key}"}, timeout=60
    )
    sims = []
    for code in AUTHORITIES:
        driver = get_driver(code)
        data = {"environment": "mock", **driver.mock_credentials()}
        assert (await api.put(f"/v1/settings/{code}", json=data)).status_code == 200
        if not wrap:
            continue
        sim = TimedSimulator(driver.mock_app(driver.parse_settings(data)))
        app.state.gateway.simulators.install(tenant["id"], code, sim)
        sims.append(sim)
    return api, sims


async def one(api: httpx.AsyncClient, authority: str, latencies: list[float]) -> None:
    start = time.perf_counter()
    r = await api.post(
        "/v1/invoices", json={"authority": authority, "approve": True, "invoice": invoice(authority)}
    )
    r.raise_for_status()
    r = await api.post(f"/v1/invoices/{r.json()['id']}/certify")
    if r.status_code != 200 or r.json()["status"] != "certified":
        raise RuntimeError(f"certification failed: {r.text[:500]}")
    latencies.append(time.perf_counter() - start)


async def run(app: Any, database: str, n: int, concurrency: int) -> list[Result]:
    api, sims = await setup(app)
    db = app.state.gateway.db
    sql = SqlCounter(db.engine, getattr(db, "read_engine", None))
    results = []
    try:
        for _ in range(3):  # warm-up: first calls build simulators, import code, fill pools
            for code in AUTHORITIES:
                await one(api, code, [])
        for mode, workers in (("sequential", 1), (f"concurrent x{concurrency}", concurrency)):
            latencies: list[float] = []
            jobs = [AUTHORITIES[i % 3] for i in range(n)]
            sim_cpu0 = sum(s.cpu for s in sims)
            tx0, st0 = sql.transactions, sql.statements
            cpu0, t0 = time.process_time(), time.perf_counter()

            async def worker(jobs: list[str] = jobs, latencies: list[float] = latencies) -> None:
                while jobs:
                    await one(api, jobs.pop(), latencies)

            async with anyio.create_task_group() as tg:
                for _ in range(workers):
                    tg.start_soon(worker)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            results.append(
                Result(
                    database,
                    mode,
                    n,
                    seconds,
                    latencies,
                    cpu,
                    sum(s.cpu for s in sims) - sim_cpu0,
                    sql.transactions - tx0,
                    sql.statements - st0,
                )
            )
    finally:
        await api.aclose()
    return results


def bench(url: str, label: str, n: int, concurrency: int, var: Path) -> list[Result]:
    # The API rate limits (issue 14) are off: this measures the gateway's throughput, not them.
    unlimited = GuardSettings(rate_per_key=0, rate_per_source=0)
    app = create_app(url, admin_token=ADMIN, secret_key=Fernet.generate_key(), var_dir=var, guard=unlimited)
    try:
        return anyio.run(run, app, label, n, concurrency)
    finally:
        app.state.gateway.db.dispose()


def table(results: list[Result]) -> str:
    seq_sim = {r.database: r.simulator_cpu / r.n for r in results if r.mode == "sequential"}
    rows = [
        "| database | mode | invoices | invoices/s | p50 ms | p99 ms "
        "| CPU ms/invoice: process | simulators | gateway | transactions/invoice | statements/invoice |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        process = r.cpu / r.n * 1000
        sim = seq_sim[r.database] * 1000
        rows.append(
            f"| {r.database} | {r.mode} | {r.n} | {r.rate:.1f} | {r.pct(0.5):.1f} | {r.pct(0.99):.1f} | "
            f"{process:.1f} | {sim:.1f} | {process - sim:.1f} | {r.transactions / r.n:.1f} | "
            f"{r.statements / r.n:.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=60, help="invoices per run (default 60)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument(
        "--output", help="also write the table to this markdown file (results.md is curated by hand)"
    )
    args = parser.parse_args()

    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        results += bench(f"sqlite:///{tmp}/bench.db", "SQLite", args.n, args.concurrency, Path(tmp))
        pg = os.environ.get("FISCALGATE_TEST_POSTGRES_URL")
        if pg:
            with scratch_schema(pg, "fg_bench") as url:
                results += bench(url, "PostgreSQL", args.n, args.concurrency, Path(tmp))

    header = (
        f"Gateway throughput, {utc_now()}: {machine(model=True, loads=0)}. "
        "In-process ASGI (httpx, no socket), simulators in-process; "
        "per invoice: create (approved) + certify."
    )
    if not os.environ.get("FISCALGATE_TEST_POSTGRES_URL"):
        header += " PostgreSQL skipped (FISCALGATE_TEST_POSTGRES_URL unset)."
    report = f"# Gateway benchmark\n\n{header}\n\n{table(results)}\n"
    print(report)
    if args.output:
        Path(args.output).write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
