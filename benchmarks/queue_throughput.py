"""Queue throughput on PostgreSQL: 1, 2 and 4 `fiscalgate worker` processes certify queued
invoices against an SFEC simulator run apart over a socket, with 200 ms of latency injected on
every certification (one POST per invoice). Prints throughput against the bound
workers x concurrency / latency, and the ratio.

    FISCALGATE_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        python benchmarks/queue_throughput.py [--concurrency 4] [--per-slot 10] [--latency 0.2]

Each run: a fresh schema, the workers started and idle, N = workers x concurrency x per-slot
invoices queued in one transaction, then the clock runs until the queue is empty.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import anyio
import httpx
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from support import machine, schema_of, scratch_schema, utc_now

from fiscalgate.authorities import get_driver
from fiscalgate.gateway import create_app
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.queue import enqueue_certification
from fiscalgate.gateway.queue.models import JobRow, ProcessRow
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.simkit.serve import serve_in_thread

ADMIN = "bench-admin"
FISCALGATE_BIN = Path(sys.executable).with_name("fiscalgate")


def invoice(number: str) -> dict[str, object]:
    return {
        "number": number,
        "currency": "XAF",
        "seller": {"name": "Boutique Bench"},
        "buyer": {"kind": "individual", "name": "Client"},
        "lines": [{"description": "Riz 25 kg", "quantity": "2", "unit_price": "15000"}],
        "payments": [{"method": "cash"}],
    }


async def prepare(
    gw_url: str, secret: str, sim_url: str, n: int, var: Path
) -> tuple[Gateway, str, list[str]]:
    app = create_app(gw_url, admin_token=ADMIN, secret_key=secret, var_dir=var, allow_private_urls=True)
    gw: Gateway = app.state.gateway
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        tenant = (
            await c.post("/v1/admin/tenants", json={"name": "bench", "country": "CG"}, headers=admin)
        ).json()
        key = (await c.post(f"/v1/admin/tenants/{tenant['id']}/api-keys", json={}, headers=admin)).json()[
            "key"
        ]
        auth = {"Authorization": f"Bearer {key}"}
        driver = get_driver("cg-sfec")
        settings = {
            "environment": "mock",
            **driver.mock_credentials(),
            "base_url": sim_url,
            "max_attempts": 1,
        }
        assert (await c.put("/v1/settings/cg-sfec", json=settings, headers=auth)).status_code == 200
        ids = []
        for i in range(n):
            r = await c.post(
                "/v1/invoices",
                json={"invoice": invoice(f"B-{i}-{uuid.uuid4().hex[:6]}"), "approve": True},
                headers=auth,
            )
            ids.append(r.json()["id"])
    return gw, tenant["id"], ids


def enqueue_all(session: Session, tenant_id: str, ids: list[str]) -> None:
    for invoice_id in ids:
        enqueue_certification(session, tenant_id, invoice_id, trigger="bench")


def live(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(JobRow).where(JobRow.state != "done")) or 0)


def beating(session: Session) -> int:
    return int(
        session.scalar(select(func.count()).select_from(ProcessRow).where(ProcessRow.stopped_at.is_(None)))
        or 0
    )


def run(
    base: str, workers: int, concurrency: int, per_slot: int, latency: float, profile: Path | None = None
) -> dict[str, float]:
    with scratch_schema(base, "fg_bench_q") as url:
        return _run(url, workers, concurrency, per_slot, latency, profile)


def _run(
    url: str, workers: int, concurrency: int, per_slot: int, latency: float, profile: Path | None
) -> dict[str, float]:
    secret = Fernet.generate_key().decode()
    driver = get_driver("cg-sfec")
    sim = driver.mock_app(driver.parse_settings({"environment": "mock", **driver.mock_credentials()}))
    sim.add("latency", seconds=latency, method="POST", times=-1)
    procs: list[subprocess.Popen[bytes]] = []
    n = workers * concurrency * per_slot
    try:
        with serve_in_thread(sim) as sim_url:
            var = Path(f"/tmp/{schema_of(url)}")
            gw, tenant_id, ids = anyio.run(prepare, url, secret, sim_url, n, var)
            # the simulator runs on 127.0.0.1: the workers must be allowed to call it
            env = {**os.environ, "FISCALGATE_SECRET_KEY": secret, "FISCALGATE_ALLOW_PRIVATE_URLS": "1"}
            cmd = [
                str(FISCALGATE_BIN),
                "worker",
                "--database-url",
                url,
                "--concurrency",
                str(concurrency),
                "--poll",
                "0.05",
            ]
            if profile is not None:  # each worker under cProfile, its stats written when it stops
                profile.mkdir(parents=True, exist_ok=True)
                cmd = [
                    sys.executable,
                    "-m",
                    "cProfile",
                    "-o",
                    str(profile / f"worker-{workers}-%d.prof"),
                    *cmd,
                ]
            procs = [
                subprocess.Popen(
                    [c.replace("%d", str(i)) for c in cmd],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for i in range(workers)
            ]
            while gw.db.call(beating) < workers:
                time.sleep(0.05)
            gw.db.call(enqueue_all, tenant_id, ids)
            started = time.perf_counter()
            while gw.db.call(live):
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            certified = gw.db.call(
                lambda s: s.scalar(
                    select(func.count()).select_from(InvoiceRow).where(InvoiceRow.status == "certified")
                )
            )
            gw.db.dispose()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    bound = workers * concurrency / latency
    throughput = n / elapsed
    return {
        "n": n,
        "certified": certified,
        "seconds": elapsed,
        "throughput": throughput,
        "bound": bound,
        "ratio": throughput / bound,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=4, help="jobs at a time per worker (default 4)")
    parser.add_argument("--per-slot", type=int, default=10, help="invoices per worker slot (default 10)")
    parser.add_argument("--latency", type=float, default=0.2, help="injected seconds per certification")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to run (default 1,2,4)")
    parser.add_argument(
        "--profile", type=Path, default=None, help="run each worker under cProfile, stats here"
    )
    args = parser.parse_args()
    base = os.environ.get("FISCALGATE_TEST_POSTGRES_URL") or os.environ.get("FISCALGATE_DATABASE_URL")
    if not base or not base.startswith("postgres"):
        raise SystemExit("set FISCALGATE_TEST_POSTGRES_URL to a PostgreSQL URL")
    print(f"Queue throughput, {utc_now()}: {machine(loads=0)}, PostgreSQL;")
    print(f"SFEC simulator over a socket, {args.latency * 1000:.0f} ms injected per certification.\n")
    print("| workers | concurrency | invoices | certified | seconds | invoices/s | bound/s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for workers in (int(w) for w in args.workers.split(",")):
        r = run(base, workers, args.concurrency, args.per_slot, args.latency, args.profile)
        print(
            f"| {workers} | {args.concurrency} | {r['n']:.0f} | {r['certified']:.0f} | {r['seconds']:.1f} | "
            f"{r['throughput']:.1f} | {r['bound']:.0f} | {r['ratio']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
