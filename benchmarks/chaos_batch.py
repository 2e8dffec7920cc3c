"""Chaos run of the bulk path: N invoices (FNE, e-MECeF, SFEC in turn) submitted with
`POST /v1/invoices/batch` to a real `fiscalgate serve` process, while

- each authority's simulator runs in a process of its own, reached over a socket, and fails a
  share of the submissions (`--rate`, default 30 %: a 503, a hang after recording the request, a
  hang before it — the client times out either way), and
- the gateway process, whose embedded queue worker certifies them (the durable queue: retries,
  automatic reconciliation, limits), is killed with SIGKILL at random moments (`--kills`) and
  restarted (its successor heals the dead process's claims and jobs); after each restart
  the same batches are submitted again, which is how a client recovers (invoices are recognised
  by number and content: nothing is created or certified twice).

It prints what became of every invoice and what each simulator holds, which proves or disproves
"0 lost, 0 certified twice":

    python benchmarks/chaos_batch.py --n 1000 --kills 3 [--database-url postgresql+psycopg://...]

`simulator` is the sub-command the script runs itself in each simulator process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from support import mock_settings_at

from fiscalgate.authorities import get_driver
from fiscalgate.simkit.serve import free_port

AUTHORITIES = ("ci-fne", "bj-emecef", "cg-sfec")
ADMIN = "chaos-admin"


# --- the simulator processes ----------------------------------------------------------------------
def simulator_main(authority: str, port: int, rate: float, hang: float, seed: int) -> None:
    import uvicorn

    from fiscalgate.simkit.chaos import RandomFaults

    driver = get_driver(authority)
    settings = driver.parse_settings({"environment": "mock", **driver.mock_credentials()})
    if authority == "cg-sfec":
        from fiscalgate.authorities.cg_sfec.simulator.app import create_simulator

        sim = create_simulator(settings.niu, settings.api_key.get_secret_value())  # type: ignore[attr-defined]
        injector, platform = sim.app, sim.platform
    else:
        injector = driver.mock_app(settings)
        platform = injector.platform  # type: ignore[attr-defined]
    faults = RandomFaults(injector, authority, rate=rate, hang=hang, seed=seed)

    async def state(_request: Request) -> JSONResponse:
        if authority == "ci-fne":
            held = {"certified": len(platform.documents)}
        elif authority == "bj-emecef":
            held = {"certified": len(platform.invoices), "pending": len(platform.pending)}
        else:
            held = {"certified": len(platform.records)}
        return JSONResponse({**held, "submissions": faults.submissions, "injected": faults.injected})

    app = Starlette(routes=[Route("/_chaos/state", state), Mount("/", app=faults)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")


# --- the orchestration ----------------------------------------------------------------------------
def wait_http(url: str, deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Gateway:
    def __init__(self, database_url: str, workdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.workdir = workdir
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.log = (workdir / "gateway.log").open("ab")

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fiscalgate.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--database-url", self.database_url],
            cwd=self.workdir, env=self.env, stdout=self.log, stderr=self.log,
        )  # fmt: skip
        wait_http(self.url + "/healthz")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def invoice(authority: str, n: int) -> dict[str, Any]:
    # Distinct content, not only distinct numbers (e-MECeF's reconciliation recognises a pending
    # request by its content: see the gateway README).
    return {
        "number": f"CH-{authority[:2].upper()}-{n:05d}-{uuid.uuid4().hex[:6]}",
        "currency": "XAF" if authority == "cg-sfec" else "XOF",
        "seller": {"name": "Boutique Chaos"},
        "buyer": {
            "kind": "individual",
            "name": "Client Comptoir",
            "phone": "0709080765",
            "email": "c@example.ci",
        },
        "operator": {"name": "Ama"},
        "lines": [{"description": f"Article {n}", "quantity": str(1 + n % 7), "unit_price": str(1000 + n)}],
        "payments": [{"method": "cash"}],
    }


def submit(api: httpx.Client, chunks: list[list[dict[str, Any]]]) -> list[str]:
    ids = []
    for chunk in chunks:
        r = api.post("/v1/invoices/batch", json={"invoices": chunk, "approve": True, "certify": True})
        r.raise_for_status()
        ids.append(r.json()["id"])
    return ids


def progress(api: httpx.Client, batch_ids: list[str]) -> tuple[bool, int]:
    done, settled = True, 0
    for batch_id in batch_ids:
        body = api.get(f"/v1/batches/{batch_id}").json()
        done = done and body["status"] == "done"
        c = body["counts"]
        settled += c["final"] + c["waiting_for_person"] + c["refused"]
    return done, settled


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    sim = sub.add_parser("simulator")
    sim.add_argument("--authority", required=True)
    sim.add_argument("--port", type=int, required=True)
    sim.add_argument("--rate", type=float, default=0.3)
    sim.add_argument("--hang", type=float, default=1.5)
    sim.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--chunk", type=int, default=250)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database-url", default=None, help="default: a SQLite file in a temporary directory"
    )
    parser.add_argument(
        "--settle-timeout", type=float, default=120, help="seconds without progress before giving up"
    )
    args = parser.parse_args()
    if args.command == "simulator":
        simulator_main(args.authority, args.port, args.rate, args.hang, args.seed)
        return

    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="fg-chaos-"))
    database_url = args.database_url or f"sqlite:///{workdir}/chaos.db"
    sims: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    env = {
        **os.environ,
        "FISCALGATE_ADMIN_TOKEN": ADMIN,
        "FISCALGATE_SECRET_KEY": Fernet.generate_key().decode(),
        "FISCALGATE_BREAKER_COOLDOWN": "2",
        "FISCALGATE_ALLOW_PRIVATE_URLS": "1",  # the simulators run apart on 127.0.0.1
    }
    gateway = Gateway(database_url, workdir, env)
    started = time.monotonic()
    try:
        for seed, code in enumerate(AUTHORITIES):
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, __file__, "simulator", "--authority", code, "--port", str(port),
                 "--rate", str(args.rate), "--seed", str(args.seed * 10 + seed)],
                stdout=subprocess.DEVNULL, stderr=(workdir / f"{code}.log").open("ab"),
            )  # fmt: skip
            sims[code] = (proc, f"http://127.0.0.1:{port}")
        for _, url in sims.values():
            wait_http(url + "/_chaos/state")
        gateway.start()

        admin = httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=300)
        tenant = admin.post(
            "/v1/admin/tenants", json={"name": "Chaos", "country": "CI", "modules": ["fne", "mecef", "sfec"]}
        ).json()
        key = admin.post(f"/v1/admin/tenants/{tenant['id']}/api-keys", json={"label": "chaos"}).json()["key"]
        api = httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=300)
        for code, (_, url) in sims.items():
            r = api.put(f"/v1/settings/{code}", json=mock_settings_at(code, url))
            r.raise_for_status()

        items = [
            {"authority": AUTHORITIES[i % 3], "invoice": invoice(AUTHORITIES[i % 3], i)}
            for i in range(args.n)
        ]
        chunks = [items[i : i + args.chunk] for i in range(0, len(items), args.chunk)]
        batch_ids = submit(api, chunks)
        print(f"submitted {args.n} invoices in {len(chunks)} batches", flush=True)
        for kill in range(args.kills):
            time.sleep(rng.uniform(1.0, 6.0))
            _, settled = progress(api, batch_ids)
            gateway.kill()
            print(f"kill -9 #{kill + 1} of the gateway at {settled}/{args.n} settled", flush=True)
            gateway.start()
            batch_ids = submit(api, chunks)  # the client's recovery: the same batches again

        last, last_change = -1, time.monotonic()
        while True:
            done, settled = progress(api, batch_ids)
            if done:
                break
            if settled != last:
                last, last_change = settled, time.monotonic()
            elif time.monotonic() - last_change > args.settle_timeout:
                print(f"no progress for {args.settle_timeout:.0f} s: stopping here", flush=True)
                break
            time.sleep(1)
        elapsed = time.monotonic() - started

        rows: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 1000}
        while True:  # the list envelope {items, total, next}, page by page
            page = api.get("/v1/invoices", params=params).json()
            rows += page["items"]
            if not page.get("next"):
                break
            params = {"limit": 1000, "cursor": page["next"]}
        numbers = {i["invoice"]["number"] for i in items}
        kind = database_url.split(":")[0]
        print(f"\n{args.n} invoices, {args.kills} kills -9, {args.rate:.0%} faults, {elapsed:.0f} s, {kind}")
        print(f"in the gateway: {len(rows)} invoices, {len(numbers - {r['number'] for r in rows})} lost")
        print(
            f"{'authority':<10} {'certified':>9} {'unknown':>8} {'submitting':>10} {'failed':>7} "
            f"{'other':>6} {'at simulator':>12} {'duplicates':>10} {'faults':>7}"
        )
        totals: Counter[str] = Counter()
        for code, (_, url) in sims.items():
            statuses = Counter(r["status"] for r in rows if r["authority"] == code)
            held = httpx.get(url + "/_chaos/state").json()
            uncertain = statuses["unknown"] + statuses["submitting"]
            # Every certification at the simulator belongs to an invoice certified in the gateway,
            # or to one still uncertain there (its call was cut); more than that is a duplicate.
            duplicates = max(0, held["certified"] - statuses["certified"] - uncertain)
            other = sum(
                v for k, v in statuses.items() if k not in ("certified", "unknown", "submitting", "failed")
            )
            totals.update(statuses)
            totals["duplicates"] += duplicates
            print(
                f"{code:<10} {statuses['certified']:>9} {statuses['unknown']:>8} "
                f"{statuses['submitting']:>10} {statuses['failed']:>7} {other:>6} {held['certified']:>12} "
                f"{duplicates:>10} "
                f"{sum(held['injected'].values()):>7}"
                + (f"   pending at the e-MCF: {held['pending']}" if "pending" in held else "")
            )
        print(json.dumps({"certified": totals["certified"], "duplicates": totals["duplicates"],
                          "unknown": totals["unknown"], "submitting": totals["submitting"],
                          "failed": totals["failed"], "seconds": round(elapsed)}))  # fmt: skip
    finally:
        gateway.stop()
        for proc, _ in sims.values():
            proc.terminate()
        for proc, _ in sims.values():
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
