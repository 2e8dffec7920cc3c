"""`fiscalgate serve [--demo]`: migrate, optionally set up the demo tenant, run uvicorn."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
from typing import Any

import click
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiscalgate.authorities import descriptor, descriptors
from fiscalgate.authorities.base import Environment
from fiscalgate.gateway.api.app import ADMIN_TOKEN_ENV, create_app
from fiscalgate.gateway.db import DEFAULT_DATABASE_URL, migrate, utcnow
from fiscalgate.gateway.queue.worker import DEFAULT_CONCURRENCY
from fiscalgate.gateway.runtime import PUBLIC_URL_ENV, Gateway
from fiscalgate.gateway.settings.models import AuthorityConfig
from fiscalgate.gateway.settings.service import save_settings
from fiscalgate.gateway.tenants import service as tenants
from fiscalgate.gateway.tenants.models import ApiKey
from fiscalgate.gateway.tenants.schemas import TenantCreate
from fiscalgate.gateway.tenants.service import Caller

DEMO_NAME = "Demo"
DEMO_LABEL = "demo"


def ensure_demo(gw: Gateway) -> tuple[str, str]:
    """Create the demo tenant once (the first authority's country, every authority's module, each
    one in mock) and return (tenant id, a fresh API key). Only a key's hash is stored, so the key
    printed at each start is a new one: the previous demo keys are revoked (see the README)."""
    who = Caller(tenant_id=None, trigger="admin:demo")

    def work(session: Session) -> tuple[str, str]:
        every = descriptors()
        tenant = tenants.find_tenant_by_name(session, DEMO_NAME)
        if tenant is None:
            tenant = tenants.create_tenant(
                session,
                TenantCreate(name=DEMO_NAME, country=every[0].country, modules=[d.module for d in every]),
            )
        elif set(tenant.modules) != {d.module for d in every}:
            # An authority registered since the demo was created joins it.
            tenant.modules = list(dict.fromkeys([*tenant.modules, *(d.module for d in every)]))
        for code in (d.code for d in every):
            configured = session.scalar(
                select(AuthorityConfig.id).where(
                    AuthorityConfig.tenant_id == tenant.id, AuthorityConfig.authority == code
                )
            )
            if configured is None:
                driver = gw.driver(code)
                data = {"environment": Environment.MOCK.value, **driver.mock_credentials()}
                save_settings(session, gw, who, tenant.id, code, data)
        for old in session.scalars(
            select(ApiKey).where(
                ApiKey.tenant_id == tenant.id, ApiKey.label == DEMO_LABEL, ApiKey.revoked_at.is_(None)
            )
        ):
            old.revoked_at = utcnow()
        created = tenants.issue_key(session, tenant.id, DEMO_LABEL)
        return tenant.id, created.key

    return gw.db.call(work)


def demo_invoice(authority: str) -> dict[str, Any]:
    """The authority's sample invoice (its descriptor's), under a fresh number."""
    return descriptor(authority).sample(f"DEMO-{authority.upper()}-{secrets.token_hex(3)}")


def _shell_name(code: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", descriptor(code).module.upper())


def curl_example(base: str, key: str) -> str:
    """A shell snippet that creates and certifies one invoice per authority, then credits one."""
    read_id = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id\"])'"
    auth = '-H "Authorization: Bearer $KEY"'
    lines = [f"export FG={base} KEY={key}"]
    every = [d.code for d in descriptors()]
    for code in every:
        body = json.dumps(
            {"authority": code, "approve": True, "invoice": demo_invoice(code)}, ensure_ascii=False
        )
        var = _shell_name(code)
        lines.append(
            f"{var}=$(curl -s $FG/v1/invoices {auth} -H 'Content-Type: application/json' "
            f"-d {shlex.quote(body)} | {read_id})"
        )
        lines.append(f"curl -s -X POST $FG/v1/invoices/${var}/certify {auth}; echo")
    credit = json.dumps(
        {
            "number": f"AV-DEMO-{secrets.token_hex(3)}",
            "approve": True,
            "lines": [{"original_line": 1, "quantity": "1"}],
        }
    )
    lines.append(
        f"AV=$(curl -s $FG/v1/invoices/${_shell_name(every[0])}/credit-notes {auth} "
        "-H 'Content-Type: application/json' "
        f"-d {shlex.quote(credit)} | {read_id})"
    )
    lines.append(f"curl -s -X POST $FG/v1/invoices/$AV/certify {auth}; echo")
    lines.append(f'curl -s "$FG/v1/audit?kind=authority_call&limit=10" {auth}; echo')
    return "\n".join(lines)


def demo_console_accounts(gw: Gateway, tenant_id: str, base: str) -> str:
    """Create (once) the demo owner and a platform administrator for the console; their
    passwords are kept in ./var/ so each start prints them again."""
    from pathlib import Path

    from fiscalgate.gateway.console.demo import DEMO_ADMIN, DEMO_OWNER, ensure_demo_invoices, ensure_user

    var = Path("var")
    owner, created = ensure_user(gw, var, DEMO_OWNER, "owner", tenant_id)
    if created:
        ensure_demo_invoices(gw, tenant_id)
    admin, _ = ensure_user(gw, var, DEMO_ADMIN, "admin", None)
    return (
        f"Web console: {base}/console\n"
        f"  demo owner:           {DEMO_OWNER}  password: {owner}\n"
        f"  platform administrator: {DEMO_ADMIN}  password: {admin}\n"
    )


# What `serve --processes N` hands its worker processes (each builds its own app from these).
_CHILD_ENV = "FISCALGATE_SERVE_CHILD"


def child_app() -> FastAPI:
    """The app of one of `serve --processes N`'s processes (uvicorn's factory): the database,
    token, public URL and queue concurrency come from the environment the parent set."""
    config = json.loads(os.environ[_CHILD_ENV])
    return create_app(
        config["url"],
        admin_token=config["token"],
        run_migrations=False,
        public_url=config["public"],
        workers=config["workers"],
    )


def serve(
    host: str,
    port: int,
    database_url: str | None,
    demo: bool,
    workers: int = DEFAULT_CONCURRENCY,
    run_migrations: bool = True,
    processes: int = 1,
) -> None:
    url = database_url or os.environ.get("FISCALGATE_DATABASE_URL") or DEFAULT_DATABASE_URL
    if run_migrations:
        migrate(url)
    token = os.environ.get(ADMIN_TOKEN_ENV)
    generated = token is None
    token = token or secrets.token_urlsafe(32)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown}:{port}"
    # Mock QR / verification URLs point under the public URL (see api/mock_pages.py).
    public = os.environ.get(PUBLIC_URL_ENV) or base
    app = create_app(url, admin_token=token, run_migrations=False, public_url=public, workers=workers)
    gw: Gateway = app.state.gateway
    click.echo(f"fiscalgate gateway on {base}  (docs: {base}/docs, database: {gw.db.engine.url!r})")
    if gw.public_url != base:
        click.echo(f"Public URL ({PUBLIC_URL_ENV}): {gw.public_url}")
    if generated:
        click.echo(f"Administrator token (generated for this run; set {ADMIN_TOKEN_ENV} to fix it): {token}")
    if demo:
        tenant_id, key = ensure_demo(gw)
        every = ", ".join(d.code for d in descriptors())
        click.echo(f"\nDemo tenant {tenant_id}: {every} in mock (built-in simulators).")
        click.echo(f"Demo API key (a new one at each start; the previous one is revoked):\n  {key}\n")
        click.echo("Certify an invoice with each authority, then a credit note, then read the audit log:\n")
        click.echo(curl_example(base, key) + "\n")
        click.echo(demo_console_accounts(gw, tenant_id, base))
    if processes <= 1:
        uvicorn.run(app, host=host, port=port, log_level="info")
        return
    # Several processes on one socket (uvicorn's workers): each builds its own app, with its own
    # heartbeat, embedded queue worker (of `workers` concurrency) and pools. The parent migrated
    # the schema, created the secret key under ./var and the demo; it only supervises from here.
    gw.db.dispose()
    os.environ[ADMIN_TOKEN_ENV] = token
    os.environ[_CHILD_ENV] = json.dumps({"url": url, "token": token, "public": public, "workers": workers})
    click.echo(f"{processes} processes")
    uvicorn.run(
        "fiscalgate.gateway.server:child_app",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        log_level="info",
    )
