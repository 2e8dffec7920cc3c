"""A per-tenant hash chain over certified invoices: a change made behind the gateway's back (SQL
by a superuser, a restored tampered backup) is detected by `fiscalgate verify`.

When an invoice becomes certified, one link is appended in the same transaction: link n of a
tenant holds `digest_n = SHA-256(digest_{n-1} + "\\n" + canonical JSON of the certified row)`
(`digest_0` = 64 zeros). The canonical form covers every column that a certification fixes:
id, tenant, authority, environment, number, kind, currency, original, the neutral document, the
reference, the authority's certification, its total and date. Links are append-only (database
triggers refuse UPDATE, DELETE and, on PostgreSQL, TRUNCATE of `invoice_chain`).

`verify` recomputes every tenant's chain from the rows as they are now: a changed row breaks its
link (and the digests after it no longer follow), a deleted row leaves a link without an invoice,
a certified row without a link was certified behind the gateway's back. An attacker able to
rewrite both the row and every later link of the chain defeats it; keep a copy of each tenant's
latest digest (`verify` prints them) somewhere the database cannot reach to catch that too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Session, mapped_column

from fiscalgate.gateway.db import Base, UTCDateTime

GENESIS = "0" * 64


class ChainLink(Base):
    """One link of a tenant's chain (migration 0008); append-only in the database."""

    __tablename__ = "invoice_chain"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(32), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


_COLUMNS = (
    "id",
    "tenant_id",
    "authority",
    "environment",
    "number",
    "kind",
    "currency",
    "original_id",
    "document",
    "reference",
    "certification",
    "certified_total",
    "certified_at",
)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if isinstance(value, str) and value[:1] in "{[":
        try:  # a JSON column read as text by a raw query
            return json.loads(value)
        except ValueError:
            return value
    return value


def canonical(row: Any) -> bytes:
    data = {name: _plain(row._mapping[name]) for name in _COLUMNS}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def link_digest(previous: str, row: Any) -> str:
    return hashlib.sha256(previous.encode() + b"\n" + canonical(row)).hexdigest()


def _invoice_columns(db: Session | Connection, invoice_id: str) -> Any:
    from fiscalgate.gateway.invoices.models import InvoiceRow

    table = InvoiceRow.__table__
    return db.execute(select(*[table.c[n] for n in _COLUMNS]).where(table.c.id == invoice_id)).first()


def append_certified(session: Session, tenant_id: str, invoice_id: str) -> None:
    """Append the link of a just-certified invoice, in the caller's transaction."""
    from fiscalgate.gateway.tenants.models import Tenant

    if session.get_bind().dialect.name == "postgresql":
        # One link at a time per tenant (SQLite's BEGIN IMMEDIATE already serialises writers).
        # FOR NO KEY UPDATE: it does not conflict with the KEY SHARE locks that inserting rows
        # referencing the tenant (audit entries, this link) take, so two finishing certifications
        # queue here instead of deadlocking.
        session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update(key_share=True))
    last = session.execute(
        select(ChainLink.seq, ChainLink.digest)
        .where(ChainLink.tenant_id == tenant_id)
        .order_by(ChainLink.seq.desc())
        .limit(1)
    ).first()
    row = _invoice_columns(session, invoice_id)
    seq, previous = (last.seq + 1, last.digest) if last else (1, GENESIS)
    session.add(
        ChainLink(
            tenant_id=tenant_id,
            seq=seq,
            invoice_id=invoice_id,
            digest=link_digest(previous, row),
            created_at=datetime.now(UTC),
        )
    )
    session.flush()


@dataclass
class TenantReport:
    tenant_id: str
    links: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)


def verify(db: Session | Connection) -> list[TenantReport]:
    """Every tenant's chain checked against the rows as they are now."""
    links = db.execute(
        text("SELECT tenant_id, seq, invoice_id, digest FROM invoice_chain ORDER BY tenant_id, seq")
    ).all()
    certified = db.execute(
        text("SELECT id, tenant_id FROM invoices WHERE status = 'certified' OR reference IS NOT NULL")
    ).all()
    reports: dict[str, TenantReport] = {}
    linked: set[str] = set()
    for link in links:
        report = reports.setdefault(link.tenant_id, TenantReport(link.tenant_id))
        report.links += 1
        linked.add(link.invoice_id)
        if link.seq != report.links:
            report.problems.append(f"link {report.links} is missing (next link found: {link.seq})")
        row = _invoice_columns(db, link.invoice_id)
        if row is None:
            report.problems.append(f"link {link.seq}: invoice {link.invoice_id} was deleted")
        elif row.tenant_id != link.tenant_id:
            report.problems.append(f"link {link.seq}: invoice {link.invoice_id} moved to another tenant")
        elif link_digest(report.head, row) != link.digest:
            report.problems.append(
                f"link {link.seq}: invoice {link.invoice_id} ({row.number}) was changed after its "
                "certification, or an earlier link was"
            )
        report.head = link.digest
    for invoice in certified:
        if invoice.id not in linked:
            report = reports.setdefault(invoice.tenant_id, TenantReport(invoice.tenant_id))
            report.problems.append(
                f"invoice {invoice.id} is certified but has no link: certified behind the gateway"
            )
    return sorted(reports.values(), key=lambda r: r.tenant_id)


def backfill(connection: Connection) -> None:
    """Links for the invoices certified before the chain existed (migration 0008), in the order
    of their certification."""
    rows = connection.execute(
        text(
            "SELECT id, tenant_id FROM invoices WHERE status = 'certified'"
            " ORDER BY tenant_id, certified_at, id"
        )
    ).all()
    heads: dict[str, tuple[int, str]] = {}
    for invoice in rows:
        seq, previous = heads.get(invoice.tenant_id, (0, GENESIS))
        digest = link_digest(previous, _invoice_columns(connection, invoice.id))
        connection.execute(
            text(
                "INSERT INTO invoice_chain (tenant_id, seq, invoice_id, digest, created_at)"
                " VALUES (:t, :s, :i, :d, :c)"
            ),
            {"t": invoice.tenant_id, "s": seq + 1, "i": invoice.id, "d": digest, "c": datetime.now(UTC)},
        )
        heads[invoice.tenant_id] = (seq + 1, digest)
