"""`fiscalgate serve --processes N`: N server processes on one port, each answering with its own
app (its own database pools, heartbeat and embedded queue worker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fiscalgate.simkit.serve import free_port

FISCALGATE = Path(sys.executable).with_name("fiscalgate")


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def test_two_processes_serve_one_port(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "FISCALGATE_ADMIN_TOKEN": "t-admin", "FISCALGATE_DATABASE_URL": ""}
    argv = [str(FISCALGATE), "serve", "--port", str(port), "--processes", "2", "--workers", "0"]
    argv += ["--database-url", f"sqlite:///{tmp_path}/gw.db"]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            workers = _children(proc.pid)
            try:
                up = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                up = False
            if up and len(workers) >= 2:
                break
            time.sleep(0.1)
        assert len(workers) >= 2, (tmp_path / "serve.log").read_text()
        # Each process built its app from what the parent handed over: the admin token works.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            for _ in range(6):
                r = c.get("/v1/admin/tenants", headers={"Authorization": "Bearer t-admin"})
                assert r.status_code == 200, r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
    assert "2 processes" in (tmp_path / "serve.log").read_text()
