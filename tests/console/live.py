"""A real gateway (with the console) served by uvicorn on 127.0.0.1, port 0, in a thread, for the
browser tests and the screenshot script. Readiness is awaited on uvicorn's own `started` flag."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from cryptography.fernet import Fernet

from fiscalgate.gateway import create_app
from fiscalgate.gateway.console import accounts, services
from fiscalgate.gateway.console.demo import ensure_demo_invoices
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.server import ensure_demo

PASSWORD = "correct horse battery"
OWNER = "owner@demo.test"
ADMIN = "admin@platform.test"


@dataclass
class Live:
    url: str
    gw: Gateway
    tenant_id: str


@contextmanager
def live_gateway(tmp: Path) -> Iterator[Live]:
    app = create_app(
        f"sqlite:///{tmp}/live.db",
        admin_token="admin-token",
        secret_key=Fernet.generate_key(),
        var_dir=tmp / "var",
    )
    gw: Gateway = app.state.gateway
    tenant_id, _key = ensure_demo(gw)
    for email, role, tid in (
        (OWNER, "owner", tenant_id),
        ("viewer@demo.test", "viewer", tenant_id),
        (ADMIN, "admin", None),
    ):
        gw.db.call(
            lambda s, e=email, r=role, t=tid: accounts.create_user(
                s, email=e, password=PASSWORD, role=r, tenant_id=t, name="Demo"
            )
        )
    ensure_demo_invoices(gw, tenant_id)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # polls uvicorn's own readiness flag; the deadline is generous
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Live(f"http://127.0.0.1:{port}", gw, tenant_id)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


__all__ = ["ADMIN", "OWNER", "PASSWORD", "Live", "live_gateway", "services"]
