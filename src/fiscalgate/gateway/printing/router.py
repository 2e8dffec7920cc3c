from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Response

from fiscalgate.gateway.api.auth import gateway, tenant_caller, tenant_id_of
from fiscalgate.gateway.printing.service import print_invoice
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller
from fiscalgate.printing import Lang, Layout

router = APIRouter(prefix="/v1/invoices", tags=["invoices"])


@router.get(
    "/{invoice_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The printed invoice"}},
)
async def invoice_pdf(
    invoice_id: str,
    layout: Annotated[Layout, Query(description="a4, receipt (80 mm) or receipt58 (58 mm)")] = "a4",
    lang: Annotated[
        Lang, Query(description="Labels in fr (legal) or en; mandatory mentions stay French")
    ] = "fr",
    who: Caller = Depends(tenant_caller),
    gw: Gateway = Depends(gateway),
) -> Response:
    """The invoice as a PDF: certified (reference, QR code, the authority's mentions and totals;
    "DUPLICATA" from the second print on) or a pro forma marked "non certifiée". Each print is
    recorded in the audit log (`invoice.printed`)."""
    printed = await anyio.to_thread.run_sync(
        lambda: print_invoice(gw.db, who, tenant_id_of(who), invoice_id, layout=layout, lang=lang)
    )
    return Response(
        printed.pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{printed.filename}"',
            "Fiscalgate-Print-Copy": str(printed.copy),
        },
    )
