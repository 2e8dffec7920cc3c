"""The e-MECeF driver: validate, submit, compare totals, checkpoint, confirm (spec §5)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from fiscalgate.authorities.base import (
    CheckpointFn,
    Connection,
    Driver,
    Environment,
    Reconciliation,
)
from fiscalgate.authorities.bj_emecef.client import EmecefClient
from fiscalgate.authorities.bj_emecef.convert import (
    build_request,
    details_match,
    expected_totals,
    rounding_notice,
    to_certification,
    token_notice,
    totals_mismatches,
)
from fiscalgate.authorities.bj_emecef.descriptor import DESCRIPTOR, MOCK_IFU, MOCK_NIM, MOCK_TOKEN_SECRET
from fiscalgate.authorities.bj_emecef.errors import NOT_PENDING
from fiscalgate.authorities.bj_emecef.regime import AUTHORITY, CREDIT_TYPES, TOTAL_FIELDS
from fiscalgate.authorities.bj_emecef.schemas import InvoiceRequestDataDto, InvoiceResponseDataDto
from fiscalgate.authorities.bj_emecef.settings import MOCK_URL, PRODUCTION_URL, SANDBOX_URL, EmecefSettings
from fiscalgate.authorities.bj_emecef.simulator.state import Platform
from fiscalgate.authorities.capabilities import (
    ConnectionReport,
    ConnectionTester,
    InformationSource,
    Topic,
    harmless,
)
from fiscalgate.authorities.descriptor import AuthorityDescriptor
from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import (
    AuthorityError,
    ConfigurationError,
    InvoiceError,
    InvoiceRejected,
    OutcomeUnknown,
    Problem,
)
from fiscalgate.core.invoice import Invoice
from fiscalgate.core.masking import mask_mapping

if TYPE_CHECKING:
    import click
    from starlette.types import ASGIApp


def _totals_text(totals: Mapping[str, Decimal]) -> dict[str, int]:
    return {k: int(v) for k, v in totals.items()}


# The information API (spec §4 #6-9, §6.8), named as the platform names its paths.
INFO_TOPICS = (
    Topic("status", "The taxpayer and all of its e-MCFs (shop, address, status)", "GET /api/info/status"),
    Topic("taxGroups", "The rates of tax groups A-F and of AIB A/B (%)", "GET /api/info/taxGroups"),
    Topic("invoiceTypes", "The invoice types (FV, FA, EV, EA), labelled", "GET /api/info/invoiceTypes"),
    Topic("paymentTypes", "The payment types and their labels", "GET /api/info/paymentTypes"),
)


class EmecefDriver(
    Driver[EmecefSettings], ConnectionTester[EmecefSettings], InformationSource[EmecefSettings]
):
    descriptor: ClassVar[AuthorityDescriptor] = DESCRIPTOR
    settings_model = EmecefSettings
    # The DGI's own advice (DOC p.5): call the status after idle periods; an error means the token.
    connection_test_call = "GET /api/invoice"
    topics = INFO_TOPICS

    # --- connection test and information API (authorities/capabilities.py) ------------------------
    async def test_connection(self, settings: EmecefSettings, connection: Connection) -> ConnectionReport:
        """GET /api/invoice: the token's validity and this e-MCF's pending requests; nothing is sent
        for certification. The token binds an IFU (spec §11): another IFU in the settings would
        have every invoice refused, so it fails the test too."""
        async with EmecefClient(connection, settings.token.get_secret_value()) as client:
            status = await harmless(client.status(), what="GET /api/invoice", waited=connection.timeout)
            facts = client.last_raw if isinstance(client.last_raw, dict) else {}
        if status.ifu and status.ifu != settings.ifu:
            raise ConfigurationError(
                f"{AUTHORITY}: the token belongs to IFU {status.ifu}, but the settings say {settings.ifu}; "
                "every invoice would be refused",
                code=f"settings.invalid.{AUTHORITY}",
                problems=[Problem("ifu", "token_ifu", "must be the token's IFU", expected=status.ifu)],
            )
        valid = status.token_valid.isoformat() if status.token_valid else "unknown"
        summary = (
            f"e-MCF {status.nim or '?'} of IFU {status.ifu or '?'}: token valid until {valid}, "
            f"{status.pending_requests_count} pending request(s)"
        )
        return ConnectionReport(self.connection_test_call, summary, dict(facts))

    async def information(self, topic: Topic, settings: EmecefSettings, connection: Connection) -> Any:
        async with EmecefClient(connection, settings.token.get_secret_value()) as client:
            calls = {
                "status": client.info_status,
                "taxGroups": client.tax_groups,
                "invoiceTypes": client.invoice_types,
                "paymentTypes": client.payment_types,
            }
            await harmless(calls[topic.name](), what=topic.call, waited=connection.timeout)
            return client.last_raw  # as sent (already parsed once, so well-formed), secrets masked

    # --- settings ---------------------------------------------------------------------------------
    def base_url(self, settings: EmecefSettings) -> str:
        s = settings
        defaults = {
            Environment.MOCK: MOCK_URL,
            Environment.SANDBOX: SANDBOX_URL,
            Environment.PRODUCTION: PRODUCTION_URL,
        }
        # The settings validators already refused unsafe overrides (production on a test host...).
        return s.base_url or defaults[s.environment]

    def mock_app(self, settings: EmecefSettings) -> ASGIApp:
        from fiscalgate.authorities.bj_emecef.simulator.app import create_app

        s = settings
        return create_app(Platform(ifu=s.ifu, nim=s.nim, token_secret=MOCK_TOKEN_SECRET, test_mode=True))

    def simulate_command(self) -> click.Command:
        from fiscalgate.authorities.bj_emecef.simulator.cli import simulate_emecef

        return simulate_emecef

    # --- invoices ---------------------------------------------------------------------------------
    def validate(self, invoice: Invoice, settings: EmecefSettings) -> list[Problem]:
        # A credit note's reference may come from the original's Certification given to credit_note().
        return build_request(invoice, settings, require_reference=False)[1]

    def build_payload(self, invoice: Invoice, settings: EmecefSettings) -> dict[str, Any]:
        request, problems = build_request(invoice, settings, require_reference=False)
        if problems or request is None:
            raise InvoiceError(problems)
        return request.wire()

    def _request(
        self, invoice: Invoice, settings: EmecefSettings, original: Certification | None
    ) -> InvoiceRequestDataDto:
        request, problems = build_request(invoice, settings, original)
        if problems or request is None:
            raise InvoiceError(problems)
        return request

    async def certify(
        self,
        invoice: Invoice,
        settings: EmecefSettings,
        connection: Connection,
        *,
        checkpoint: CheckpointFn | None = None,
    ) -> Certification:
        s = settings
        self.refuse_invalid(invoice, s)
        request = self._request(invoice, s, None)
        return await self._run(invoice, request, s, connection, checkpoint)

    async def credit_note(
        self,
        credit: Invoice,
        original: Certification,
        settings: EmecefSettings,
        connection: Connection,
        *,
        checkpoint: CheckpointFn | None = None,
    ) -> Certification:
        s = settings
        self.refuse_invalid(credit, s)
        request = self._request(credit, s, original)
        if request.type not in CREDIT_TYPES:
            raise InvoiceError(
                [Problem("kind", "emecef.credit_note", "a credit note must be of kind credit_note")]
            )
        return await self._run(credit, request, s, connection, checkpoint)

    async def _run(
        self,
        invoice: Invoice,
        request: InvoiceRequestDataDto,
        settings: EmecefSettings,
        connection: Connection,
        checkpoint: CheckpointFn | None,
    ) -> Certification:
        expected = expected_totals(request)
        secrets = settings.secrets()
        async with EmecefClient(connection, settings.token.get_secret_value()) as client:
            try:
                submitted = await client.submit(request)
            except OutcomeUnknown as exc:
                # No uid is known for THIS attempt. Saying so explicitly matters to callers that merge
                # checkpoints across attempts (the gateway does): a uid left over from an earlier
                # attempt would send reconcile() to that request instead of searching the pending ones.
                exc.checkpoint.update(uid=None, submitted_totals=None)
                raise
            raw_submit = client.last_raw
            uid = str(submitted.uid)
            saved = {"uid": uid, "submitted_totals": _totals_text(submitted.totals())}
            if checkpoint is not None:
                # Persisted before anything can become uncertain: with the uid, reconcile() can find
                # the pending request and confirm or cancel it after a crash.
                await checkpoint(dict(saved))
            mismatches = totals_mismatches(expected, submitted)
            if mismatches:
                await self._cancel_after_mismatch(client, uid, mismatches, raw_submit)
            try:
                security = await client.confirm(uid)
            except OutcomeUnknown as exc:
                # Everything reconcile() needs, even for a caller that passed no checkpoint.
                exc.checkpoint.update(saved)
                raise
            raw_confirm = client.last_raw
        return _with_notices(
            to_certification(
                request=request,
                totals=submitted.totals(),
                uid=uid,
                security=security,
                environment=settings.environment.value,
                credit=request.type in CREDIT_TYPES,
                raw=mask_mapping({"submit": raw_submit, "confirm": raw_confirm}, secrets),
            ),
            invoice,
            request,
            settings,
        )

    @staticmethod
    async def _cancel_after_mismatch(
        client: EmecefClient, uid: str, mismatches: list[Problem], raw_submit: Any
    ) -> None:
        """Never confirm totals we did not compute: cancel, then report every difference."""
        try:
            await client.cancel(uid)
            outcome = "the request was cancelled"
        except AuthorityError as exc:
            # It will expire on its own after 2 minutes; still never confirmed.
            outcome = f"cancelling it failed ({exc.message}); it will expire unconfirmed"
        fields = ", ".join(p.field.removeprefix("totals.") for p in mismatches)
        raise InvoiceRejected(
            f"e-MECeF totals differ from fiscalgate's on {fields}; {outcome}",
            authority=AUTHORITY,
            code="authority.totals_mismatch",
            http_status=200,
            raw={"submit": raw_submit, "uid": uid},
            field="totals",
            problems=mismatches,
        )

    # --- reconciliation ---------------------------------------------------------------------------
    async def reconcile(
        self,
        invoice: Invoice,
        settings: EmecefSettings,
        connection: Connection,
        checkpoint: Mapping[str, Any],
        *,
        original: Certification | None = None,
        decision: Literal["confirm", "cancel"] = "confirm",
    ) -> Reconciliation:
        """With a uid: details -> still pending -> confirm (or cancel); error 20 -> "unknown" (the
        e-MCF cannot tell confirmed from expired, and never returns a finalised invoice again).
        Without one: look for our payload among the pending requests; none -> "not_certified"."""
        s = settings
        request = self._request(invoice, s, original)
        expected = expected_totals(request)
        async with EmecefClient(connection, s.token.get_secret_value()) as client:
            uid = checkpoint.get("uid")
            if not uid:
                status = await client.status()
                uid = None
                for pending in status.pending_requests_list:
                    details = await self._details_or_none(client, pending.uid)
                    if details is not None and details_match(request, details):
                        uid = pending.uid
                        break
                if uid is None:
                    return Reconciliation(
                        "not_certified",
                        detail=f"no pending request of this e-MCF matches the invoice among "
                        f"{len(status.pending_requests_list)}: it expired or never arrived; safe to resubmit",
                    )
            else:
                details = await self._details_or_none(client, str(uid))
                if details is None:
                    return Reconciliation("unknown", detail=_gone(str(uid)))
                if not details_match(request, details):
                    # Never finalise someone else's request: the uid does not hold this invoice.
                    return Reconciliation(
                        "unknown",
                        detail=f"request {uid} is pending but holds a different invoice; left untouched",
                    )
            uid = str(uid)
            submitted = checkpoint.get("submitted_totals")
            totals = {k: Decimal(str(submitted.get(k, 0))) for k in TOTAL_FIELDS} if submitted else expected
            if submitted:
                mismatches = totals_mismatches(expected, InvoiceResponseDataDto.model_validate(submitted))
                if mismatches and decision == "confirm":
                    if not await self._cancelled(client, uid):
                        return Reconciliation("unknown", detail=_gone(uid))
                    fields = ", ".join(p.field for p in mismatches)
                    return Reconciliation(
                        "not_certified", detail=f"totals differed ({fields}); request {uid} cancelled"
                    )
            if decision == "cancel":
                if not await self._cancelled(client, uid):
                    return Reconciliation("unknown", detail=_gone(uid))  # finalised or expired meanwhile
                return Reconciliation("not_certified", detail=f"pending request {uid} cancelled")
            try:
                security = await client.confirm(uid)
            except InvoiceRejected as exc:
                if exc.authority_code != NOT_PENDING:
                    raise
                return Reconciliation("unknown", detail=_gone(uid))  # expired (or finalised) meanwhile
            cert = _with_notices(
                to_certification(
                    request=request,
                    totals=totals,
                    uid=uid,
                    security=security,
                    environment=s.environment.value,
                    credit=request.type in CREDIT_TYPES,
                    raw=mask_mapping({"confirm": client.last_raw}, s.secrets()),
                    totals_source="e-mcf" if submitted else "local",
                ),
                invoice,
                request,
                s,
            )
            return Reconciliation("certified", cert, detail=f"pending request {uid} confirmed")

    @staticmethod
    async def _cancelled(client: EmecefClient, uid: str) -> bool:
        """Cancel a pending request; False when e-MECeF says it is not pending any more (20)."""
        try:
            await client.cancel(uid)
        except InvoiceRejected as exc:
            if exc.authority_code != NOT_PENDING:
                raise
            return False
        return True

    @staticmethod
    async def _details_or_none(client: EmecefClient, uid: str) -> dict[str, Any] | None:
        try:
            details = await client.details(uid)
        except InvoiceRejected as exc:
            if exc.authority_code == NOT_PENDING:
                return None
            raise
        return details.model_dump(by_alias=True)


def _with_notices(
    cert: Certification, invoice: Invoice, request: InvoiceRequestDataDto, settings: EmecefSettings
) -> Certification:
    notices = (
        rounding_notice(invoice, request),
        token_notice(settings.token_expires_at, datetime.now(UTC)),
    )
    cert.notices.extend(n for n in notices if n is not None)
    return cert


def _gone(uid: str) -> str:
    return (
        f"request {uid} is no longer pending (e-MECeF error 20): it was confirmed, cancelled or expired, "
        "and e-MECeF can neither say which nor return a confirmed invoice's security elements again; "
        "check the e-MCF's records in the DGI management interface before resubmitting"
    )


__all__ = ["MOCK_IFU", "MOCK_NIM", "MOCK_TOKEN_SECRET", "EmecefDriver"]
