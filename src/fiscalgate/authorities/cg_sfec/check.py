"""Check an SFEC payload built anywhere (an ERP export, the seed's example...) with the local
validator, and optionally send it, which the client refuses to do while anything is wrong.

    python -m fiscalgate.authorities.cg_sfec.check PAYLOAD.json
    python -m fiscalgate.authorities.cg_sfec.check PAYLOAD.json --url http://127.0.0.1:8083 --api-key KEY

Exit codes: 0 valid (and certified, with --url), 2 problems found (nothing sent), 3 the platform
refused or failed.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import anyio
import click
from pydantic import SecretStr, ValidationError

from fiscalgate.authorities.base import Connection, Environment
from fiscalgate.authorities.cg_sfec.client import SfecClient
from fiscalgate.authorities.cg_sfec.convert import payload_problems
from fiscalgate.authorities.cg_sfec.schemas import CertifyRequest, ReportRequest
from fiscalgate.authorities.cg_sfec.settings import SfecSettings
from fiscalgate.core.errors import GatewayError, InvoiceError, Problem
from fiscalgate.core.invoice import problems_from_validation_error


def request_model(payload: dict[str, Any]) -> type[CertifyRequest]:
    """A payload carrying the certification fields is a report request (the online-report page)."""
    return ReportRequest if "certification_signature" in payload else CertifyRequest


def problems_of(payload: dict[str, Any], paid: Decimal | None = None) -> list[Problem]:
    return payload_problems(payload, paid=paid, model=request_model(payload))


def _show(problems: list[Problem]) -> str:
    lines = [f"{len(problems)} problem(s), nothing was sent:"]
    for p in problems:
        expected = f"  [expected {p.expected}]" if p.expected is not None else ""
        lines.append(f"  - {p.field}: {p.message}{expected}")
    return "\n".join(lines)


async def _send(payload: dict[str, Any], settings: SfecSettings, url: str) -> dict[str, Any]:
    connection = Connection(url, settings.environment, timeout=settings.timeout_seconds)
    async with SfecClient(settings, connection) as client:
        if request_model(payload) is ReportRequest:
            answer, _ = await client.report(payload)
        else:
            answer, _ = await client.certify(payload)
    return answer.model_dump(exclude_none=True)


@click.command("cg-sfec-check")
@click.argument("payload_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--paid", type=str, default=None, help="Amount already paid, to check amount_due exactly.")
@click.option("--url", default=None, help="Send it to this SFEC (or simulator) base URL when it is valid.")
@click.option("--api-key", default=None, help="The X-API-Key to send with --url.")
@click.option("--path-prefix", default="/api", show_default=True)
@click.option(
    "--environment",
    type=click.Choice([e.value for e in Environment]),
    default=Environment.MOCK.value,
    show_default=True,
    help="What --url is (the usual host checks apply: no test payload to the production host).",
)
def command(
    payload_file: Path,
    paid: str | None,
    url: str | None,
    api_key: str | None,
    path_prefix: str,
    environment: str,
) -> None:
    """List every problem of an SFEC certify or report payload; with --url, send it if valid."""
    payload = json.loads(payload_file.read_text(encoding="utf-8"))
    if not isinstance(payload, dict):
        raise click.UsageError("the file must hold one JSON object")
    try:
        paid_amount = Decimal(paid) if paid is not None else None
    except InvalidOperation:
        raise click.BadParameter(f"{paid!r} is not an amount", param_hint="--paid") from None
    problems = problems_of(payload, paid_amount)
    if url is None:
        if problems:
            click.echo(_show(problems))
            raise SystemExit(2)
        click.echo("no problem found")
        return
    if not api_key:
        raise click.UsageError("--url needs --api-key")
    try:
        settings = SfecSettings(
            environment=Environment(environment),
            base_url=url,
            niu=str(payload.get("taxpayer_niu") or "X00000000"),
            api_key=SecretStr(api_key),
            sciet=str(payload.get("sciet") or "-"),
            terminal_identifier=str(payload.get("terminal_identifier") or "-"),
            path_prefix=path_prefix,
        )
    except ValidationError as exc:
        click.echo(_show(problems_from_validation_error(exc)).replace("nothing was sent", "settings refused"))
        raise SystemExit(2) from None
    try:
        answer = anyio.run(_send, payload, settings, url)
    except InvoiceError as exc:  # the client's own check, before any network
        click.echo(_show(exc.problems))
        raise SystemExit(2) from None
    except GatewayError as exc:
        click.echo(f"{type(exc).__name__}: {exc.message}")
        raise SystemExit(3) from None
    click.echo(json.dumps(answer, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    command()
