"""Per-authority cost, without the gateway: local validation + payload building (pure, no I/O),
and a full certification by the driver against its in-process simulator (HTTP over ASGI).

Each authority certifies its own example invoice (`src/fiscalgate/authorities/*/examples/`), with
a fresh invoice number each time. Figures are medians over N runs, per invoice.

    python benchmarks/authority_roundtrip.py [--n 200]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.base import AuthorityDriver, AuthoritySettings, Connection, Environment
from fiscalgate.core.invoice import Invoice, parse_invoice

EXAMPLES = Path(__file__).parents[1] / "src/fiscalgate/authorities"
CASES = {
    "ci-fne": "ci_fne/examples/b2b_invoice.json",
    "bj-emecef": "bj_emecef/examples/fv_with_aib.json",
    "cg-sfec": "cg_sfec/examples/invoice.json",
}


def _invoice(code: str, number: str) -> Invoice:
    data: dict[str, Any] = json.loads((EXAMPLES / CASES[code]).read_text(encoding="utf-8"))
    data["number"] = number
    return parse_invoice(data)


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


async def _certify_all(
    driver: AuthorityDriver, settings: AuthoritySettings, invoices: list[Invoice]
) -> list[float]:
    connection = Connection(
        base_url=driver.base_url(settings),
        environment=Environment.MOCK,
        transport=httpx.ASGITransport(app=driver.mock_app(settings)),
    )
    times = []
    for invoice in invoices:
        start = time.perf_counter()
        await driver.certify(invoice, settings, connection)
        times.append(time.perf_counter() - start)
    return times


def run(code: str, n: int) -> dict[str, float]:
    driver = get_driver(code)
    settings = driver.parse_settings({"environment": "mock", **driver.mock_credentials()})
    invoices = [_invoice(code, f"BENCH-{i:05d}") for i in range(n)]
    local = []
    for invoice in invoices:
        start = time.perf_counter()
        problems = driver.validate(invoice, settings)
        driver.build_payload(invoice, settings)
        local.append(time.perf_counter() - start)
        assert not problems, problems
    cpu_start = time.process_time()
    wall = anyio.run(_certify_all, driver, settings, invoices)
    cpu = (time.process_time() - cpu_start) / n
    return {
        "local_us": _median_us(local),
        "certify_ms": statistics.median(wall) * 1e3,
        "p99_ms": sorted(wall)[int(len(wall) * 0.99) - 1] * 1e3,
        "cpu_ms": cpu * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="invoices per authority (default 200)")
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, n={args.n}")
    print()
    print("| authority | validate + payload (µs) | certify p50 (ms) | p99 (ms) | CPU per certify (ms) |")
    print("|---|---:|---:|---:|---:|")
    for code in CASES:
        r = run(code, args.n)
        cells = [f"{r['local_us']:.0f}", *(f"{r[k]:.2f}" for k in ("certify_ms", "p99_ms", "cpu_ms"))]
        print(f"| {code} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
