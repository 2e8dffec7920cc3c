"""Helpers the benchmark scripts share (imported as a sibling: `from support import ...`, the
scripts being run as `python benchmarks/X.py`)."""

from __future__ import annotations

import os
import platform
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from fiscalgate.authorities import get_driver
from fiscalgate.gateway.db import normalise_url


@contextmanager
def scratch_schema(base: str, prefix: str, *, keep: bool = False) -> Iterator[str]:
    """A fresh schema `<prefix>_<10 hex>` on the PostgreSQL server of `base`, dropped on the way
    out (unless `keep`): yields `base` with `options=-csearch_path=<schema>`."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = create_engine(normalise_url(base))
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            if not keep:
                with engine.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


def schema_of(url: str) -> str:
    """The schema a `scratch_schema` URL points at."""
    return str(make_url(url).query["options"]).removeprefix("-csearch_path=")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def utc_now() -> str:
    """The minute the figures were taken, e.g. `2026-01-31 12:34 UTC`."""
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"


def machine(*, model: bool = False, python: bool = True, loads: int = 2) -> str:
    """The machine a table was measured on: `N CPU(s)[, model][, Python X.Y.Z][, load average a b]`
    (`loads`: how many of the 1, 5 and 15 minute load averages; 0 for none)."""
    parts = [f"{os.cpu_count()} CPU(s)"]
    if model:
        parts.append(cpu_model())
    if python:
        parts.append(f"Python {platform.python_version()}")
    if loads:
        parts.append("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()[:loads]))
    return ", ".join(parts)


def mock_settings_at(code: str, sim_url: str) -> dict[str, object]:
    """`mock` settings of authority `code` sending to a simulator served at `sim_url` (the driver's
    own path kept), with a 1 s timeout."""
    driver = get_driver(code)
    placeholder = driver.base_url(driver.parse_settings({"environment": "mock", **driver.mock_credentials()}))
    return {
        "environment": "mock",
        **driver.mock_credentials(),
        "base_url": sim_url + urlsplit(placeholder).path.rstrip("/"),
        "timeout_seconds": 1,
    }
