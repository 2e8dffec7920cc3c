"""`SfecDriver`: the registry entry for `cg-sfec`, composing settings, convert, client and the
simulator into the AuthorityDriver contract (see authorities/base.py)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import anyio

from fiscalgate.authorities.base import (
    CheckpointFn,
    Connection,
    Driver,
    Reconciliation,
)
from fiscalgate.authorities.capabilities import ConnectionReport, ConnectionTester, Reporter, harmless
from fiscalgate.authorities.cg_sfec import convert, regime
from fiscalgate.authorities.cg_sfec.client import SfecClient
from fiscalgate.authorities.cg_sfec.descriptor import DESCRIPTOR
from fiscalgate.authorities.cg_sfec.schemas import CertificationResponse, InvoiceRecord
from fiscalgate.authorities.cg_sfec.settings import SfecSettings
from fiscalgate.authorities.descriptor import AuthorityDescriptor
from fiscalgate.core.certification import Certification, Notice
from fiscalgate.core.errors import (
    AlreadyCertified,
    AuthorityError,
    AuthorityServerError,
    AuthorityUnreachable,
    ConfigurationError,
    InvoiceError,
    InvoiceRejected,
    OutcomeUnknown,
    Problem,
    RateLimited,
)
from fiscalgate.core.invoice import Invoice, InvoiceKind

if TYPE_CHECKING:
    import click
    from starlette.types import ASGIApp

AUTHORITY = regime.AUTHORITY
# Failures after which a resend is safe: `invoice_id` makes SFEC answer 409 to a duplicate.
RETRYABLE = (AuthorityServerError, AuthorityUnreachable, OutcomeUnknown, RateLimited)


log = logging.getLogger(__name__)
# Days read around the first send: the platform may date a certification in its own time zone
# (Congo is UTC+1) and a retry may certify after midnight.
SCAN_MARGIN = timedelta(days=1)


def scan_window(sent_at: Any, now: datetime | None = None) -> tuple[str, str] | None:
    """(date_start, date_end) for the invoice list: from the day before the first send to the day
    after now (a certification cannot be older than its first send). None without a readable
    `sent_at` (a claim recorded before it was kept): the scan is bounded by its pages only."""
    if not isinstance(sent_at, str):
        return None
    try:
        sent = datetime.fromisoformat(sent_at)
    except ValueError:
        return None
    if sent.tzinfo is None:
        return None
    end = (now or datetime.now(UTC)) + SCAN_MARGIN
    return (sent - SCAN_MARGIN).date().isoformat(), end.date().isoformat()


class SfecDriver(Driver[SfecSettings], ConnectionTester[SfecSettings], Reporter[SfecSettings]):
    descriptor: ClassVar[AuthorityDescriptor] = DESCRIPTOR
    settings_model = SfecSettings
    # The one read-only call with the X-API-Key (spec §2): the first page of the key's invoices,
    # one record at most. It certifies nothing and changes nothing.
    # (with the default path_prefix and list_path; the report names the path actually used)
    connection_test_call = "GET /api/invoices?page=1&pageSize=1"
    report_call = "POST /api/invoices/report/api"

    # --- connection test (authorities/capabilities.py) ----------------------------------------
    async def test_connection(self, settings: SfecSettings, connection: Connection) -> ConnectionReport:
        path = settings.path("list")
        what = f"GET {path}?page=1&pageSize=1"
        async with SfecClient(settings, connection) as client:
            try:
                page = await harmless(client.list(page=1, page_size=1), what=what, waited=connection.timeout)
            except InvoiceRejected as exc:
                if exc.http_status not in (404, 405):
                    raise
                # the list has no id in its path: a 404 there means no such endpoint on this host
                url = f"{connection.base_url.rstrip('/')}{path}"
                raise ConfigurationError(
                    f"{AUTHORITY}: {what} answered {exc.http_status}: no such endpoint at {url}; "
                    "check base_url, path_prefix and list_path",
                    code=f"settings.invalid.{AUTHORITY}",
                    problems=[Problem("path_prefix", "endpoint_not_found", f"{url} does not exist")],
                ) from exc
        facts = {
            "page": page.page,
            "pageSize": page.page_size,
            "totalPages": page.total_pages,
            "total": page.total,
        }
        known = f": {page.total} invoice(s) on record for this key" if page.total is not None else ""
        return ConnectionReport(what, f"API key accepted by {AUTHORITY}{known}", facts)

    # --- settings ---------------------------------------------------------------------------
    def base_url(self, settings: SfecSettings) -> str:
        # the host/environment safety checks run when the settings are parsed (SfecSettings)
        return settings.resolved_base_url()

    # --- invoices ---------------------------------------------------------------------------
    def validate(self, invoice: Invoice, settings: SfecSettings) -> list[Problem]:
        return convert.validate(invoice, settings)

    def build_payload(self, invoice: Invoice, settings: SfecSettings) -> dict[str, Any]:
        return convert.build_payload(invoice, settings)

    async def certify(
        self,
        invoice: Invoice,
        settings: SfecSettings,
        connection: Connection,
        *,
        checkpoint: CheckpointFn | None = None,
    ) -> Certification:
        sfec = settings
        self.refuse_invalid(invoice, sfec)
        if invoice.kind is InvoiceKind.CREDIT_NOTE:
            raise InvoiceError(
                [Problem("kind", "kind", "a credit note goes through credit_note (with its original)")]
            )
        payload = convert.build_payload(invoice, sfec)
        return await self._submit(payload, convert.paid_amount(invoice), sfec, connection, checkpoint)

    async def credit_note(
        self,
        credit: Invoice,
        original: Certification,
        settings: SfecSettings,
        connection: Connection,
        *,
        checkpoint: CheckpointFn | None = None,
    ) -> Certification:
        sfec = settings
        self.refuse_invalid(credit, sfec)
        problems = self._original_problems(credit, original)
        if problems:
            raise InvoiceError(problems)
        payload = convert.build_payload(
            credit, sfec, reference_invoice_id=str(original.authority_data["invoice_id"])
        )
        limit = original.totals.get("total")
        if limit is not None and Decimal(str(payload["total_amount"])) > limit:
            raise InvoiceError(
                [
                    Problem(
                        "lines",
                        "credit_exceeds_original",
                        f"the credit note's total {payload['total_amount']} exceeds the original's {limit}",
                        expected=f"<= {limit}",
                    )
                ]
            )
        return await self._submit(payload, convert.paid_amount(credit), sfec, connection, checkpoint)

    @staticmethod
    def _original_problems(credit: Invoice, original: Certification) -> list[Problem]:
        problems = []
        if credit.kind is not InvoiceKind.CREDIT_NOTE:
            problems.append(Problem("kind", "kind", "must be credit_note"))
        if original.authority != AUTHORITY:
            problems.append(
                Problem("original", "original_authority", f"was certified by {original.authority}")
            )
        elif original.kind is not InvoiceKind.SALE:
            problems.append(
                Problem("original", "original_kind", "a credit note corrects a certified sales invoice")
            )
        elif not original.authority_data.get("invoice_id") or not original.reference:
            problems.append(
                Problem("original", "original_certified", "the original carries no SFEC certification")
            )
        currency = original.authority_data.get("currency")
        if currency and currency != credit.currency:
            problems.append(
                Problem("currency", "currency", "must be the original's currency", expected=currency)
            )
        return problems

    async def report(
        self,
        invoice: Invoice,
        certification: Certification,
        settings: SfecSettings,
        connection: Connection,
    ) -> Certification:
        """Declare an invoice already certified (`POST /api/invoices/report/api`, the online-report page),
        e.g. one certified online, for fiscal archiving. Returns SFEC's acknowledgement."""
        sfec = settings
        problems = convert.validate(invoice, sfec)
        if problems:
            raise InvoiceError(problems)
        reference = certification.authority_data.get("reference_invoice_id")
        payload = convert.report_payload(invoice, sfec, certification, reference_invoice_id=reference)
        async with SfecClient(sfec, connection) as client:
            answer, raw = await client.report(payload, paid=convert.paid_amount(invoice))
        cert = convert.to_certification(
            answer, payload, environment=sfec.environment.value, raw={"report": raw}, kind=invoice.kind
        )
        cert.authority_data["reported"] = True
        return cert

    async def _submit(
        self,
        payload: dict[str, Any],
        paid: Decimal,
        settings: SfecSettings,
        connection: Connection,
        checkpoint: CheckpointFn | None,
    ) -> Certification:
        kind = InvoiceKind.CREDIT_NOTE if payload["invoice_type"] == "creditNote" else InvoiceKind.SALE
        if checkpoint is not None:
            # enough to reconcile later: the idempotency key and what was sent
            # (and when it was first sent: a reconciliation reads only the days around it)
            await checkpoint(
                {
                    "invoice_id": payload["invoice_id"],
                    "invoice_type": payload["invoice_type"],
                    "sent_at": datetime.now(UTC).isoformat(),
                }
            )
        uncertain: OutcomeUnknown | None = None
        async with SfecClient(settings, connection) as client:
            for attempt in range(1, settings.max_attempts + 1):
                try:
                    answer, raw = await client.certify(payload, paid=paid)
                except AlreadyCertified as exc:
                    return await self._adopt(client, payload, exc, settings, kind, resent=attempt > 1)
                except RETRYABLE as exc:
                    if isinstance(exc, OutcomeUnknown):
                        uncertain = exc
                    if attempt == settings.max_attempts:
                        if uncertain is not None and uncertain is not exc:
                            raise self._still_unknown(payload, exc) from exc
                        raise
                    await anyio.sleep(settings.retry_backoff_seconds * 2 ** (attempt - 1))
                    continue
                except AuthorityError as exc:
                    # After an attempt that may have certified, a later refusal (401, 400, 422...)
                    # does not prove that nothing was certified: the platform may even spell
                    # "duplicate" as a 422. Only a look-up can tell, so the outcome stays unknown.
                    if uncertain is not None:
                        raise self._still_unknown(payload, exc) from exc
                    raise
                return convert.to_certification(
                    answer, payload, environment=settings.environment.value, raw={"certify": raw}, kind=kind
                )
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    @staticmethod
    def _still_unknown(payload: Mapping[str, Any], later: AuthorityError) -> OutcomeUnknown:
        return OutcomeUnknown(
            f"{AUTHORITY}: invoice {payload['invoice_id']} may have been certified "
            f"(timed out, then: {later.message}); reconcile before anything else",
            authority=AUTHORITY,
            http_status=later.http_status,
            authority_code=later.authority_code,
            authority_message=later.authority_message,
            raw=later.raw,
            checkpoint={"invoice_id": payload["invoice_id"], "invoice_type": payload["invoice_type"]},
        )

    async def _adopt(
        self,
        client: SfecClient,
        payload: Mapping[str, Any],
        conflict: AlreadyCertified,
        settings: SfecSettings,
        kind: InvoiceKind,
        *,
        resent: bool,
    ) -> Certification:
        """After a 409, adopt the certification found under our `invoice_id` only if it is this
        invoice (same type, totals, currency, recipient, reference)."""
        invoice_id = str(payload["invoice_id"])
        try:
            record, raw, _ = await client.find(invoice_id, invoice_type=str(payload["invoice_type"]))
        except AuthorityError as exc:
            # the 409 says it is certified; only adopting it has to wait (reconcile later)
            raise AlreadyCertified(
                f"{AUTHORITY}: invoice_id {invoice_id} is already certified or reported, and looking it "
                f"up failed ({exc.message}); reconcile later to adopt it",
                authority=AUTHORITY,
                http_status=conflict.http_status,
                authority_code=conflict.authority_code,
                authority_message=conflict.authority_message,
                raw={"conflict": conflict.raw, "lookup_error": exc.raw},
            ) from exc
        if record is None:
            raise AlreadyCertified(
                f"{AUTHORITY}: invoice_id {invoice_id} is already certified or reported, but neither the "
                "look-up nor the invoice list shows it; check it on the portail e-Facture",
                authority=AUTHORITY,
                http_status=conflict.http_status,
                authority_code=conflict.authority_code,
                authority_message=conflict.authority_message,
                raw={"conflict": conflict.raw, "lookup": raw},
            )
        mismatches = convert.record_mismatches(record, payload)
        if mismatches:
            raise AlreadyCertified(
                f"{AUTHORITY}: invoice_id {invoice_id} is already certified for a DIFFERENT invoice ("
                + "; ".join(mismatches)
                + "); give this invoice another number, or correct the certified one with a credit note",
                authority=AUTHORITY,
                http_status=conflict.http_status,
                authority_code=conflict.authority_code,
                authority_message=conflict.authority_message,
                raw={"conflict": conflict.raw, "lookup": raw},
                problems=[Problem(m.split(":")[0], "already_certified_differently", m) for m in mismatches],
            )
        cert = self._from_record(
            record, payload, settings, kind, raw={"conflict": conflict.raw, "lookup": raw}
        )
        why = "after a resend" if resent else "on first submission"
        cert.notices.append(
            Notice(
                code="sfec.adopted",
                message=f"SFEC already had invoice {invoice_id} ({why}); "
                "its certification was checked and adopted",
                severity="info",
            )
        )
        return cert

    @staticmethod
    def _from_record(
        record: InvoiceRecord,
        payload: Mapping[str, Any],
        settings: SfecSettings,
        kind: InvoiceKind,
        *,
        raw: dict[str, Any],
    ) -> Certification:
        answer = CertificationResponse.model_validate(record.model_dump())
        return convert.to_certification(
            answer, payload, environment=settings.environment.value, raw=raw, kind=kind
        )

    async def reconcile(
        self,
        invoice: Invoice,
        settings: SfecSettings,
        connection: Connection,
        checkpoint: Mapping[str, Any],
        *,
        original: Certification | None = None,
        decision: Literal["confirm", "cancel"] = "confirm",
    ) -> Reconciliation:
        """Look the invoice up by `invoice_id` (GET by id, then the list). SFEC has no pending state
        to confirm or cancel, so `decision` does not apply: found and matching = certified; absent
        from both = not certified (a resend is safe: a duplicate would get a 409)."""
        sfec = settings
        reference = original.authority_data.get("invoice_id") if original is not None else None
        payload = convert.build_payload(invoice, sfec, reference_invoice_id=reference)
        invoice_id = str(checkpoint.get("invoice_id") or payload["invoice_id"])
        payload["invoice_id"] = invoice_id
        window = scan_window(checkpoint.get("sent_at"))
        try:
            async with SfecClient(sfec, connection) as client:
                record, raw, complete = await client.find(
                    invoice_id,
                    invoice_type=str(payload["invoice_type"]),
                    date_start=window[0] if window else None,
                    date_end=window[1] if window else None,
                )
        except AuthorityError as exc:
            return Reconciliation("unknown", detail=f"the look-up failed: {exc.message}")
        if record is None and not complete:
            days = f" certified between {window[0]} and {window[1]}" if window else ""
            log.error(
                "cg-sfec: %s is neither found by id nor in the first %s pages of the invoice list%s; "
                "the scan stops there (lookup_max_pages) and the invoice waits for a person",
                invoice_id,
                sfec.lookup_max_pages,
                days,
            )
            return Reconciliation(
                "unknown",
                detail=f"{invoice_id} is neither found by id nor in the first {sfec.lookup_max_pages} pages "
                f"of the invoice list{days}: a person must check the SFEC portal",
            )
        if record is None:
            return Reconciliation(
                "not_certified", detail=f"SFEC does not know {invoice_id}: resending is safe"
            )
        mismatches = convert.record_mismatches(record, payload)
        if mismatches:
            return Reconciliation(
                "unknown",
                detail=f"{invoice_id} is certified but differs from this invoice: " + "; ".join(mismatches),
            )
        kind = InvoiceKind.CREDIT_NOTE if payload["invoice_type"] == "creditNote" else InvoiceKind.SALE
        cert = self._from_record(record, payload, sfec, kind, raw={"lookup": raw})
        return Reconciliation("certified", cert, detail=f"{invoice_id} is certified as {cert.reference}")

    # --- simulator --------------------------------------------------------------------------
    def mock_app(self, settings: SfecSettings) -> ASGIApp:
        from fiscalgate.authorities.cg_sfec.simulator.app import create_app

        sfec = settings
        return create_app(niu=sfec.niu, api_key=sfec.api_key.get_secret_value())

    def simulate_command(self) -> click.Command:
        from fiscalgate.authorities.cg_sfec.simulator.cli import command

        return command
