"""A small authority of our own, for the gateway's failure paths that the real simulators make
hard to provoke (driver bugs, chosen error kinds). It talks HTTP through `authorities.http.send`
to its own tiny simulator, like a real driver."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

import click
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from fiscalgate.authorities.base import (
    AuthorityDriver,
    AuthoritySettings,
    CheckpointFn,
    Connection,
    Reconciliation,
)
from fiscalgate.authorities.http import json_body, make_client, send
from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import (
    AuthorityAuthError,
    AuthorityServerError,
    InvoiceRejected,
    Problem,
)
from fiscalgate.core.invoice import Invoice


class FakeSettings(AuthoritySettings):
    ncc: str = "FAKE001"
    api_key: SecretStr
    production_url: str | None = Field(default=None, validate_default=True)

    # The settings model owns the checks on settings, as a real authority's does.
    @field_validator("production_url")
    @classmethod
    def _production_needs_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("environment") == "production" and not value:
            raise ValueError("required in production")
        return value


class FakeSimulator:
    """Certifies everything except invoices whose number starts with REJECT; counts calls."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.calls = 0
        self.certified: dict[str, str] = {}
        self.app = Starlette(
            routes=[
                Route("/sign", self.sign, methods=["POST"]),
                Route("/invoices/{number}", self.lookup, methods=["GET"]),
            ]
        )

    async def sign(self, request: Request) -> JSONResponse:
        self.calls += 1
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"message": "Clé API invalide"}, status_code=401)
        body = await request.json()
        number = body["number"]
        if number.startswith("REJECT"):
            return JSONResponse({"code": "E42", "message": "Facture refusée"}, status_code=400)
        if number in self.certified:
            return JSONResponse({"message": "déjà certifiée"}, status_code=409)
        reference = f"REF{len(self.certified) + 1:06d}"
        self.certified[number] = reference
        return JSONResponse({"reference": reference, "total": body["total"]})

    async def lookup(self, request: Request) -> JSONResponse:
        number = request.path_params["number"]
        if number not in self.certified:
            return JSONResponse({"message": "inconnue"}, status_code=404)
        return JSONResponse({"reference": self.certified[number]})


class FakeDriver(AuthorityDriver):
    module: ClassVar[str] = "fne"
    country: ClassVar[str] = "CI"
    display_name: ClassVar[str] = "Fake authority"
    currencies: ClassVar[tuple[str, ...]] = ("XOF",)
    settings_model: ClassVar[type[AuthoritySettings]] = FakeSettings

    def __init__(self, code: str = "ci-fne") -> None:
        self.code = code  # type: ignore[misc]
        self.simulators: list[FakeSimulator] = []
        self.explode: BaseException | None = None  # raised inside certify, after sending

    def base_url(self, settings: AuthoritySettings) -> str:
        assert isinstance(settings, FakeSettings)
        return settings.base_url or settings.production_url or "http://fake.mock"

    def mock_credentials(self, **hints: str) -> dict[str, Any]:
        return {"ncc": "FAKE001", "api_key": "fake-secret-key-0123456789"}

    def validate(self, invoice: Invoice, settings: AuthoritySettings) -> list[Problem]:
        if invoice.buyer.name == "INVALID":
            return [Problem("buyer.name", "fake_rule", "this buyer is refused by the fake authority")]
        return []

    def build_payload(self, invoice: Invoice, settings: AuthoritySettings) -> dict[str, Any]:
        total = sum((line.gross for line in invoice.lines), Decimal(0))
        return {"number": invoice.number, "total": str(total), "kind": invoice.kind.value}

    async def _sign(
        self,
        invoice: Invoice,
        settings: AuthoritySettings,
        connection: Connection,
        checkpoint: CheckpointFn | None,
    ) -> Certification:
        assert isinstance(settings, FakeSettings)
        if checkpoint is not None:
            await checkpoint({"number": invoice.number})
        headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
        async with make_client(connection, headers) as client:
            response = await send(
                client,
                "POST",
                "/sign",
                authority=self.code,
                json=self.build_payload(invoice, settings),
                checkpoint={"number": invoice.number},
            )
        body = json_body(response)
        if self.explode is not None:
            raise self.explode
        common = {"authority": self.code, "http_status": response.status_code, "raw": body}
        if response.status_code == 401:
            raise AuthorityAuthError("bad key", authority_message=body.get("message"), **common)
        if response.status_code == 400:
            raise InvoiceRejected(
                "refused", authority_code=body.get("code"), authority_message=body.get("message"), **common
            )
        if response.status_code >= 500:
            raise AuthorityServerError("server error", **common)
        return Certification(
            authority=self.code,
            environment=settings.environment.value,
            kind=invoice.kind,
            reference=body["reference"],
            qr_content=f"https://verify.fake/{body['reference']}",
            certified_at=datetime.now(UTC),
            totals={
                "total_excl_tax": Decimal(body["total"]),
                "total_tax": Decimal(0),
                "total": Decimal(body["total"]),
            },
            authority_data={"number": invoice.number},
            raw={"sign": body},
        )

    async def certify(
        self,
        invoice: Invoice,
        settings: AuthoritySettings,
        connection: Connection,
        *,
        checkpoint: CheckpointFn | None = None,
    ) -> Certification:
        self.refuse_invalid(invoice, settings)  # like a real driver: it owns validation
        return await self._sign(invoice, settings, connection, checkpoint)

    async def credit_note(
        self,
        credit: Invoice,
        original: Certification,
        settings: AuthoritySettings,
        connection: Connection,
        *,
        checkpoint: CheckpointFn | None = None,
    ) -> Certification:
        self.refuse_invalid(credit, settings)
        return await self._sign(credit, settings, connection, checkpoint)

    async def reconcile(
        self,
        invoice: Invoice,
        settings: AuthoritySettings,
        connection: Connection,
        checkpoint: Mapping[str, Any],
        *,
        original: Certification | None = None,
        decision: Literal["confirm", "cancel"] = "confirm",
    ) -> Reconciliation:
        assert isinstance(settings, FakeSettings)
        headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
        async with make_client(connection, headers) as client:
            response = await send(client, "GET", f"/invoices/{checkpoint['number']}", authority=self.code)
        if response.status_code == 404:
            return Reconciliation(status="not_certified", detail="unknown to the fake authority")
        reference = json_body(response)["reference"]
        cert = Certification(
            authority=self.code,
            environment=settings.environment.value,
            reference=reference,
            qr_content=f"https://verify.fake/{reference}",
            certified_at=datetime.now(UTC),
            totals={"total_excl_tax": Decimal(0), "total_tax": Decimal(0), "total": Decimal(0)},
        )
        return Reconciliation(status="certified", certification=cert, detail="found by number")

    def mock_app(self, settings: AuthoritySettings) -> ASGIApp:
        assert isinstance(settings, FakeSettings)
        sim = FakeSimulator(settings.api_key.get_secret_value())
        self.simulators.append(sim)
        return sim.app

    def simulate_command(self) -> click.Command:
        return click.Command("fake")
