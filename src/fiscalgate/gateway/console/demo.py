"""The demo owner `make run` (serve --demo) prints, and sample invoices for the console."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from fiscalgate.gateway.console import accounts
from fiscalgate.gateway.runtime import Gateway

DEMO_OWNER = "owner@demo.fiscalgate.test"
DEMO_ADMIN = "admin@fiscalgate.test"


def sample_invoice(authority: str, prefix: str = "DEMO-") -> dict[str, Any]:
    return {
        "number": f"{prefix}{authority.split('-')[1].upper()}-{secrets.token_hex(3)}",
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


def _password_file(var_dir: Path, email: str) -> Path:
    return var_dir / f"console-{email.split('@')[0]}.password"


def ensure_user(gw: Gateway, var_dir: Path, email: str, role: str, tenant_id: str | None) -> tuple[str, bool]:
    """Create the user once with a random password kept (mode 600) in `var_dir`, so each start
    can print it again; (password, created now). A password changed in the console is not
    known here: the file then says what it was at creation."""
    path = _password_file(var_dir, email)

    def work(session: Session) -> bool:
        if accounts.find_user(session, email) is not None:
            return False
        password = secrets.token_urlsafe(12)
        accounts.create_user(
            session,
            email=email,
            password=password,
            role=role,
            tenant_id=tenant_id,
            name="Demo" if role != "admin" else "Administrator",
            by="demo",
        )
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(password)
        path.chmod(0o600)
        return True

    created = gw.db.call(work)
    return (path.read_text().strip() if path.exists() else "(changed since; see the console)"), created


def ensure_demo_invoices(gw: Gateway, tenant_id: str) -> None:
    """One approved invoice per authority, so the demo owner has something to certify at once."""
    from fiscalgate.gateway.console import services

    who = services.Caller(tenant_id=tenant_id, trigger="demo")

    def work(session: Session) -> None:
        for code in services.available(session, tenant_id):
            body = services.InvoiceCreate(authority=code, invoice=sample_invoice(code), approve=True)
            services.create_invoice(session, gw, who, tenant_id, body)

    gw.db.call(work)
