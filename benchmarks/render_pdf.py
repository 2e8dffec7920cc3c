"""Time to render the printed invoice (fiscalgate.printing): an FNE A4 invoice of 10 and of 500
lines, plus the 80 mm receipt of 10 lines, certified once by the in-process simulator; the figure
is the render alone (PDF bytes out), median and p90 over N runs, with the CPU time and PDF size.

    python benchmarks/render_pdf.py [--n 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.base import Connection
from fiscalgate.core.certification import Certification
from fiscalgate.core.invoice import Invoice, parse_invoice
from fiscalgate.printing import render_invoice_pdf

EXAMPLE = Path(__file__).parents[1] / "src/fiscalgate/authorities/ci_fne/examples/b2b_invoice.json"


def _invoice(lines: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["number"] = f"BENCH-{lines}"
    template = data["lines"][0]
    data["lines"] = [{**template, "description": f"article {i}", "reference": f"R{i}"} for i in range(lines)]
    return data


async def _certify(data: dict[str, Any]) -> Certification:
    driver = get_driver("ci-fne")
    settings = driver.parse_settings({"environment": "mock", **driver.mock_credentials()})
    connection = Connection(
        base_url=driver.base_url(settings),
        environment=settings.environment,
        transport=httpx.ASGITransport(app=driver.mock_app(settings)),
        timeout=60,
    )
    return await driver.certify(parse_invoice(data), settings, connection)


def _measure(invoice: Invoice, cert: Certification, layout: str, n: int) -> dict[str, float]:
    render_invoice_pdf(invoice, cert, layout=layout)  # warm-up (imports, font parsing caches)
    walls, cpus, size = [], [], 0
    for _ in range(n):
        w0, c0 = time.perf_counter(), time.process_time()
        pdf = render_invoice_pdf(invoice, cert, layout=layout)  # type: ignore[arg-type]
        walls.append((time.perf_counter() - w0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
        size = len(pdf)
    walls.sort()
    return {
        "p50": statistics.median(walls),
        "p90": walls[int(0.9 * (len(walls) - 1))],
        "cpu": statistics.median(cpus),
        "kib": size / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    print(
        f"# {platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, n={args.n}"
    )
    print("| invoice | layout | pages | render p50 (ms) | p90 (ms) | CPU p50 (ms) | PDF (KiB) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for lines, layout in ((10, "a4"), (500, "a4"), (10, "receipt")):
        data = _invoice(lines)
        cert = anyio.run(_certify, data)
        invoice = parse_invoice(data)
        pdf = render_invoice_pdf(invoice, cert, layout=layout)  # type: ignore[arg-type]
        pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
        r = _measure(invoice, cert, layout, args.n if lines < 100 else max(3, args.n // 4))
        figures = f"{r['p50']:.1f} | {r['p90']:.1f} | {r['cpu']:.1f} | {r['kib']:.0f}"
        print(f"| {lines} lines | {layout} | {pages} | {figures} |")


if __name__ == "__main__":
    main()
