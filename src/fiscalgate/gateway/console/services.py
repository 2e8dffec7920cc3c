"""The one module through which the console reaches the gateway's services (never over HTTP).

Other work streams rename and split the gateway's modules; keeping every import here makes such a
rename a one-file fix for the console."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar, get_args

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session

from fiscalgate.authorities import descriptor
from fiscalgate.core.errors import ConfigurationError, GatewayError, InvoiceError
from fiscalgate.gateway import certification
from fiscalgate.gateway.audit import service as audit_service
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.audit.replay import replay_entry
from fiscalgate.gateway.audit.router import audit_out
from fiscalgate.gateway.audit.schemas import AuditFilter, AuditOut, ReplayOut
from fiscalgate.gateway.audit.service import record_event
from fiscalgate.gateway.authorities import available_authorities, codes, modules
from fiscalgate.gateway.countries import country_name
from fiscalgate.gateway.invoices import credit_notes, editing, queries
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.schemas import CreditNoteCreate, InvoiceCreate, InvoiceOut, ReconcileRequest
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.settings import service as settings_service
from fiscalgate.gateway.settings.schemas import SettingsOut
from fiscalgate.gateway.tenants import service as tenant_service
from fiscalgate.gateway.tenants.models import ApiKey, Tenant
from fiscalgate.gateway.tenants.schemas import ApiKeyCreated, TenantCreate, TenantOut
from fiscalgate.gateway.tenants.service import Caller

__all__ = [
    "AuditOut",
    "Caller",
    "ConfigurationError",
    "CreditNoteCreate",
    "GatewayError",
    "InvoiceCreate",
    "InvoiceError",
    "InvoiceOut",
    "ReconcileRequest",
    "ReplayOut",
    "SettingsOut",
    "TenantOut",
]

PAGE_SIZE = 25
T = TypeVar("T")


# --- printing (h-print) ---------------------------------------------------------------------------------
def print_invoice(gw: Gateway, who: Caller, tenant_id: str, invoice_id: str, layout: str, lang: str) -> Any:
    """The printed invoice (`.pdf`, `.filename`, `.copy`), audited like the API's
    `GET /v1/invoices/{id}/pdf` (DUPLICATA from the second print on)."""
    from fiscalgate.gateway.printing.service import print_invoice as render

    return render(gw.db, who, tenant_id, invoice_id, layout=layout, lang=lang)  # type: ignore[arg-type]


def module_slugs() -> list[str]:
    return modules()


# --- tenants -----------------------------------------------------------------------------------------
def tenant(session: Session, tenant_id: str) -> TenantOut:
    return tenant_service.tenant_out(tenant_service.get_tenant(session, tenant_id))


def tenants(session: Session) -> list[TenantOut]:
    return [tenant_service.tenant_out(t) for t in tenant_service.list_tenants(session)]


def create_tenant(session: Session, who: Caller, name: str, country: str, modules: list[str]) -> TenantOut:
    data = TenantCreate(name=name, country=country, modules=modules)  # pydantic: country in any spelling
    row = tenant_service.create_tenant(session, data)
    record_event(
        session,
        tenant_id=row.id,
        kind="tenant",
        event="tenant.created",
        trigger=who.trigger,
        detail=data.model_dump(),
    )
    return tenant_service.tenant_out(row)


def detached(session: Session, rows: list[T]) -> list[T]:
    """Rows readable after their (read-only) unit ends: a rollback would expire them."""
    for row in rows:
        session.expunge(row)
    return rows


def api_keys(session: Session, tenant_id: str) -> list[ApiKey]:
    return detached(session, tenant_service.list_keys(session, tenant_id))


def issue_key(session: Session, who: Caller, tenant_id: str, label: str) -> ApiKeyCreated:
    created = tenant_service.issue_key(session, tenant_id, label)
    record_event(
        session,
        tenant_id=tenant_id,
        kind="tenant",
        event="api_key.issued",
        trigger=who.trigger,
        detail={"prefix": created.prefix, "label": created.label},
    )
    return created


def revoke_key(session: Session, who: Caller, tenant_id: str, key_id: str) -> None:
    row = tenant_service.revoke_key(session, tenant_id, key_id)
    record_event(
        session,
        tenant_id=tenant_id,
        kind="tenant",
        event="api_key.revoked",
        trigger=who.trigger,
        detail={"prefix": row.prefix},
    )


def country_label(code: str) -> str:
    return country_name(code)


# --- settings ----------------------------------------------------------------------------------------
def available(session: Session, tenant_id: str) -> list[str]:
    t = tenant_service.get_tenant(session, tenant_id)
    return available_authorities(t.country, t.modules)


def all_settings(session: Session, gw: Gateway, tenant_id: str) -> list[SettingsOut]:
    return settings_service.list_settings(session, gw, tenant_id, available(session, tenant_id))


def settings(session: Session, gw: Gateway, tenant_id: str, authority: str) -> SettingsOut:
    return settings_service.get_settings(session, gw, tenant_id, authority)


def save_settings(
    session: Session, gw: Gateway, who: Caller, tenant_id: str, authority: str, data: dict[str, Any]
) -> SettingsOut:
    return settings_service.save_settings(session, gw, who, tenant_id, authority, data)


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text | secret | number | choice | url
    required: bool
    default: Any
    description: str
    choices: tuple[str, ...] = ()


_COMMON = ("environment", "active")
_ADVANCED = {
    "timeout_seconds",
    "path_prefix",
    "certify_path",
    "report_path",
    "lookup_path",
    "list_path",
    "lookup_page_size",
    "lookup_max_pages",
    "max_attempts",
    "retry_backoff_seconds",
}


def settings_fields(gw: Gateway, authority: str) -> tuple[list[Field], list[Field]]:
    """(the fields the authority expects, advanced ones), from the driver's settings model."""
    model = gw.driver(authority).settings_model
    secrets = set(settings_service.secret_field_names(model))
    main: list[Field] = []
    advanced: list[Field] = []
    for name, info in model.model_fields.items():
        if name in _COMMON:
            continue
        annotation = info.annotation
        members = get_args(annotation)
        optional = type(None) in members and len(members) == 2  # `X | None`: a choice may stay empty
        if optional:
            annotation = next(m for m in members if m is not type(None))
        choices: tuple[str, ...] = ()
        literal = getattr(annotation, "__args__", None)
        if name in secrets:
            kind = "secret"
        elif annotation in (int, float):
            kind = "number"
        elif (
            literal
            and all(isinstance(a, str) for a in literal)
            and str(annotation).startswith("typing.Literal")
        ):
            kind, choices = "choice", tuple(literal)
        elif (
            isinstance(annotation, type)
            and issubclass(annotation, str)
            and hasattr(annotation, "__members__")
        ):
            kind, choices = "choice", tuple(m.value for m in annotation)  # type: ignore[attr-defined]
        elif name.endswith("_url"):
            kind = "url"
        else:
            kind = "text"
        if kind == "choice" and optional:
            choices = ("", *choices)
        default = None if info.is_required() else info.default
        f = Field(name, kind, info.is_required(), default, info.description or "", choices)
        (advanced if name in _ADVANCED else main).append(f)
    return main, advanced


def connection_test(gw: Gateway, authority: str) -> str | None:
    """The harmless call the authority's driver tests settings with ("GET /api/invoice"), or None
    when its platform has none (see `fiscalgate.authorities.capabilities`)."""
    from fiscalgate.authorities.capabilities import ConnectionTester

    try:
        driver = gw.driver(authority)
    except Exception:  # a driver that cannot load offers nothing; the page still shows
        return None
    return driver.connection_test_call if isinstance(driver, ConnectionTester) else None


async def test_connection(gw: Gateway, who: Caller, tenant_id: str, authority: str) -> dict[str, Any]:
    """The API's connection test (`POST /v1/settings/{authority}/test`): one harmless call with the
    tenant's saved settings, audited; nothing is certified. Raises the failure's error kind."""
    from fiscalgate.gateway.tools import service as tools

    result = await tools.test_connection(gw, who, tenant_id, authority)
    return result.model_dump(mode="json")


def dry_run(session: Session, gw: Gateway, tenant_id: str, invoice_id: str) -> dict[str, Any]:
    """Validate the invoice with the tenant's settings and build the authority's payload; nothing is
    sent. Returns {"problems": [...], "payload": {...} | None}."""
    row = queries.get_invoice(session, tenant_id, invoice_id)
    driver, s = settings_service.load_tenant_settings(session, gw, tenant_id, row.authority)
    invoice = editing.parse_body(row.document)
    problems = driver.validate(invoice, s)
    if problems:
        return {
            "problems": [p.to_dict() for p in problems],
            "payload": None,
            "environment": s.environment.value,
        }
    return {"problems": [], "payload": driver.build_payload(invoice, s), "environment": s.environment.value}


# --- invoices ----------------------------------------------------------------------------------------
@dataclass
class InvoiceQuery:
    q: str = ""
    status: str = ""
    authority: str = ""
    kind: str = ""
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1


def search_invoices(session: Session, tenant_id: str, f: InvoiceQuery) -> tuple[list[InvoiceRow], int]:
    """(one page, total count): search in the number, the buyer's name and the reference."""
    query = select(InvoiceRow).where(InvoiceRow.tenant_id == tenant_id)
    if f.q.strip():
        like = f"%{f.q.strip().lower()}%"
        buyer = func.lower(cast(InvoiceRow.document["buyer"]["name"], String))
        query = query.where(
            or_(
                func.lower(InvoiceRow.number).like(like),
                func.lower(InvoiceRow.reference).like(like),
                buyer.like(like),
            )
        )
    if f.status:
        query = query.where(InvoiceRow.status == f.status)
    if f.authority:
        query = query.where(InvoiceRow.authority == f.authority)
    if f.kind:
        query = query.where(InvoiceRow.kind == f.kind)
    if f.date_from:
        query = query.where(InvoiceRow.created_at >= datetime.combine(f.date_from, time(), UTC))
    if f.date_to:
        query = query.where(
            InvoiceRow.created_at < datetime.combine(f.date_to + timedelta(days=1), time(), UTC)
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(InvoiceRow.created_at.desc(), InvoiceRow.id)
        .limit(PAGE_SIZE)
        .offset((f.page - 1) * PAGE_SIZE)
    )
    return detached(session, list(rows)), int(total)


def invoice(session: Session, tenant_id: str, invoice_id: str) -> InvoiceOut:
    """404 (invoice.not_found) for another tenant's invoice, as on the API."""
    return queries.invoice_out(queries.get_invoice(session, tenant_id, invoice_id))


def credit_notes_of(session: Session, tenant_id: str, invoice_id: str) -> list[InvoiceRow]:
    return detached(
        session,
        list(
            session.scalars(
                select(InvoiceRow)
                .where(InvoiceRow.tenant_id == tenant_id, InvoiceRow.original_id == invoice_id)
                .order_by(InvoiceRow.created_at)
            )
        ),
    )


def credited_so_far(session: Session, invoice_id: str) -> Mapping[int, Any]:
    return credit_notes.credited_so_far(session, invoice_id)


def create_invoice(
    session: Session, gw: Gateway, who: Caller, tenant_id: str, body: InvoiceCreate
) -> InvoiceOut:
    return queries.invoice_out(editing.create_invoice(session, gw, who, tenant_id, body))


def approve(session: Session, gw: Gateway, who: Caller, tenant_id: str, invoice_id: str) -> InvoiceOut:
    return queries.invoice_out(editing.approve_invoice(session, gw, who, tenant_id, invoice_id))


async def certify(gw: Gateway, who: Caller, tenant_id: str, invoice_id: str) -> InvoiceOut:
    row, _fresh = await certification.certify_invoice(gw, who, tenant_id, invoice_id)
    return queries.invoice_out(row)


async def reconcile(
    gw: Gateway, who: Caller, tenant_id: str, invoice_id: str, body: ReconcileRequest
) -> InvoiceOut:
    return queries.invoice_out(await certification.reconcile_invoice(gw, who, tenant_id, invoice_id, body))


def credit_note(
    session: Session, who: Caller, tenant_id: str, invoice_id: str, body: CreditNoteCreate
) -> InvoiceOut:
    return queries.invoice_out(credit_notes.create_credit_note(session, who, tenant_id, invoice_id, body))


# --- dashboard ---------------------------------------------------------------------------------------
@dataclass
class Tile:
    authority: str
    environment: str
    certified_today: int = 0
    certified_month: int = 0
    rejected: int = 0
    failed: int = 0
    unknown: int = 0
    stickers: bool = False  # the authority reports a sticker balance (its descriptor says so)
    sticker_balance: int | None = None


def dashboard(session: Session, tenant_id: str, now: datetime) -> list[Tile]:
    """Per authority × environment of the tenant's invoices (settings without invoices too)."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    month = today.replace(day=1)
    tiles: dict[tuple[str, str], Tile] = {}
    for code in available(session, tenant_id):
        s = settings_service._row(session, tenant_id, code)
        if s is not None:
            tiles[(code, s.environment)] = Tile(code, s.environment)
    rows = session.execute(
        select(
            InvoiceRow.authority, InvoiceRow.environment, InvoiceRow.status, InvoiceRow.certified_at
        ).where(InvoiceRow.tenant_id == tenant_id, InvoiceRow.environment.is_not(None))
    )
    for authority, environment, status, certified_at in rows:
        if environment is None:
            continue
        tile = tiles.setdefault((authority, environment), Tile(authority, environment))
        if status == "certified" and certified_at is not None:
            tile.certified_month += certified_at >= month
            tile.certified_today += certified_at >= today
        elif status in ("rejected", "failed", "unknown"):
            setattr(tile, status, getattr(tile, status) + 1)
    for (authority, environment), tile in tiles.items():
        tile.stickers = _reports_stickers(authority)
        if tile.stickers:
            last = session.scalar(
                select(InvoiceRow.certification)
                .where(
                    InvoiceRow.tenant_id == tenant_id,
                    InvoiceRow.authority == authority,
                    InvoiceRow.environment == environment,
                    InvoiceRow.status == "certified",
                )
                .order_by(InvoiceRow.certified_at.desc())
                .limit(1)
            )
            if last and last.get("sticker_balance") is not None:
                tile.sticker_balance = int(last["sticker_balance"])
    return sorted(
        tiles.values(),
        key=lambda t: (codes().index(t.authority) if t.authority in codes() else 99, t.environment),
    )


def _reports_stickers(authority: str) -> bool:
    try:
        return descriptor(authority).sticker_balance
    except ConfigurationError:  # an authority no longer registered: its invoices still count
        return False


# --- onboarding --------------------------------------------------------------------------------------
def onboarding_facts(session: Session, tenant_id: str, authority: str) -> set[str]:
    """Which `done_when` conditions hold for the tenant (see INTERFACES.md)."""
    facts: set[str] = set()
    envs = set(
        session.scalars(
            select(InvoiceRow.environment)
            .where(
                InvoiceRow.tenant_id == tenant_id,
                InvoiceRow.authority == authority,
                InvoiceRow.status == "certified",
            )
            .distinct()
        )
    )
    if "mock" in envs:
        facts.add("mock_tried")
    if "sandbox" in envs:
        facts.add("sandbox_certified")
    row = settings_service._row(session, tenant_id, authority)
    history = set(
        session.scalars(
            select(AuditEntry.environment)
            .where(
                AuditEntry.tenant_id == tenant_id,
                AuditEntry.authority == authority,
                AuditEntry.kind == "settings_change",
                AuditEntry.event == "settings.saved",
            )
            .distinct()
        )
    )
    if row is not None:
        history.add(row.environment)
    if "sandbox" in history:
        facts.add("sandbox_configured")
    if "production" in history:
        facts.add("production_configured")
    if row is not None and row.environment == "production" and row.active:
        facts.add("active")
    return facts


# --- audit -------------------------------------------------------------------------------------------
def audit_entries(session: Session, tenant_id: str, f: AuditFilter) -> list[AuditOut]:
    return [audit_out(e) for e in audit_service.list_entries(session, tenant_id, f)]


def audit_entry(session: Session, tenant_id: str, entry_id: str) -> AuditOut:
    return audit_out(audit_service.get_entry(session, tenant_id, entry_id))


async def replay(gw: Gateway, who: Caller, tenant_id: str, entry_id: str) -> ReplayOut:
    return await replay_entry(gw, who, tenant_id, entry_id)


def tenant_row(session: Session, tenant_id: str) -> Tenant:
    return tenant_service.get_tenant(session, tenant_id)
