"""The tools' work: which authorities exist and what they offer, and the calls made with a
tenant's saved settings (connection test, information, report). Every call goes through a
recording transport and is stored in the audit log (secrets masked), failed calls included."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from fiscalgate.authorities import descriptor, descriptors
from fiscalgate.authorities.base import AuthorityDriver, AuthoritySettings, Connection
from fiscalgate.authorities.capabilities import (
    CONNECTION_TEST,
    INFORMATION,
    REPORT,
    ConnectionTester,
    InformationSource,
    Reporter,
    Topic,
    capabilities,
)
from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import ConfigurationError, GatewayError, Problem
from fiscalgate.core.invoice import Invoice
from fiscalgate.gateway.audit.service import record_calls
from fiscalgate.gateway.authorities import authority_code, available_authorities
from fiscalgate.gateway.certification.call import connect
from fiscalgate.gateway.certification.outcome import masked
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import ApiError, Conflict, InvoiceOperationError, NotFound
from fiscalgate.gateway.invoices.queries import get_invoice
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.settings.service import load_tenant_settings
from fiscalgate.gateway.tenants.service import Caller, get_tenant
from fiscalgate.gateway.tools.schemas import (
    AuthorityOut,
    ConnectionTestOffer,
    ConnectionTestOut,
    InformationOffer,
    InformationOut,
    ReportOffer,
    ReportOut,
    TopicAnswer,
    TopicData,
    TopicOut,
)

T = TypeVar("T")


class NotOffered(ApiError):
    """The authority's platform has no such call (FNE has no harmless one, only SFEC reports)."""

    default_code = "authority.capability_missing"
    http_status = 422


def known_authority(value: str) -> str:
    """The code of an authority named by code, module or alias; 404 for anything else."""
    try:
        return authority_code(value)
    except ConfigurationError as exc:
        raise NotFound(exc.message, code="authority.not_found") from None


def _driver_or_none(gw: Gateway, code: str) -> AuthorityDriver | None:
    try:
        return gw.driver(code)
    except Exception:  # a driver that fails to import must not hide the other authorities
        return None


def authority_out(gw: Gateway, code: str, available: bool) -> AuthorityOut:
    d = descriptor(code)
    driver = _driver_or_none(gw, code)
    return AuthorityOut(
        code=d.code,
        name=d.name,
        module=d.module,
        aliases=list(d.aliases),
        country=d.country,
        country_name=d.country_name,
        currencies=list(d.currencies),
        available=available,
        capabilities=capabilities(driver) if driver is not None else None,
        connection_test=ConnectionTestOffer(call=driver.connection_test_call)
        if isinstance(driver, ConnectionTester)
        else None,
        information=InformationOffer(
            topics=[TopicOut(name=t.name, title=t.title, call=t.call) for t in driver.topics]
        )
        if isinstance(driver, InformationSource)
        else None,
        report=ReportOffer(call=driver.report_call) if isinstance(driver, Reporter) else None,
    )


def _available(session: Session, tenant_id: str) -> set[str]:
    tenant = get_tenant(session, tenant_id)
    return set(available_authorities(tenant.country, tenant.modules))


async def list_authorities(gw: Gateway, tenant_id: str) -> list[AuthorityOut]:
    available = await gw.db.read(_available, tenant_id)
    return [authority_out(gw, d.code, d.code in available) for d in descriptors()]


async def one_authority(gw: Gateway, tenant_id: str, authority: str) -> AuthorityOut:
    code = known_authority(authority)
    available = await gw.db.read(_available, tenant_id)
    return authority_out(gw, code, code in available)


# --- calls with the tenant's settings ---------------------------------------------------------------
def _offered(gw: Gateway, code: str, kind: str, what: str) -> None:
    driver = gw.driver(code)
    if kind not in capabilities(driver):
        offered = ", ".join(capabilities(driver)) or "none"
        raise NotOffered(
            f"{code} offers no {what} (its capabilities: {offered}); see GET /v1/authorities/{code}",
            problems=[Problem("authority", "capability_missing", f"{code} has no {what}")],
        )


Work = Callable[[AuthorityDriver, AuthoritySettings, Connection], Awaitable[T]]


def _saved_settings(
    session: Session, gw: Gateway, tenant_id: str, authority: str
) -> tuple[AuthorityDriver, AuthoritySettings]:
    """The saved settings, switched off or not: a read-only call may try settings before they
    are switched on (production credentials, say). Missing or invalid ones are refused as for a
    certification."""
    return load_tenant_settings(session, gw, tenant_id, authority, switched_off_too=True)


async def _call(
    gw: Gateway,
    who: Caller,
    tenant_id: str,
    authority: str,
    event: str,
    work: Work[T],
    *,
    invoice_id: str | None = None,
    loaded: tuple[AuthorityDriver, AuthoritySettings] | None = None,
) -> tuple[T, AuthoritySettings, list[str], float | None]:
    """Run `work` with the tenant's settings through a recorder; store its calls in the audit log
    whatever happens. Returns (result, settings, audit entry ids, duration of the calls in ms)."""
    if loaded is None:
        loaded = await gw.db.read(_saved_settings, gw, tenant_id, authority)
    driver, settings = loaded
    connection, recorder = connect(gw, tenant_id, driver, settings)
    started = utcnow()

    def store(session: Session) -> list[str]:
        entries = record_calls(
            session,
            gw.box,
            recorder.records,
            tenant_id=tenant_id,
            authority=authority,
            environment=settings.environment.value,
            trigger=who.trigger,
            invoice_id=invoice_id,
            event=event,
            started_at=started,
        )
        session.flush()
        return [e.id for e in entries]

    clock = time.perf_counter()
    try:
        result = await work(driver, settings, connection)
    except GatewayError as exc:
        await gw.db.run(store)
        # as for a certification: a secret quoted anywhere in the error is masked before it is shown
        raise masked(exc, settings.secrets()) from exc
    except Exception:
        await gw.db.run(store)
        raise
    duration = (time.perf_counter() - clock) * 1000
    return result, settings, await gw.db.run(store), round(duration, 1)


async def test_connection(gw: Gateway, who: Caller, tenant_id: str, authority: str) -> ConnectionTestOut:
    code = known_authority(authority)
    _offered(gw, code, CONNECTION_TEST, "connection test (no harmless call on its platform)")

    async def work(driver: AuthorityDriver, settings: AuthoritySettings, connection: Connection) -> Any:
        assert isinstance(driver, ConnectionTester)
        return await driver.test_connection(settings, connection)

    report, settings, ids, duration = await _call(gw, who, tenant_id, code, "settings.test", work)
    return ConnectionTestOut(
        authority=code,
        environment=settings.environment.value,
        call=report.call,
        summary=report.summary,
        facts=report.facts,
        duration_ms=duration,
        tested_at=utcnow(),
        audit_entry_ids=ids,
    )


def _source(gw: Gateway, code: str) -> InformationSource[Any]:
    _offered(gw, code, INFORMATION, "information API")
    driver = gw.driver(code)
    assert isinstance(driver, InformationSource)
    return driver


def _topic(source: InformationSource[Any], code: str, name: str) -> Topic:
    found = source.topic(name)
    if found is None:
        known = ", ".join(t.name for t in source.topics)
        raise NotFound(
            f"{code} has no information topic {name!r}; known: {known}", code="info.topic_not_found"
        )
    return found


async def information(gw: Gateway, who: Caller, tenant_id: str, authority: str) -> InformationOut:
    code = known_authority(authority)
    source = _source(gw, code)

    async def work(driver: AuthorityDriver, settings: AuthoritySettings, connection: Connection) -> Any:
        return [(t, await source.information(t, settings, connection)) for t in source.topics]

    answers, settings, ids, _ = await _call(gw, who, tenant_id, code, "authority.information", work)
    return InformationOut(
        authority=code,
        environment=settings.environment.value,
        items=[TopicData(topic=t.name, title=t.title, call=t.call, data=data) for t, data in answers],
        audit_entry_ids=ids,
    )


async def one_topic(gw: Gateway, who: Caller, tenant_id: str, authority: str, name: str) -> TopicAnswer:
    code = known_authority(authority)
    source = _source(gw, code)
    topic = _topic(source, code, name)

    async def work(driver: AuthorityDriver, settings: AuthoritySettings, connection: Connection) -> Any:
        return await source.information(topic, settings, connection)

    data, settings, ids, _ = await _call(gw, who, tenant_id, code, "authority.information", work)
    return TopicAnswer(
        authority=code,
        environment=settings.environment.value,
        topic=topic.name,
        title=topic.title,
        call=topic.call,
        data=data,
        audit_entry_ids=ids,
    )


# --- the report of a certified invoice ---------------------------------------------------------------
@dataclass
class _Certified:
    authority: str
    status: str
    environment: str | None
    invoice: Invoice | None = None
    certification: Certification | None = None


def _read_invoice(session: Session, tenant_id: str, invoice_id: str) -> _Certified:
    row = get_invoice(session, tenant_id, invoice_id)  # another tenant's invoice: 404
    found = _Certified(row.authority, row.status, row.environment)
    if row.status == "certified" and row.certification is not None:
        found.invoice = Invoice.model_validate(row.document)
        found.certification = Certification.model_validate(row.certification)
    return found


async def report(gw: Gateway, who: Caller, tenant_id: str, invoice_id: str) -> ReportOut:
    """Declare a certified invoice to its authority's report endpoint. Refusals, before anything
    is sent: 404 (no such invoice for this tenant), 422 `authority.capability_missing` (its
    authority has no report), 409 `invoice.not_certified`, 422 `report.environment` (the settings
    point at another environment than the one that certified it)."""
    found = await gw.db.read(_read_invoice, tenant_id, invoice_id)
    code, status = found.authority, found.status
    _offered(gw, code, REPORT, "report endpoint")
    invoice, certification = found.invoice, found.certification
    if invoice is None or certification is None:
        raise InvoiceOperationError(
            Conflict(
                f"invoice {invoice_id} is {status}: only a certified invoice can be reported",
                code="invoice.not_certified",
            ),
            invoice_id,
            status,
        )
    try:
        loaded = await gw.db.read(load_tenant_settings, gw, tenant_id, code)
        certified_in = found.environment or certification.environment
        now_in = loaded[1].environment.value
        if now_in != certified_in:
            raise ConfigurationError(
                f"invoice {invoice_id} was certified in the {certified_in} environment but the {code} "
                f"settings now point at {now_in}: a report goes to the environment that certified it",
                code="report.environment",
            )

        async def work(driver: AuthorityDriver, settings: AuthoritySettings, connection: Connection) -> Any:
            assert isinstance(driver, Reporter) and invoice is not None and certification is not None
            return await driver.report(invoice, certification, settings, connection)

        ack, settings, ids, _ = await _call(
            gw, who, tenant_id, code, "invoice.report", work, invoice_id=invoice_id, loaded=loaded
        )
    except GatewayError as exc:
        raise InvoiceOperationError(exc, invoice_id, status) from None
    assert isinstance(ack, Certification)
    driver = gw.driver(code)
    assert isinstance(driver, Reporter)
    return ReportOut(
        invoice_id=invoice_id,
        authority=code,
        environment=settings.environment.value,
        reported_at=utcnow(),
        call=driver.report_call,
        acknowledgement={
            "reference": ack.reference,
            "certified_at": ack.certified_at.isoformat(),
            "answer": ack.raw,
        },
        audit_entry_ids=ids,
    )
