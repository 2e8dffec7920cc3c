"""Server CPU per create + certify, measured on the real server process, against a floor.

`fiscalgate serve` runs as a child process (uvicorn, one process unless --processes; the embedded
queue worker on, as a user runs it), each authority in `mock` (its simulator in-process, its memory
kept in the gateway's database). A client in this process creates (approved) and certifies
invoices one at a time over a keep-alive connection, and the server's CPU (user + system, all its
threads, from /proc/PID/stat) is read before and after each authority's run.

The floor (benchmarks/floor_app.py, served by the same uvicorn) is two bare JSON requests with one
fsynced SQLite write each and no authority call; it runs in the same invocation, interleaved with
the gateway's runs, and each gateway figure is printed as a ratio of it (issue 13: target <= 4x).

    python benchmarks/gateway_cpu.py [--n 100] [--rounds 3] [--lines 1000] [--preload N] [--postgres]

`--postgres` runs the gateway on FISCALGATE_TEST_POSTGRES_URL too (a fresh schema, dropped after).
`--lines N` also certifies a few FNE invoices of N lines and prints the gateway CPU per invoice.
`--preload N` certifies N invoices per authority before measuring (a database and simulator
memories that are no longer empty).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from support import machine, scratch_schema, utc_now

from fiscalgate.authorities import get_driver

AUTHORITIES = ("ci-fne", "bj-emecef", "cg-sfec")
ADMIN = "bench-admin"
HERE = Path(__file__).resolve().parent
FISCALGATE_BIN = Path(sys.executable).with_name("fiscalgate")
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and its live children (uvicorn's worker processes)."""
    total = 0.0
    for p in (pid, *_children(pid)):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    return total


def wait_ready(url: str, proc: subprocess.Popen[bytes], health: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + health, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


@contextmanager
def server(
    argv: list[str], env: dict[str, str], cwd: Path, log: Path, health: str = "/healthz"
) -> Iterator[tuple[str, int]]:
    port = free_port()
    argv = [arg.replace("{port}", str(port)) for arg in argv]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env={**os.environ, **env}, cwd=cwd, stdout=out, stderr=out)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc, health)
            yield url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def invoice(authority: str, lines: int = 2) -> dict[str, Any]:
    items = [
        {"description": f"Article {i}", "quantity": "2", "unit_price": str(1000 + i)} for i in range(lines)
    ]
    return {
        "number": f"B-{uuid.uuid4().hex[:12]}",
        "currency": "XAF" if authority == "cg-sfec" else "XOF",
        "seller": {"name": "Boutique Bench"},
        "buyer": {"kind": "individual", "name": "Client", "phone": "0709080765", "email": "c@example.ci"},
        "operator": {"name": "Caisse 1"},
        "lines": items,
        "payments": [{"method": "cash"}],
    }


def setup_tenant(url: str) -> httpx.Client:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=url, headers=admin, timeout=60) as c:
        tenant = c.post(
            "/v1/admin/tenants",
            json={"name": f"Bench {uuid.uuid4().hex[:6]}", "country": "CI", "modules": ["mecef", "sfec"]},
        )
        tenant.raise_for_status()
        key = c.post(f"/v1/admin/tenants/{tenant.json()['id']}/api-keys", json={}).json()["key"]
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120)
    for code in AUTHORITIES:
        data = {"environment": "mock", **get_driver(code).mock_credentials()}
        r = api.put(f"/v1/settings/{code}", json=data)
        if r.status_code != 200:
            raise RuntimeError(f"settings {code}: {r.status_code} {r.text[:300]}")
    return api


def create_and_certify(api: httpx.Client, authority: str, lines: int = 2) -> None:
    r = api.post(
        "/v1/invoices", json={"authority": authority, "approve": True, "invoice": invoice(authority, lines)}
    )
    if r.status_code != 201:
        raise RuntimeError(f"create {authority}: {r.status_code} {r.text[:300]}")
    r = api.post(f"/v1/invoices/{r.json()['id']}/certify")
    if r.status_code != 200 or r.json()["status"] != "certified":
        raise RuntimeError(f"certify {authority}: {r.status_code} {r.text[:300]}")


def floor_pair(c: httpx.Client, body: dict[str, Any]) -> None:
    for path in ("/create", "/certify"):
        r = c.post(path, json=body)
        r.raise_for_status()


def measure(pid: int, n: int, one: Any) -> float:
    """CPU ms of the server per call of `one`, over `n` calls."""
    cpu0 = cpu_seconds(pid)
    for _ in range(n):
        one()
    return (cpu_seconds(pid) - cpu0) / n * 1000


def gateway_env() -> dict[str, str]:
    return {
        "FISCALGATE_ADMIN_TOKEN": ADMIN,
        "FISCALGATE_SECRET_KEY": Fernet.generate_key().decode(),
        # This measures the gateway's cost, not its rate limits (issue 14).
        "FISCALGATE_RATE_LIMIT_PER_KEY": "0",
        "FISCALGATE_RATE_LIMIT_PER_SOURCE": "0",
    }


def run(args: argparse.Namespace, tmp: Path, databases: list[tuple[str, str]]) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {}
    floor_argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "floor_app:app",
        "--app-dir",
        str(HERE),
        "--port",
        "{port}",
        "--log-level",
        "warning",
    ]
    with server(floor_argv, {"FLOOR_DB": str(tmp / "floor.db")}, tmp, tmp / "floor.log") as (furl, fpid):
        floor = httpx.Client(base_url=furl, timeout=60)
        body = invoice("ci-fne")
        for _ in range(20):
            floor_pair(floor, body)
        for label, db_url in databases:
            gw_argv = [str(FISCALGATE_BIN), "serve", "--port", "{port}", "--database-url", db_url]
            if args.processes > 1:
                gw_argv += ["--processes", str(args.processes)]
            work = tmp / label
            work.mkdir(exist_ok=True)
            with server(gw_argv, gateway_env(), work, work / "gateway.log") as (gurl, gpid):
                api = setup_tenant(gurl)
                for _ in range(3 + args.preload):  # warm-up: simulators built, code imported, pools filled
                    for code in AUTHORITIES:
                        create_and_certify(api, code)
                for _ in range(args.rounds):
                    # The floor's pairs are ~20x cheaper: 5x more of them, for the clock's 10 ms ticks.
                    ms = measure(fpid, 5 * args.n, partial(floor_pair, floor, body))
                    figures.setdefault("floor", []).append(ms)
                    for code in AUTHORITIES:
                        ms = measure(gpid, args.n, partial(create_and_certify, api, code))
                        figures.setdefault(f"{label} {code}", []).append(ms)
                if args.lines:
                    for _ in range(args.rounds):
                        ms = measure(gpid, 3, partial(create_and_certify, api, "ci-fne", args.lines))
                        figures.setdefault(f"{label} ci-fne {args.lines} lines", []).append(ms)
                api.close()
        floor.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100, help="invoices per authority per round (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--lines", type=int, default=0, help="also certify FNE invoices of this many lines")
    parser.add_argument(
        "--preload", type=int, default=0, help="certify this many invoices per authority first, unmeasured"
    )
    parser.add_argument("--processes", type=int, default=1, help="serve --processes (default 1)")
    parser.add_argument("--postgres", action="store_true", help="also on FISCALGATE_TEST_POSTGRES_URL")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        databases = [("SQLite", f"sqlite:///{tmp}/gateway.db")]
        pg = os.environ.get("FISCALGATE_TEST_POSTGRES_URL")
        if args.postgres:
            if not pg:
                raise SystemExit("--postgres needs FISCALGATE_TEST_POSTGRES_URL")
            databases.append(("PostgreSQL", stack.enter_context(scratch_schema(pg, "fg_cpu"))))
        figures = run(args, tmp, databases)

    print(
        f"Server CPU per create + certify, {utc_now()}: {machine(model=True)}; "
        f"{args.n} invoices x {args.rounds} interleaved rounds, one at a time, "
        f"serve --processes {args.processes}.\n"
    )
    floor = statistics.median(figures["floor"])
    print("| run | CPU ms per invoice (median) | rounds | x floor |")
    print("|---|---:|---|---:|")
    for name, values in figures.items():
        med = statistics.median(values)
        each = " ".join(f"{v:.1f}" for v in values)
        ratio = "1.0" if name == "floor" else f"{med / floor:.1f}"
        print(f"| {name} | {med:.1f} | {each} | {ratio} |")


if __name__ == "__main__":
    main()
