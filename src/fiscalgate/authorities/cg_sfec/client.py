"""The async SFEC client: `X-API-Key`, transport injected through the Connection, base URL and
path prefix from the settings; every request goes through `fiscalgate.authorities.http.send`."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from fiscalgate.authorities.base import Connection
from fiscalgate.authorities.cg_sfec import errors
from fiscalgate.authorities.cg_sfec.convert import payload_problems
from fiscalgate.authorities.cg_sfec.schemas import (
    CertificationResponse,
    CertifyRequest,
    InvoicePage,
    InvoiceRecord,
    ReportRequest,
)
from fiscalgate.authorities.cg_sfec.settings import SfecSettings
from fiscalgate.authorities.http import AuthoritySession, json_body, send
from fiscalgate.core.errors import AuthorityServerError, InvoiceError
from fiscalgate.core.masking import mask_mapping

AUTHORITY = errors.AUTHORITY


class SfecClient(AuthoritySession):
    def __init__(self, settings: SfecSettings, connection: Connection) -> None:
        headers = {"X-API-Key": settings.api_key.get_secret_value(), "Content-Type": "application/json"}
        super().__init__(connection, headers)
        self.settings = settings

    def mask(self, data: Any) -> Any:
        return mask_mapping(data, self.settings.secrets())

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        checkpoint: dict[str, Any] | None = None,
    ) -> tuple[httpx.Response, Any]:
        response = await send(
            self.http,
            method,
            path,
            authority=AUTHORITY,
            json=json,
            params=params,
            deadline=self.connection.timeout,
            checkpoint=checkpoint,
        )
        return response, json_body(response)

    def _raise_for(self, response: httpx.Response, body: Any, what: str) -> None:
        if response.is_success:
            return
        # Masked before anything reads it: a platform that echoes the key in its message must not
        # put it into the exception's text, authority_message or problems either.
        body = self.mask(body)
        status = response.status_code
        if status in (404, 405) and response.request.method == "POST":
            raise errors.endpoint_not_found(status, body, what=what, url=str(response.request.url))
        raw = {"status": status, "body": body}
        raise errors.classify(status, body, what=what, raw=raw)

    @staticmethod
    def _unreadable(response: httpx.Response, what: str, wanted: str, raw: Any) -> AuthorityServerError:
        # A success without what it should carry: treated as a server fault, hence retryable
        # (a resend is safe thanks to the 409 on invoice_id).
        return AuthorityServerError(
            f"{AUTHORITY}: {what} answered {response.status_code} without {wanted}",
            authority=AUTHORITY,
            http_status=response.status_code,
            raw=raw,
        )

    async def _submit(
        self, name: str, payload: Mapping[str, Any], paid: Decimal | None
    ) -> tuple[CertificationResponse, dict[str, Any]]:
        # The local validator runs before anything is sent: SFEC's only signal is a 400/422.
        model = CertifyRequest if name == "certify" else ReportRequest
        problems = payload_problems(payload, paid=paid, model=model)
        if problems:
            raise InvoiceError(problems, code="invoice.invalid.cg-sfec")
        path = self.settings.path("certify" if name == "certify" else "report")
        what = f"POST {path}"
        response, body = await self._call(
            "POST",
            path,
            json=dict(payload),
            checkpoint={"invoice_id": payload.get("invoice_id"), "invoice_type": payload.get("invoice_type")},
        )
        self._raise_for(response, body, what)
        raw = self.mask({"status": response.status_code, "body": body})
        answer = body
        if isinstance(body, Mapping) and isinstance(body.get("data"), Mapping):
            answer = body["data"]  # {"success": true, "data": {...}}, a common envelope
        try:
            return CertificationResponse.model_validate(answer), raw
        except ValueError:
            raise self._unreadable(response, what, "a certification number", raw) from None

    async def certify(
        self, payload: Mapping[str, Any], *, paid: Decimal | None = None
    ) -> tuple[CertificationResponse, dict[str, Any]]:
        """Online certification; returns the parsed answer and the raw one (secrets masked)."""
        return await self._submit("certify", payload, paid)

    async def report(
        self, payload: Mapping[str, Any], *, paid: Decimal | None = None
    ) -> tuple[CertificationResponse, dict[str, Any]]:
        """`POST /api/invoices/report/api`: declare an invoice already certified (the online-report page)."""
        return await self._submit("report", payload, paid)

    async def lookup(self, invoice_id: str) -> tuple[InvoiceRecord | None, dict[str, Any]]:
        """One invoice by its id; None when SFEC does not know it (404)."""
        path = self.settings.path("lookup", invoice_id=quote(invoice_id, safe=""))
        response, body = await self._call("GET", path)
        raw = self.mask({"status": response.status_code, "body": body})
        if response.status_code == 404:
            return None, raw
        self._raise_for(response, body, f"GET {path}")
        record = body
        if isinstance(body, Mapping):  # bare, or wrapped in "invoice" / "data"
            wrapped = body.get("invoice") or body.get("data")
            record = wrapped if isinstance(wrapped, Mapping) else body
        try:
            return InvoiceRecord.model_validate(record), raw
        except ValueError:
            raise self._unreadable(response, f"GET {path}", "an invoice record", raw) from None

    async def list(self, *, page: int = 1, page_size: int = 20, **filters: str) -> InvoicePage:
        path = self.settings.path("list")
        params: dict[str, Any] = {"page": page, "pageSize": page_size, **filters}
        response, body = await self._call("GET", path, params=params)
        self._raise_for(response, body, f"GET {path}")
        try:
            return InvoicePage.model_validate(body)
        except ValueError:
            raw = self.mask({"status": response.status_code, "body": body})
            raise self._unreadable(response, f"GET {path}", "a page of invoices", raw) from None

    async def find(
        self,
        invoice_id: str,
        *,
        invoice_type: str | None = None,
        date_start: str | None = None,
        date_end: str | None = None,
    ) -> tuple[InvoiceRecord | None, dict[str, Any], bool]:
        """The certified invoice whose ERP id is `invoice_id`: (record, raw, searched_everything).

        `GET {prefix}/invoices/{id}` may only know SFEC's own `identifier` (spec §2), so a 404
        there is not the last word: the list is then scanned for the id under `invoice_id`,
        `invoice_number` or `seller_invoice_number` (how T-CONNECTOR recovers after a 409, spec §3),
        at most `settings.lookup_max_pages` pages. `searched_everything` is False when pages were
        left unread: "not found" then proves nothing. `date_start` / `date_end` (YYYY-MM-DD, the
        list's own filters on the certification date) bound the scan to the days the invoice can
        have been certified on."""
        record, raw = await self.lookup(invoice_id)
        if record is not None and record.invoice_id in (None, invoice_id):
            return record, raw, True
        scanned: dict[str, Any] = {"lookup": raw, "pages": 0}
        filters = {"invoice_type": invoice_type} if invoice_type else {}
        if date_start is not None and date_end is not None:
            filters.update(date_start=date_start, date_end=date_end)
            scanned["window"] = [date_start, date_end]
        page = 1
        while page <= self.settings.lookup_max_pages:
            found = await self.list(page=page, page_size=self.settings.lookup_page_size, **filters)
            scanned["pages"] = page
            for item in found.invoices:
                ids = {item.get(k) for k in ("invoice_id", "invoice_number", "seller_invoice_number")}
                if invoice_id in ids:
                    scanned["match"] = self.mask(item)
                    try:
                        return InvoiceRecord.model_validate(item), scanned, True
                    except ValueError:
                        raise self._unreadable_list(invoice_id, scanned) from None
            last = found.total_pages if found.total_pages is not None else page
            if page >= last or not found.invoices:
                return None, scanned, True
            page += 1
        return None, scanned, False

    @staticmethod
    def _unreadable_list(invoice_id: str, raw: Any) -> AuthorityServerError:
        return AuthorityServerError(
            f"{AUTHORITY}: the invoice list holds {invoice_id} but not as a readable certified invoice",
            authority=AUTHORITY,
            raw=raw,
        )
