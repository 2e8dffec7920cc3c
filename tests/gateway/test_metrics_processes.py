"""`/metrics` when the work is done by other processes: two real `fiscalgate worker` processes on
PostgreSQL certify, and the process that answers `/metrics` (which certified nothing) shows their
counters summed, through prometheus-client's multiprocess directory; without that directory it
says how many live processes its counters leave out."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.metrics import MULTIPROC_ENV
from tests.gateway.conftest import ADMIN
from tests.gateway.test_worker_process import (  # noqa: F401 (fixtures)
    FISCALGATE_BIN,
    Ledger,
    app,
    count,
    pg_url,
    queue_invoices,
    running_workers,
    secret,
    sfec_apart,
    until,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name{labels}` (labels compared as a set), None when absent."""
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$", line)
        if m and dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or "")) == labels:
            return float(m.group(2))
    return None


async def scrape(app: FastAPI) -> str:  # noqa: F811
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
        r = await c.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 200, r.text
        return r.text


@pytest.fixture
def workers(pg_url: str, secret: str, tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:  # noqa: F811
    env = {
        **os.environ,
        "FISCALGATE_SECRET_KEY": secret,
        "FISCALGATE_ALLOW_PRIVATE_URLS": "1",
        MULTIPROC_ENV: str(tmp_path / "metrics"),  # created by the first process that needs it
    }
    cmd = [str(FISCALGATE_BIN), "worker", "--database-url", pg_url, "--concurrency", "4", "--poll", "0.1"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        for _ in range(2)
    ]
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def test_metrics_sum_the_counters_of_every_worker_process(
    app: FastAPI,  # noqa: F811
    sfec_apart: tuple[str, Any, Ledger],  # noqa: F811
    workers: list[subprocess.Popen[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    n = 12
    url, injector, ledger = sfec_apart
    injector.add("latency", seconds=0.2, method="POST", times=-1)  # so that both workers get some
    await until(lambda: running_workers(app) == 2, 60, "both workers beating")
    certified = {"authority": "cg-sfec", "environment": "mock", "outcome": "certified"}
    # This test process's own counters (earlier tests in it may have certified in-process).
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    own = sample(await scrape(app), "fiscalgate_certifications_total", **certified) or 0
    await queue_invoices(app, url, n)
    await until(lambda: count(app, InvoiceRow.status == "certified") == n, 90, "all certified")
    assert ledger.certified == n

    # Without the directory: only this process's counters, unchanged (the workers certified), and
    # it says it leaves two processes out.
    alone = await scrape(app)
    assert (sample(alone, "fiscalgate_certifications_total", **certified) or 0) == own
    assert sample(alone, "fiscalgate_processes_uncounted") == 2

    # With it: the workers' counters, summed (every certification counted once, whichever worker).
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "metrics"))
    files = sorted(p.name for p in (tmp_path / "metrics").glob("*.db"))
    # each worker certified some (its own file): the figure below is a sum, not one process's
    assert all(any(f.endswith(f"_{w.pid}.db") for f in files) for w in workers), files
    summed = await scrape(app)
    assert sample(summed, "fiscalgate_certifications_total", **certified) == n
    latency = sample(
        summed,
        "fiscalgate_authority_request_duration_seconds_count",
        authority="cg-sfec",
        environment="mock",
    )
    assert latency is not None and latency >= n
    assert sample(summed, "fiscalgate_processes_uncounted") == 0  # both on this machine

    # A worker that stopped keeps its counts in the sum (counters never go down).
    workers[0].send_signal(signal.SIGTERM)
    assert workers[0].wait(30) == 0
    assert sample(await scrape(app), "fiscalgate_certifications_total", **certified) == n
