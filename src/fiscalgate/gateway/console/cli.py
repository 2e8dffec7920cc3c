"""`fiscalgate users add | list`: bootstrap console accounts on a fresh install."""

from __future__ import annotations

import os

import click

from fiscalgate.core.errors import GatewayError


def _database(database_url: str | None) -> str:
    from fiscalgate.gateway.db import DEFAULT_DATABASE_URL

    return database_url or os.environ.get("FISCALGATE_DATABASE_URL") or DEFAULT_DATABASE_URL


_db_option = click.option(
    "--database-url",
    envvar="FISCALGATE_DATABASE_URL",
    default=None,
    help="SQLAlchemy URL; default: the SQLite file under ./var/ (env FISCALGATE_DATABASE_URL).",
)


@click.group("users")
def users() -> None:
    """Console accounts: the platform administrator and each tenant's owners, accountants, viewers."""


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "owner", "accountant", "viewer"]), required=True)
@click.option("--tenant", "tenant", default=None, help="Tenant id or exact name (not for --role admin).")
@click.option("--name", default="", help="Display name.")
@click.option(
    "--password", default=None, help="Default: asked for (hidden), or env FISCALGATE_USER_PASSWORD."
)
@_db_option
def add(
    email: str, role: str, tenant: str | None, name: str, password: str | None, database_url: str | None
) -> None:
    """Create a console user. Exit code 2 on invalid input (with the reason)."""

    from fiscalgate.gateway.console import accounts
    from fiscalgate.gateway.db import make_engine, make_sessionmaker, migrate
    from fiscalgate.gateway.tenants.service import find_tenant_by_name, get_tenant

    url = _database(database_url)
    migrate(url)
    secret = password or os.environ.get("FISCALGATE_USER_PASSWORD")
    if not secret:
        secret = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine).begin() as session:
            tenant_id = (
                _tenant_id(session, tenant, find_tenant_by_name, get_tenant) if role != "admin" else None
            )
            if role != "admin" and tenant_id is None:
                raise click.UsageError("--tenant is required for an owner, accountant or viewer")
            user = accounts.create_user(
                session, email=email, password=secret, role=role, tenant_id=tenant_id, name=name, by="cli"
            )
            click.echo(f"created {user.role} {user.email}" + (f" of tenant {tenant_id}" if tenant_id else ""))
    except GatewayError as exc:
        click.echo(f"error: {exc.message} ({exc.code})", err=True)
        raise SystemExit(2) from None
    finally:
        engine.dispose()


def _tenant_id(session: object, ref: str | None, by_name: object, by_id: object) -> str | None:
    if ref is None:
        return None
    found = by_name(session, ref)  # type: ignore[operator]
    if found is not None:
        return str(found.id)
    return str(by_id(session, ref).id)  # type: ignore[operator]  # NotFound names it


@users.command("list")
@_db_option
def list_users(database_url: str | None) -> None:
    """Every console user: e-mail, role, tenant, state."""
    from sqlalchemy import select

    from fiscalgate.gateway.console.models import User
    from fiscalgate.gateway.db import make_engine, make_sessionmaker, migrate

    url = _database(database_url)
    migrate(url)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            for u in session.scalars(select(User).order_by(User.tenant_id, User.email)):
                state = "disabled" if u.disabled_at else "enabled"
                click.echo(f"{u.email}\t{u.role}\t{u.tenant_id or '-'}\t{state}")
    finally:
        engine.dispose()
