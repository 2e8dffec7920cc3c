"""The issue's "done when", run for real on PostgreSQL: `fiscalgate serve` (API only) and N
`fiscalgate worker` processes on one database, the three simulators run apart over sockets and
failing a share of their calls (`--rate`, default 1/3: a 503, a hang after recording the
request, a hang before it), a webhook receiver on loopback that verifies every signature (and
answers 503 for its first `--receiver-down` seconds, so deliveries must be retried), and a batch
of N invoices submitted with `fiscalgate certify-batch` (its progress bar is this script's
output). Optionally a worker is killed with SIGKILL at random moments and restarted (`--kills`).

Then it checks and prints: every invoice certified or waiting for a person (with the reason the
gateway gives), 0 lost, 0 duplicates at the simulators, a signed webhook received for each
invoice's final state, and `/metrics` summed over the processes' work.

    python benchmarks/chaos_workers.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/q12 \\
        [--workers 2] [--concurrency 8] [--n 1000] [--rate 0.33] [--kills 0] [--receiver-down 10]

Each run works in a fresh schema of that database (dropped at the end unless `--keep`).
`receiver` is the sub-command the script runs itself as the webhook receiver.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
from chaos_batch import AUTHORITIES, invoice, wait_http
from cryptography.fernet import Fernet
from support import mock_settings_at, schema_of, scratch_schema

from fiscalgate.simkit.serve import free_port

ADMIN = "chaos-admin"
HERE = Path(__file__).resolve().parent
FISCALGATE_BIN = Path(sys.executable).with_name("fiscalgate")
FINAL_EVENTS = ("invoice.certified", "invoice.rejected", "invoice.failed", "invoice.unknown")


# --- the webhook receiver (its own process) ---------------------------------------------------------
def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The README's receiver check, copied as a receiver would."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
        received = fields["v1"]
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received)


def receiver_main(port: int, down: float, log_path: Path) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    secret = os.environ["CHAOS_WEBHOOK_SECRET"]
    first: list[float] = []
    log = log_path.open("a", buffering=1)
    counts: Counter[str] = Counter()

    async def hook(request: Request) -> Response:
        body = await request.body()
        now = time.monotonic()
        first.append(now) if not first else None
        if now - first[0] < down:
            counts["refused_while_down"] += 1
            return Response(status_code=503)
        ok = verify(secret, request.headers.get("fiscalgate-signature", ""), body)
        counts["signed" if ok else "bad_signature"] += 1
        event = json.loads(body) if ok else {}
        log.write(
            json.dumps(
                {
                    "ok": ok,
                    "event_id": request.headers.get("fiscalgate-event-id"),
                    "type": event.get("type"),
                    "attempt": request.headers.get("fiscalgate-delivery-attempt"),
                    "invoice_id": (event.get("data") or {}).get("invoice_id"),
                    "status": (event.get("data") or {}).get("status"),
                }
            )
            + "\n"
        )
        return Response(status_code=204 if ok else 400)

    async def state(_request: Request) -> JSONResponse:
        return JSONResponse(dict(counts))

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"]), Route("/_state", state)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")


# --- the orchestration ------------------------------------------------------------------------------
class Workers:
    """N `fiscalgate worker` processes, one of which can be killed -9 and started again."""

    def __init__(self, n: int, concurrency: int, url: str, env: dict[str, str], workdir: Path) -> None:
        self.cmd = [str(FISCALGATE_BIN), "worker", "--database-url", url, "--concurrency", str(concurrency)]
        self.env, self.workdir = env, workdir
        self.procs = [self._start(i) for i in range(n)]

    def _start(self, i: int) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"worker-{i}.log").open("ab")
        return subprocess.Popen(self.cmd, env=self.env, stdout=log, stderr=log)

    def kill_one(self, rng: random.Random) -> int:
        i = rng.randrange(len(self.procs))
        os.kill(self.procs[i].pid, signal.SIGKILL)
        self.procs[i].wait()
        self.procs[i] = self._start(i)
        return i

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                p.kill()


def all_invoices(api: httpx.Client) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        page = api.get("/v1/invoices", params=params)
        page.raise_for_status()
        body = page.json()
        rows += body["items"]
        if not body.get("next"):
            return rows
        params = {"limit": 1000, "cursor": body["next"]}


def read_hooks(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def metric_sum(text_: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text_.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if not m:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    rec = sub.add_parser("receiver")
    rec.add_argument("--port", type=int, required=True)
    rec.add_argument("--down", type=float, default=0)
    rec.add_argument("--log", type=Path, required=True)
    parser.add_argument("--database-url", default=os.environ.get("FISCALGATE_TEST_POSTGRES_URL"))
    parser.add_argument("--workers", type=int, default=2, help="fiscalgate worker processes")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs at a time per worker")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1 / 3, help="share of simulator calls that fail")
    parser.add_argument("--chunk", type=int, default=250)
    parser.add_argument("--kills", type=int, default=0, help="kills -9 of a random worker")
    parser.add_argument("--receiver-down", type=float, default=10, help="seconds the receiver answers 503")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds certify-batch may follow")
    parser.add_argument("--keep", action="store_true", help="keep the schema and the work directory")
    args = parser.parse_args()
    if args.command == "receiver":
        receiver_main(args.port, args.down, args.log)
        return
    if not args.database_url or not args.database_url.startswith("postgres"):
        raise SystemExit("--database-url must be a PostgreSQL URL (or set FISCALGATE_TEST_POSTGRES_URL)")

    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="fg-chaos-workers-"))
    with scratch_schema(args.database_url, "fg_chaos", keep=args.keep) as url:
        chaos(args, rng, workdir, url)


def chaos(args: argparse.Namespace, rng: random.Random, workdir: Path, url: str) -> None:
    """The run, in the schema of `url`."""
    hook_secret = "whsec_" + secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "FISCALGATE_ADMIN_TOKEN": ADMIN,
        "FISCALGATE_SECRET_KEY": Fernet.generate_key().decode(),
        "FISCALGATE_BREAKER_COOLDOWN": "2",
        "FISCALGATE_ALLOW_PRIVATE_URLS": "1",  # simulators and receiver on 127.0.0.1
        "FISCALGATE_WEBHOOK_RETRY_BASE_SECONDS": "2",  # the receiver's outage is seconds, not hours
        "FISCALGATE_WEBHOOK_RETRY_MAX_SECONDS": "10",
        "CHAOS_WEBHOOK_SECRET": hook_secret,
        # every process's counters in one directory: serve's /metrics sums the workers' work
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
    }
    children: list[subprocess.Popen[bytes]] = []
    sims: dict[str, str] = {}
    workers: Workers | None = None
    started = time.monotonic()
    try:
        for seed, code in enumerate(AUTHORITIES):
            port = free_port()
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(HERE / "chaos_batch.py"),
                        "simulator",
                        "--authority",
                        code,
                        "--port",
                        str(port),
                        "--rate",
                        str(args.rate),
                        "--seed",
                        str(args.seed * 10 + seed),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=(workdir / f"{code}.log").open("ab"),
                )
            )
            sims[code] = f"http://127.0.0.1:{port}"
        hook_port = free_port()
        hook_log = workdir / "webhooks.jsonl"
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "receiver",
                    "--port",
                    str(hook_port),
                    "--down",
                    str(args.receiver_down),
                    "--log",
                    str(hook_log),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(workdir / "receiver.log").open("ab"),
            )
        )
        for sim_url in sims.values():
            wait_http(sim_url + "/_chaos/state")
        wait_http(f"http://127.0.0.1:{hook_port}/_state")

        gw_port = free_port()
        gw_url = f"http://127.0.0.1:{gw_port}"
        serve_log = (workdir / "serve.log").open("ab")
        children.append(
            subprocess.Popen(
                [
                    str(FISCALGATE_BIN),
                    "serve",
                    "--port",
                    str(gw_port),
                    "--database-url",
                    url,
                    "--workers",
                    "0",
                ],
                env=env,
                cwd=workdir,
                stdout=serve_log,
                stderr=serve_log,
            )
        )
        wait_http(gw_url + "/healthz")
        workers = Workers(args.workers, args.concurrency, url, env, workdir)

        admin = httpx.Client(base_url=gw_url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=120)
        tenant = admin.post(
            "/v1/admin/tenants", json={"name": "Chaos", "country": "CI", "modules": ["fne", "mecef", "sfec"]}
        ).json()
        key = admin.post(f"/v1/admin/tenants/{tenant['id']}/api-keys", json={"label": "chaos"}).json()["key"]
        api = httpx.Client(base_url=gw_url, headers={"Authorization": f"Bearer {key}"}, timeout=120)
        for code, sim_url in sims.items():
            api.put(f"/v1/settings/{code}", json=mock_settings_at(code, sim_url)).raise_for_status()
        api.post(
            "/v1/webhooks",
            json={
                "url": f"http://127.0.0.1:{hook_port}/hook",
                "events": [*FINAL_EVENTS, "authority.down", "authority.up"],
                "secret": hook_secret,
            },
        ).raise_for_status()

        items = [
            {"authority": AUTHORITIES[i % 3], "invoice": invoice(AUTHORITIES[i % 3], i)}
            for i in range(args.n)
        ]
        batch_file = workdir / "invoices.jsonl"
        batch_file.write_text("".join(json.dumps(item) + "\n" for item in items))

        stop_kills = threading.Event()
        kills: list[str] = []

        def killer() -> None:
            assert workers is not None
            for _ in range(args.kills):
                if stop_kills.wait(rng.uniform(3.0, 15.0)):
                    return
                i = workers.kill_one(rng)
                kills.append(f"worker {i} at {time.monotonic() - started:.0f} s")

        kill_thread = threading.Thread(target=killer, daemon=True)
        kill_thread.start()
        command = [str(FISCALGATE_BIN), "certify-batch", str(batch_file), "--url", gw_url, "--key", key,
                   "--chunk", str(args.chunk), "--timeout", str(args.timeout)]  # fmt: skip
        print("$ fiscalgate certify-batch invoices.jsonl --url ... --key ... --chunk", args.chunk, flush=True)
        exit_code = subprocess.call(command, env=env)
        stop_kills.set()
        kill_thread.join()
        certified_after = time.monotonic() - started

        rows = all_invoices(api)
        numbers = {i["invoice"]["number"] for i in items}
        lost = numbers - {r["number"] for r in rows}
        final = {r["id"]: r for r in rows}
        # Webhooks: wait (bounded) until each invoice's current state has been told.
        deadline = time.monotonic() + 120
        while True:
            hooks = read_hooks(hook_log)
            told = {(h["invoice_id"], h["status"]) for h in hooks if h["ok"] and h["type"] in FINAL_EVENTS}
            missing = [r for r in rows if (r["id"], r["status"]) not in told]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(1)
        elapsed = time.monotonic() - started
        metrics = admin.get("/metrics").text
        receiver = httpx.get(f"http://127.0.0.1:{hook_port}/_state").json()

        print(
            f"\n{args.n} invoices, {args.workers} workers x {args.concurrency}, {args.rate:.0%} faults, "
            f"{len(kills)} kills -9 ({', '.join(kills) or 'none'}), PostgreSQL; certify-batch exit "
            f"{exit_code} after {certified_after:.0f} s, webhooks settled after {elapsed:.0f} s"
        )
        print(f"in the gateway: {len(rows)} invoices, {len(lost)} lost")
        print(
            f"{'authority':<10} {'certified':>9} {'unknown':>8} {'failed':>7} {'other':>6} "
            f"{'at simulator':>12} {'duplicates':>10} {'faults':>7}"
        )
        totals: Counter[str] = Counter()
        for code, sim_url in sims.items():
            statuses = Counter(r["status"] for r in rows if r["authority"] == code)
            held = httpx.get(sim_url + "/_chaos/state").json()
            uncertain = statuses["unknown"] + statuses["submitting"]
            duplicates = max(0, held["certified"] - statuses["certified"] - uncertain)
            other = sum(v for k, v in statuses.items() if k not in ("certified", "unknown", "failed"))
            totals.update(statuses)
            totals["duplicates"] += duplicates
            print(
                f"{code:<10} {statuses['certified']:>9} {statuses['unknown']:>8} {statuses['failed']:>7} "
                f"{other:>6} {held['certified']:>12} {duplicates:>10} {sum(held['injected'].values()):>7}"
                + (f"   pending at the e-MCF: {held['pending']}" if "pending" in held else "")
            )
        waiting = [r for r in rows if r["status"] != "certified"]
        reasons = Counter(
            re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d{2}:\d{2}:\d{2}|\d+", "#", r.get("status_detail") or "-")
            for r in waiting
        )
        if waiting:
            print("not certified, by the reason the gateway states (digits as #):")
            for reason, count in reasons.most_common():
                print(f"  {count:>4} x {reason}")
        in_progress = [r for r in rows if r["status"] in ("queued", "submitting", "approved")]
        hook_ids = Counter(h["event_id"] for h in hooks if h["ok"])
        per_invoice: dict[str, set[str]] = defaultdict(set)
        for h in hooks:
            if h["ok"] and h["invoice_id"]:
                per_invoice[h["invoice_id"]].add(h["type"])
        print(
            f"webhooks: {sum(hook_ids.values())} signed deliveries of {len(hook_ids)} events, "
            f"{receiver.get('bad_signature', 0)} bad signatures, {receiver.get('refused_while_down', 0)} "
            f"refused while the receiver was down (retried), "
            f"{sum(1 for c in hook_ids.values() if c > 1)} events delivered more than once; "
            f"{len(final) - len(missing)}/{len(final)} invoices with their final state told, "
            f"{len(missing)} missing"
        )
        metric_certified = metric_sum(metrics, "fiscalgate_certifications_total", outcome="certified")
        # an unknown that a reconciliation found certified is counted there, not as a certification
        metric_reconciled = metric_sum(metrics, "fiscalgate_reconciliations_total", result="certified")
        print(
            f"/metrics (served by `serve`, which certified nothing itself; summed over the processes): "
            f"fiscalgate_certifications_total{{outcome=certified}} = {metric_certified:.0f} "
            f"+ fiscalgate_reconciliations_total{{result=certified}} = {metric_reconciled:.0f}, "
            f"fiscalgate_queue_depth = {metric_sum(metrics, 'fiscalgate_queue_depth'):.0f}, "
            f"fiscalgate_webhook_delivery_attempts_total = "
            f"{metric_sum(metrics, 'fiscalgate_webhook_delivery_attempts_total'):.0f}"
        )
        print(
            json.dumps(
                {
                    "invoices": args.n,
                    "lost": len(lost),
                    "certified": totals["certified"],
                    "unknown": totals["unknown"],
                    "failed": totals["failed"],
                    "in_progress": len(in_progress),
                    "duplicates": totals["duplicates"],
                    "webhook_missing": len(missing),
                    "bad_signatures": receiver.get("bad_signature", 0),
                    "metrics_certified": metric_certified + metric_reconciled,
                    "seconds": round(certified_after),
                }
            )
        )
        if args.keep:
            print(f"kept: schema {schema_of(url)}, {workdir}")
    finally:
        if workers is not None:
            workers.stop()
        for proc in children:
            if proc.poll() is None:
                proc.terminate()
        for proc in children:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
