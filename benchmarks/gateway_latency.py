"""Does one gateway keep many certifications in flight while the authority takes its time?

An SFEC simulator runs apart (its own process, over a socket) and answers every certification
after L seconds (default 0.2). `fiscalgate serve` runs as another process. C clients (C = 1, 2,
4 ... 64) each create (approved) and certify invoices back to back; throughput is compared with the
bound C / L (no gateway can do better: each client waits L per certification), and printed as a
share of it, with p50/p99 latencies and the failures seen (issue 13: >= 90 % at C = 32, none
failing).

    python benchmarks/gateway_latency.py [--latency 0.2] [--per-client 4] [--levels 1,2,4,8,16,32,64]
        [--queue] [--processes N] [--database-url URL]

`--queue`: certify through the queue (`POST /certify?wait=30`, the embedded worker sends); its
concurrency is `serve --workers`, set to the largest level. `--processes N`: `serve --processes N`
(needs PostgreSQL: several processes on one SQLite file serialise their writes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).parent))
from gateway_cpu import ADMIN, FISCALGATE_BIN, gateway_env, server
from support import machine

from fiscalgate.authorities import get_driver


def serve_simulator(port: int, latency: float) -> None:
    """The child process: SFEC's simulator answering every POST after `latency` seconds."""
    import uvicorn

    driver = get_driver("cg-sfec")
    sim: Any = driver.mock_app(driver.parse_settings({"environment": "mock", **driver.mock_credentials()}))
    sim.add("latency", seconds=latency, method="POST", times=-1)
    uvicorn.run(sim, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


def invoice() -> dict[str, Any]:
    return {
        "number": f"L-{uuid.uuid4().hex[:12]}",
        "currency": "XAF",
        "seller": {"name": "Boutique Bench"},
        "buyer": {"kind": "individual", "name": "Client"},
        "lines": [{"description": "Riz 25 kg", "quantity": "2", "unit_price": "15000"}],
        "payments": [{"method": "cash"}],
    }


def setup(url: str, sim_url: str) -> str:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60) as c:
        tenant = c.post("/v1/admin/tenants", json={"name": f"Lat {uuid.uuid4().hex[:6]}", "country": "CG"})
        tenant.raise_for_status()
        key: str = c.post(f"/v1/admin/tenants/{tenant.json()['id']}/api-keys", json={}).json()["key"]
    driver = get_driver("cg-sfec")
    settings = {
        "environment": "mock",
        **driver.mock_credentials(),
        "base_url": sim_url,
        "timeout_seconds": 60,
    }
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        r = c.put("/v1/settings/cg-sfec", json=settings)
        if r.status_code != 200:
            raise RuntimeError(f"settings: {r.status_code} {r.text[:300]}")
    return key


async def level(url: str, key: str, clients: int, per_client: int, queue: bool) -> dict[str, Any]:
    latencies: list[float] = []
    failures: list[str] = []
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120, limits=limits
    ) as api:
        certify = "/v1/invoices/{}/certify" + ("?wait=30" if queue else "")

        async def client() -> None:
            for _ in range(per_client):
                start = time.perf_counter()
                try:
                    r = await api.post(
                        "/v1/invoices", json={"authority": "cg-sfec", "approve": True, "invoice": invoice()}
                    )
                    if r.status_code != 201:
                        failures.append(f"create {r.status_code}")
                        continue
                    r = await api.post(certify.format(r.json()["id"]))
                    if r.status_code != 200 or r.json().get("status") != "certified":
                        failures.append(f"certify {r.status_code} {r.text[:120]}")
                        continue
                except httpx.HTTPError as exc:
                    failures.append(type(exc).__name__)
                    continue
                latencies.append(time.perf_counter() - start)

        t0 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(clients):
                tg.start_soon(client)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "latencies": sorted(latencies), "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--per-client", type=int, default=4, help="certifications per client per level")
    parser.add_argument("--levels", default="1,2,4,8,16,32,64")
    parser.add_argument("--queue", action="store_true", help="certify through the queue (?wait=30)")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--serve-simulator", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.serve_simulator:
        serve_simulator(args.serve_simulator, args.latency)
        return
    levels = [int(x) for x in args.levels.split(",")]

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sim_argv = [sys.executable, __file__, "--latency", str(args.latency), "--serve-simulator", "{port}"]
        db_url = args.database_url or f"sqlite:///{tmp}/gateway.db"
        gw_argv = [str(FISCALGATE_BIN), "serve", "--port", "{port}", "--database-url", db_url]
        gw_argv += ["--workers", str(max(levels) if args.queue else 0)]
        if args.processes > 1:
            gw_argv += ["--processes", str(args.processes)]
        env = {**gateway_env(), "FISCALGATE_ALLOW_PRIVATE_URLS": "1"}
        with (
            server(sim_argv, {}, tmp, tmp / "sim.log", health="/v1/invoices") as (sim_url, _),
            server(gw_argv, env, tmp, tmp / "gateway.log") as (gw_url, _),
        ):
            key = setup(gw_url, sim_url)
            anyio.run(level, gw_url, key, 2, 2, args.queue)  # warm-up
            rows = []
            for clients in levels:
                r = anyio.run(level, gw_url, key, clients, args.per_client, args.queue)
                done = len(r["latencies"])
                rate = done / r["seconds"]
                bound = clients / args.latency
                lat = r["latencies"] or [float("nan")]
                p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
                rows.append(
                    f"| {clients} | {done} | {rate:.1f} | {bound:.0f} | {rate / bound * 100:.0f} % | "
                    f"{statistics.median(lat) * 1000:.0f} | {p99 * 1000:.0f} | "
                    f"{len(r['failures'])}{' (' + r['failures'][0] + ')' if r['failures'] else ''} |"
                )
    mode = "through the queue (?wait=30)" if args.queue else "synchronous certify"
    print(
        f"Gateway under authority latency L = {args.latency * 1000:.0f} ms (SFEC simulator apart), {mode}, "
        f"serve --processes {args.processes}, {db_url.split(':')[0]}; "
        f"{machine(model=True, python=False, loads=1)}; {args.per_client} create+certify per client.\n"
    )
    print("| C | certified | per s | bound C/L | share | p50 ms | p99 ms | failures |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
