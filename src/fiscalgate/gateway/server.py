"""`fiscalgate serve [--demo]`: migrate, optionally set up the demo tenant, run uvicorn."""

from __future__ import annotations

import json
import os
import secrets
import shlex
from typing import Any

import click
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiscalgate.authorities.base import Environment
from fiscalgate.gateway.api.app import ADMIN_TOKEN_ENV, create_app
from fiscalgate.gateway.authorities import AUTHORITIES
from fiscalgate.gateway.db import DEFAULT_DATABASE_URL, migrate, utcnow
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
    """Create the demo tenant once (CI, modules fne+mecef+sfec, the three authorities in mock) and
    return (tenant id, a fresh API key). Only a key's hash is stored, so the key printed at each
    start is a new one: the previous demo keys are revoked (documented in the README)."""
    who = Caller(tenant_id=None, trigger="admin:demo")

    def work(session: Session) -> tuple[str, str]:
        tenant = tenants.find_tenant_by_name(session, DEMO_NAME)
        if tenant is None:
            tenant = tenants.create_tenant(
                session, TenantCreate(name=DEMO_NAME, country="CI", modules=["fne", "mecef", "sfec"])
            )
        for code in AUTHORITIES:
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
    return {
        "number": f"DEMO-{authority.upper()}-{secrets.token_hex(3)}",
        "currency": "XAF" if authority == "cg-sfec" else "XOF",
        "seller": {"name": "Boutique Demo"},
        "buyer": {
            "kind": "individual",
            "name": "Client Comptoir",
            "phone": "0709080765",
            "email": "client@example.ci",
        },
        "operator": {"name": "Caisse 1"},
        "lines": [
            {"description": "Riz 25 kg", "quantity": "2", "unit_price": "15000"},
            {"description": "Huile 5 l", "quantity": "3", "unit_price": "6000"},
        ],
        "payments": [{"method": "cash"}],
    }


def curl_example(base: str, key: str) -> str:
    """A shell snippet that creates and certifies one invoice per authority, then credits one."""
    read_id = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id\"])'"
    auth = '-H "Authorization: Bearer $KEY"'
    lines = [f"export FG={base} KEY={key}"]
    for code in AUTHORITIES:
        body = json.dumps(
            {"authority": code, "approve": True, "invoice": demo_invoice(code)}, ensure_ascii=False
        )
        var = code.split("-")[1].upper()
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
        f"AV=$(curl -s $FG/v1/invoices/$FNE/credit-notes {auth} -H 'Content-Type: application/json' "
        f"-d {shlex.quote(credit)} | {read_id})"
    )
    lines.append(f"curl -s -X POST $FG/v1/invoices/$AV/certify {auth}; echo")
    lines.append(f'curl -s "$FG/v1/audit?kind=authority_call&limit=10" {auth}; echo')
    return "\n".join(lines)


def serve(host: str, port: int, database_url: str | None, demo: bool, run_migrations: bool = True) -> None:
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
    app = create_app(url, admin_token=token, run_migrations=False, public_url=public)
    gw: Gateway = app.state.gateway
    click.echo(f"fiscalgate gateway on {base}  (docs: {base}/docs, database: {gw.db.engine.url!r})")
    if gw.public_url != base:
        click.echo(f"Public URL ({PUBLIC_URL_ENV}): {gw.public_url}")
    if generated:
        click.echo(f"Administrator token (generated for this run; set {ADMIN_TOKEN_ENV} to fix it): {token}")
    if demo:
        tenant_id, key = ensure_demo(gw)
        click.echo(f"\nDemo tenant {tenant_id}: ci-fne, bj-emecef and cg-sfec in mock (built-in simulators).")
        click.echo(f"Demo API key (a new one at each start; the previous one is revoked):\n  {key}\n")
        click.echo("Certify an invoice with each authority, then a credit note, then read the audit log:\n")
        click.echo(curl_example(base, key) + "\n")
    uvicorn.run(app, host=host, port=port, log_level="info")
