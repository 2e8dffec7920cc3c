"""The FNE driver: the composition of settings, convert, client and simulator (settings.py holds
the settings model and its URL safety checks)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from fiscalgate.authorities.base import (
    CheckpointFn,
    Connection,
    Driver,
    Environment,
    Reconciliation,
)
from fiscalgate.authorities.ci_fne import convert, regime
from fiscalgate.authorities.ci_fne.client import FneClient
from fiscalgate.authorities.ci_fne.descriptor import DESCRIPTOR
from fiscalgate.authorities.ci_fne.settings import FneSettings
from fiscalgate.authorities.ci_fne.totals import totals_of_request
from fiscalgate.authorities.descriptor import AuthorityDescriptor
from fiscalgate.core.certification import Certification, Notice
from fiscalgate.core.errors import ConfigurationError, InvoiceError, Problem
from fiscalgate.core.invoice import Invoice, InvoiceKind

if TYPE_CHECKING:
    import click
    from starlette.types import ASGIApp


class FneDriver(Driver[FneSettings]):
    descriptor: ClassVar[AuthorityDescriptor] = DESCRIPTOR
    settings_model = FneSettings

    # --- settings ---------------------------------------------------------------------------------
    def base_url(self, settings: FneSettings) -> str:
        s = settings
        if s.environment == Environment.PRODUCTION:
            # Validators guarantee production_url is set and safe; base_url, if any, is checked alike.
            url = s.base_url or s.production_url
            if url is None:  # pragma: no cover - prevented by the validator
                raise ConfigurationError("production needs production_url", code="settings.invalid.ci-fne")
            return url
        if s.base_url:
            return s.base_url
        return regime.SANDBOX_BASE_URL if s.environment == Environment.SANDBOX else regime.MOCK_BASE_URL

    # --- invoices ---------------------------------------------------------------------------------
    def validate(self, invoice: Invoice, settings: FneSettings) -> list[Problem]:
        s = settings
        problems = convert.validate(invoice, point_of_sale=s.point_of_sale, establishment=s.establishment)
        return self._seller_problems(invoice, s) + problems

    @staticmethod
    def _seller_problems(invoice: Invoice, settings: FneSettings) -> list[Problem]:
        seller_ncc = (invoice.seller.tax_id or "").strip().upper()
        if not seller_ncc or seller_ncc == settings.ncc:
            return []
        # FNE signs under the NCC the API key belongs to (spec §3, §8.1 `ncc`), whatever the invoice
        # says: another company's invoice would be numbered in this taxpayer's series.
        return [
            Problem(
                "seller.tax_id",
                "seller_mismatch",
                f"the invoice's seller NCC {seller_ncc} is not the NCC of these FNE settings "
                f"({settings.ncc})",
                expected=settings.ncc,
            )
        ]

    def _sign_problems(self, invoice: Invoice, settings: FneSettings) -> list[Problem]:
        """What stops `invoice` from going to the sign endpoint."""
        if invoice.kind is InvoiceKind.CREDIT_NOTE:
            # A credit note is a refund of the original's item ids (spec §7): it needs the original's
            # certification, which only credit_note() receives.
            return [
                Problem(
                    "kind",
                    "credit_note_needs_original",
                    "an FNE credit note is a refund of a certified invoice: send it with credit_note() "
                    "and the original's certification (CLI: --original CERT.json)",
                )
            ]
        return self.validate(invoice, settings)

    def build_payload(self, invoice: Invoice, settings: FneSettings) -> dict[str, Any]:
        s = settings
        problems = self._sign_problems(invoice, s)
        if problems:
            raise InvoiceError(problems)
        request = convert.build_sign_request(
            invoice, point_of_sale=s.point_of_sale, establishment=s.establishment
        )
        return request.wire()

    async def certify(
        self,
        invoice: Invoice,
        settings: FneSettings,
        connection: Connection,
        *,
        checkpoint: CheckpointFn | None = None,
    ) -> Certification:
        s = settings
        problems = self._sign_problems(invoice, s)
        if problems:
            raise InvoiceError(problems)
        request = convert.build_sign_request(
            invoice, point_of_sale=s.point_of_sale, establishment=s.establishment
        )
        expected = totals_of_request(request)
        # FNE has no look-up API: what helps find the invoice in the portal if the answer is lost.
        marker = {
            "authority": self.code,
            "operation": "sign",
            "invoice_number": invoice.number,
            "ncc": s.ncc,
            "client": request.client_company_name,
            "total_incl_vat": str(expected.total_incl_vat),
            "sent_at": datetime.now(UTC).isoformat(),
        }
        if checkpoint is not None:
            await checkpoint(marker)
        client = FneClient(connection, s.api_key.get_secret_value())
        response, raw = await client.sign(request, checkpoint=marker)
        cert = convert.certification_from_sign(
            response,
            request,
            raw=raw,
            environment=connection.environment.value,
            warning_threshold=s.sticker_warning_threshold,
        )
        if response.ncc != s.ncc:
            # The key decides the taxpayer (spec §3): the invoice IS certified, but in another series.
            cert.notices.append(
                Notice(
                    code="fne.ncc_differs",
                    message=f"FNE certified this invoice for NCC {response.ncc}, not {s.ncc} as the settings "
                    "say: the API key belongs to another taxpayer; fix the settings before the next invoice",
                )
            )
        return cert

    async def credit_note(
        self,
        credit: Invoice,
        original: Certification,
        settings: FneSettings,
        connection: Connection,
        *,
        checkpoint: CheckpointFn | None = None,
    ) -> Certification:
        s = settings
        self.refuse_invalid(credit, s)
        plan, problems = convert.plan_refund(credit, original)
        problems = self._seller_problems(credit, s) + problems
        # The original's ids only exist on the platform (and in the account) that certified it.
        if original.environment != connection.environment.value:
            problems.append(
                Problem(
                    "original",
                    "environment",
                    f"the original was certified in {original.environment}, this credit note would go to "
                    f"{connection.environment.value}",
                    expected=connection.environment.value,
                )
            )
        original_ncc = original.authority_data.get("ncc")
        if isinstance(original_ncc, str) and original_ncc != s.ncc:
            problems.append(
                Problem(
                    "original",
                    "ncc",
                    f"the original was certified for NCC {original_ncc}, these settings are for {s.ncc}",
                    expected=s.ncc,
                )
            )
        if plan is None or problems:
            raise InvoiceError(problems)
        invoice_id = str(original.authority_data["invoice_id"])
        marker = {
            "authority": self.code,
            "operation": "refund",
            "invoice_number": credit.number,
            "original_reference": original.reference,
            "original_invoice_id": invoice_id,
            "items": [{"id": it.id, "quantity": str(it.quantity)} for it in plan.request.items],
            "sent_at": datetime.now(UTC).isoformat(),
        }
        if checkpoint is not None:
            await checkpoint(marker)
        client = FneClient(connection, s.api_key.get_secret_value())
        response, raw = await client.refund(invoice_id, plan.request, checkpoint=marker)
        return convert.certification_from_refund(
            response,
            plan,
            original,
            raw=raw,
            environment=connection.environment.value,
            warning_threshold=s.sticker_warning_threshold,
        )

    async def reconcile(
        self,
        invoice: Invoice,
        settings: FneSettings,
        connection: Connection,
        checkpoint: Mapping[str, Any],
        *,
        original: Certification | None = None,
        decision: Literal["confirm", "cancel"] = "confirm",
    ) -> Reconciliation:
        # FNE documents no status or search endpoint (spec §4, §12): only a person can look.
        sent = checkpoint.get("sent_at", "unknown time")
        what = "credit note" if checkpoint.get("operation") == "refund" else "invoice"
        return Reconciliation(
            status="unknown",
            detail=(
                f"FNE has no look-up API. Open the FNE portal ({checkpoint.get('ncc') or 'your space'}), "
                f"find the {what} {invoice.number} sent at {sent}: if it is certified, record its reference "
                "by hand; if it is absent or only a draft, declare it not certified, then resend. "
                "Never resend before checking: a second sign burns another number."
            ),
        )

    # --- simulator --------------------------------------------------------------------------------
    def mock_app(self, settings: FneSettings) -> ASGIApp:
        from fiscalgate.authorities.ci_fne.simulator.app import make_simulator

        s = settings
        return make_simulator(
            ncc=s.ncc,
            api_key=s.api_key.get_secret_value(),
            establishments=[s.establishment],
            points_of_sale=[s.point_of_sale],
            warning_threshold=s.sticker_warning_threshold,
        )

    def simulate_command(self) -> click.Command:
        from fiscalgate.authorities.ci_fne.simulator.cli import simulate_fne

        return simulate_fne
