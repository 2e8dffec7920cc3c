"""Printing a stored invoice: the tenant's profile as the seller, DUPLICATA from the second print of
a certified invoice on, and one audit entry per print.

The PDF is rendered outside any transaction (a 500-line invoice takes a while, and SQLite has one
writer); the print is then recorded in a short transaction that locks the invoice row, so two
concurrent first prints cannot both come out as the original. When that transaction finds the
situation changed since the render (another print landed first, or the invoice got certified), it
renders again before recording: nothing is recorded for a PDF that was not produced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fiscalgate.core.certification import Certification
from fiscalgate.core.invoice import Invoice, parse_invoice
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.audit.service import record_event
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.service import get_invoice
from fiscalgate.gateway.runtime import Database
from fiscalgate.gateway.tenants.profile import find_profile
from fiscalgate.gateway.tenants.service import Caller
from fiscalgate.printing import Lang, Layout, SellerIdentity, render_invoice_pdf

PRINTED = "invoice.printed"  # a certified invoice's print: the 2nd and later are duplicates
PRINTED_PRO_FORMA = "invoice.printed_pro_forma"


@dataclass(frozen=True)
class PrintedPdf:
    pdf: bytes
    filename: str
    copy: int  # 1 for the original; 2, 3... for duplicates; 0 for a pro forma
    duplicate: bool
    certified: bool


@dataclass(frozen=True)
class _Job:
    invoice: Invoice
    cert: Certification | None
    authority: str
    seller: SellerIdentity | None
    status: str
    prints: int  # certified prints recorded so far


def _prints(session: Session, tenant_id: str, invoice_id: str) -> int:
    query = select(func.count(AuditEntry.id)).where(
        AuditEntry.tenant_id == tenant_id, AuditEntry.invoice_id == invoice_id, AuditEntry.event == PRINTED
    )
    return int(session.scalar(query) or 0)


def _job(session: Session, tenant_id: str, invoice_id: str) -> _Job:
    row = get_invoice(session, tenant_id, invoice_id)  # another tenant's invoice: 404
    certified = row.status == "certified" and row.certification is not None
    profile = find_profile(session, tenant_id)
    seller = None
    if profile is not None:
        seller = SellerIdentity(
            name=profile.name,
            tax_id=profile.tax_id,
            rccm=profile.rccm,
            address=profile.address,
            phone=profile.phone,
            email=profile.email,
            logo=profile.logo,
        )
    return _Job(
        invoice=parse_invoice(row.document),
        cert=Certification.model_validate(row.certification) if certified else None,
        authority=row.authority,
        seller=seller,
        status=row.status,
        prints=_prints(session, tenant_id, invoice_id) if certified else 0,
    )


def _render(job: _Job, layout: Layout, lang: Lang) -> bytes:
    return render_invoice_pdf(
        job.invoice,
        job.cert,
        authority=job.authority,
        seller=job.seller,
        layout=layout,
        lang=lang,
        duplicate=job.prints > 0,
        printed_at=utcnow(),
    )


def filename(job_number: str, layout: str, certified: bool) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", job_number).strip("_") or "invoice"
    return f"{safe}{'' if certified else '-proforma'}{'' if layout == 'a4' else '-' + layout}.pdf"


def print_invoice(
    db: Database, caller: Caller, tenant_id: str, invoice_id: str, *, layout: Layout = "a4", lang: Lang = "fr"
) -> PrintedPdf:
    """Render the invoice and record the print. Blocking: call it from a worker thread."""
    job = db.read_call(_job, tenant_id, invoice_id)
    pdf = _render(job, layout, lang)

    def record(session: Session) -> PrintedPdf:
        nonlocal job, pdf
        # Serialise prints of one invoice (PostgreSQL row lock; SQLite writers are serial anyway).
        session.execute(select(InvoiceRow.id).where(InvoiceRow.id == invoice_id).with_for_update())
        now = _job(session, tenant_id, invoice_id)
        if (now.status, now.prints > 0) != (job.status, job.prints > 0):
            job, pdf = now, _render(now, layout, lang)
        certified = job.cert is not None
        copy = job.prints + 1 if certified else 0
        record_event(
            session,
            tenant_id=tenant_id,
            kind="invoice",
            event=PRINTED if certified else PRINTED_PRO_FORMA,
            trigger=caller.trigger,
            authority=job.authority,
            invoice_id=invoice_id,
            environment=job.cert.environment if job.cert else None,
            detail={
                "layout": layout,
                "lang": lang,
                "copy": copy,
                "duplicate": copy > 1,
                "reference": job.cert.reference if job.cert else None,
                "bytes": len(pdf),
            },
        )
        return PrintedPdf(pdf, filename(job.invoice.number, layout, certified), copy, copy > 1, certified)

    return db.call(record)
