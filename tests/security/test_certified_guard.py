"""Certified data cannot be forged: every column of a certified row is guarded by the database,
deletes and truncates are refused, the application role cannot disable the guards, and a change
made as a superuser (triggers bypassed) is found by `fiscalgate verify`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from fiscalgate.cli import main as cli
from fiscalgate.gateway import chain
from fiscalgate.gateway.db import migrate, normalise_url
from tests.gateway.conftest import FAKE_SETTINGS, new_tenant, sample_invoice, schema_url

pytestmark = pytest.mark.anyio

# Every column a certification fixes, with a forged value of the right type.
FORGERIES = {
    "authority": "'bj-emecef'",
    "environment": "'production'",
    "number": "'F-FORGED'",
    "kind": "'purchase'",
    "currency": "'EUR'",
    "reference": "'FORGED-REF'",
    "certified_total": "1",
    "certified_at": "'2020-01-01 00:00:00'",
    "status_detail": "'edited'",
    "attempts": "99",
    "updated_at": "'2020-01-01 00:00:00'",
    "error": "NULL",
    "checkpoint": "NULL",
    "raw_response": "NULL",
}


async def _certified(app: FastAPI) -> tuple[dict[str, Any], list[str]]:
    tenant, api = await new_tenant(app, settings={"ci-fne": FAKE_SETTINGS})
    ids = []
    async with api:
        for _ in range(3):
            body = {"authority": "ci-fne", "approve": True, "invoice": sample_invoice()}
            invoice = (await api.post("/v1/invoices", json=body)).json()
            r = await api.post(f"/v1/invoices/{invoice['id']}/certify")
            assert r.json()["status"] == "certified", r.text
            ids.append(invoice["id"])
    return tenant, ids


def _refused(database_url: str, statement: str) -> None:
    engine = create_engine(normalise_url(database_url))
    try:
        with (
            pytest.raises(DBAPIError, match=r"immutable|append-only|truncated|permission denied"),
            engine.begin() as c,
        ):
            c.execute(text(statement))
    finally:
        engine.dispose()


async def test_every_column_of_a_certified_row_is_guarded(fake_app: FastAPI, database_url: str) -> None:
    _, ids = await _certified(fake_app)
    target = ids[1]
    for column, value in FORGERIES.items():
        _refused(database_url, f"UPDATE invoices SET {column} = {value} WHERE id = '{target}'")
    _refused(database_url, f"UPDATE invoices SET document = '{{}}' WHERE id = '{target}'")
    _refused(database_url, f"UPDATE invoices SET certification = '{{}}' WHERE id = '{target}'")
    _refused(database_url, f"DELETE FROM invoices WHERE id = '{target}'")
    _refused(database_url, "UPDATE invoice_chain SET digest = 'x'")
    _refused(database_url, "DELETE FROM invoice_chain")
    if database_url.startswith("postgresql"):
        _refused(database_url, "TRUNCATE invoices CASCADE")
        _refused(database_url, "TRUNCATE invoice_chain")


def _as_superuser(database_url: str, statement: str) -> None:
    """Behind the gateway's back: the triggers are bypassed the way only a superuser can."""
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.begin() as c:
            if database_url.startswith("postgresql"):
                c.execute(text("SET LOCAL session_replication_role = replica"))
                c.execute(text(statement))
            else:  # SQLite has no roles: whoever can write the file can drop the trigger
                c.execute(text("DROP TRIGGER invoices_certified_no_update"))
                c.execute(text("DROP TRIGGER invoices_certified_no_delete"))
                c.execute(text(statement))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("tamper", "found"),
    [
        ("UPDATE invoices SET certified_total = 1 WHERE id = '{id}'", "was changed"),
        ("UPDATE invoices SET document = '{{\"number\": \"X\"}}' WHERE id = '{id}'", "was changed"),
        ("DELETE FROM invoices WHERE id = '{id}'", "was deleted"),
        ("UPDATE invoices SET reference = NULL, status = 'failed' WHERE id = '{id}'", "was changed"),
    ],
)
async def test_verify_finds_a_change_made_behind_the_gateways_back(
    fake_app: FastAPI, database_url: str, tamper: str, found: str
) -> None:
    tenant, ids = await _certified(fake_app)
    runner = CliRunner()
    clean = runner.invoke(cli, ["verify", "--database-url", database_url])
    assert clean.exit_code == 0, clean.output
    assert f"{tenant['id']}: 3 certified invoices, chain intact" in clean.output
    _as_superuser(database_url, tamper.format(id=ids[1]))
    broken = runner.invoke(cli, ["verify", "--database-url", database_url])
    assert broken.exit_code == 1, broken.output
    assert found in broken.output and ids[1] in broken.output


async def test_verify_finds_a_certification_forged_without_a_link(
    fake_app: FastAPI, database_url: str
) -> None:
    tenant, _ = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with tenant_api(fake_app, tenant) as api:
        invoice = (
            await api.post("/v1/invoices", json={"authority": "ci-fne", "invoice": sample_invoice()})
        ).json()
    _as_superuser(
        database_url,
        "UPDATE invoices SET status = 'certified', reference = 'FAKE-1', certification = '{}',"
        f" certified_at = '2026-01-01 00:00:00' WHERE id = '{invoice['id']}'",
    )
    result = CliRunner().invoke(cli, ["verify", "--database-url", database_url])
    assert result.exit_code == 1 and "certified but has no link" in result.output


def tenant_api(app: FastAPI, tenant: dict[str, Any]) -> Any:
    from tests.gateway.conftest import client

    return client(app, tenant["key"])


@pytest.fixture
def roles(postgres_url: str) -> Iterator[tuple[str, str]]:
    """An owner role (migrations) and an application role (the gateway), per the README's SQL."""
    suffix = uuid.uuid4().hex[:8]
    owner, app, schema = f"fg_owner_{suffix}", f"fg_app_{suffix}", f"fg_roles_{suffix}"
    admin = create_engine(normalise_url(postgres_url))
    with admin.begin() as c:
        c.execute(text(f"CREATE ROLE {owner} LOGIN"))
        c.execute(text(f"CREATE ROLE {app} LOGIN"))
        c.execute(text(f'CREATE SCHEMA "{schema}" AUTHORIZATION {owner}'))
        c.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO {app}'))
        c.execute(text(f"GRANT CREATE ON DATABASE {make_url(postgres_url).database} TO {owner}"))
    as_owner = schema_url(make_url(postgres_url).set(username=owner).render_as_string(False), schema)
    as_app = schema_url(make_url(postgres_url).set(username=app).render_as_string(False), schema)
    try:
        migrate(as_owner)
        engine = create_engine(normalise_url(as_owner))
        with engine.begin() as c:
            c.execute(
                text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {app}')
            )
        engine.dispose()
        yield as_owner, as_app
    finally:
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            c.execute(text(f"REVOKE ALL ON DATABASE {make_url(postgres_url).database} FROM {owner}"))
            c.execute(text(f"DROP ROLE {app}"))
            c.execute(text(f"DROP ROLE {owner}"))
        admin.dispose()


@pytest.mark.postgres
def test_the_application_role_cannot_disable_the_guards(roles: tuple[str, str]) -> None:
    _, as_app = roles
    for statement in (
        "ALTER TABLE invoices DISABLE TRIGGER ALL",
        "ALTER TABLE invoices DISABLE TRIGGER invoices_certified_immutable",
        "DROP TRIGGER invoices_certified_immutable ON invoices",
        "TRUNCATE invoices CASCADE",
        "TRUNCATE invoice_chain",
        "SET session_replication_role = replica",
    ):
        engine = create_engine(normalise_url(as_app))
        try:
            with (
                pytest.raises(DBAPIError, match=r"must be owner|permission denied|truncated"),
                engine.begin() as c,
            ):
                c.execute(text(statement))
        finally:
            engine.dispose()


def test_the_chain_digest_covers_every_certified_column() -> None:
    class Row:
        def __init__(self, **values: Any) -> None:
            self._mapping = values

    base = {name: f"v-{name}" for name in chain._COLUMNS}
    digest = chain.link_digest(chain.GENESIS, Row(**base))
    for name in chain._COLUMNS:
        assert chain.link_digest(chain.GENESIS, Row(**{**base, name: "forged"})) != digest, name
    assert chain.link_digest("1" * 64, Row(**base)) != digest  # each link depends on the previous one


async def test_concurrent_certifications_of_one_tenant_chain_without_deadlock(
    fake_app: FastAPI, database_url: str
) -> None:
    # Each finishing certification locks its tenant row to append a link; on PostgreSQL a plain
    # FOR UPDATE deadlocked with the KEY SHARE locks of the audit rows inserted just before.
    import anyio

    tenant, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        ids = []
        for _ in range(8):
            body = {"authority": "ci-fne", "approve": True, "invoice": sample_invoice()}
            ids.append((await api.post("/v1/invoices", json=body)).json()["id"])
        statuses: list[int] = []

        async def certify(invoice_id: str) -> None:
            statuses.append((await api.post(f"/v1/invoices/{invoice_id}/certify")).status_code)

        async with anyio.create_task_group() as group:
            for invoice_id in ids:
                group.start_soon(certify, invoice_id)
    assert statuses == [200] * 8
    result = CliRunner().invoke(cli, ["verify", "--database-url", database_url])
    assert result.exit_code == 0 and f"{tenant['id']}: 8 certified invoices, chain intact" in result.output
