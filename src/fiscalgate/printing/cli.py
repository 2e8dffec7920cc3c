"""`fiscalgate print`: a PDF of an invoice, from a running gateway or offline from files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import httpx
from pydantic import ValidationError

from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import GatewayError
from fiscalgate.core.invoice import Invoice, parse_invoice
from fiscalgate.printing.labels import LANGS
from fiscalgate.printing.logo import LogoProblem, check_logo, logo_from_data_uri
from fiscalgate.printing.render import LAYOUTS, SellerIdentity, render_invoice_pdf

URL_ENV, KEY_ENV = "FISCALGATE_URL", "FISCALGATE_API_KEY"
PROFILE_FIELDS = ("name", "tax_id", "rccm", "address", "phone", "email")


def _json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.UsageError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"the {what} {path} is not valid JSON: {exc}") from None


def _invoice(path: Path) -> Invoice:
    try:
        return parse_invoice(_json(path, "invoice file"))
    except GatewayError as exc:
        raise click.UsageError(f"{path} is not a valid neutral invoice: {exc.message}") from None


def _profile(path: Path | None) -> SellerIdentity | None:
    if path is None:
        return None
    data = _json(path, "profile file")
    if not isinstance(data, dict):
        raise click.UsageError("the profile file must hold a JSON object")
    unknown = sorted(set(data) - {*PROFILE_FIELDS, "logo"})
    if unknown:
        raise click.UsageError(f"unknown profile field(s): {', '.join(unknown)}")
    logo = None
    if data.get("logo"):
        # A data URI, or a path relative to the profile file.
        value = str(data["logo"])
        try:
            if value.startswith("data:"):
                logo = logo_from_data_uri(value)[0]
            else:
                logo_path = (path.parent / value).resolve()
                try:
                    logo = logo_path.read_bytes()
                except OSError as exc:
                    raise click.UsageError(f"cannot read the logo {logo_path}: {exc.strerror}") from None
                check_logo(logo)
        except LogoProblem as exc:
            raise click.UsageError(f"the profile's logo: {exc.message}") from None
    return SellerIdentity(**{k: data.get(k) or None for k in PROFILE_FIELDS}, logo=logo)


def _offline(
    target: Path,
    invoice_file: Path | None,
    authority: str | None,
    profile: SellerIdentity | None,
    layout: str,
    lang: str,
    duplicate: bool,
) -> bytes:
    data = _json(target, "file")
    cert: Certification | None = None
    if isinstance(data, dict) and "reference" in data and "authority" in data:
        try:
            cert = Certification.model_validate(data)
        except ValidationError as exc:
            raise click.UsageError(
                f"{target} is not a certification file: {exc.errors()[0]['msg']}"
            ) from None
        if invoice_file is None:
            raise click.UsageError("a certification file needs --invoice (the neutral invoice it certified)")
        invoice = _invoice(invoice_file)
    else:
        # An invoice on its own: a pro forma.
        if invoice_file is not None:
            raise click.UsageError(
                f"{target} is not a certification; to print a pro forma, give only the invoice"
            )
        if not authority:
            raise click.UsageError("a pro forma needs --authority (whose tax codes its lines show)")
        invoice = _invoice(target)
    try:
        return render_invoice_pdf(
            invoice,
            cert,
            authority=authority,
            seller=profile,
            layout=layout,  # type: ignore[arg-type]
            lang=lang,  # type: ignore[arg-type]
            duplicate=duplicate,
        )
    except (ValueError, GatewayError) as exc:
        raise click.UsageError(str(getattr(exc, "message", exc))) from None


def _online(invoice_id: str, url: str | None, key: str | None, layout: str, lang: str) -> bytes:
    if not url or not key:
        raise click.UsageError(
            f"{invoice_id} is not a file: to fetch it from a gateway give --url and --key "
            f"(or set {URL_ENV} and {KEY_ENV})"
        )
    try:
        r = httpx.get(
            f"{url.rstrip('/')}/v1/invoices/{invoice_id}/pdf",
            params={"layout": layout, "lang": lang},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        click.secho(f"error: cannot reach the gateway at {url}: {exc}", fg="red", err=True)
        sys.exit(3)
    if r.status_code != 200:
        try:
            body = r.json()
            message = f"{body.get('code')}: {body.get('message')}"
        except ValueError:
            message = r.text[:200]
        click.secho(f"error: the gateway answered {r.status_code} ({message})", fg="red", err=True)
        sys.exit(3)
    return r.content


@click.command("print")
@click.argument("target")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--layout", type=click.Choice(LAYOUTS), default="a4", show_default=True)
@click.option("--lang", type=click.Choice(LANGS), default="fr", show_default=True)
@click.option(
    "--invoice",
    "invoice_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Offline: the invoice JSON",
)
@click.option("-a", "--authority", help="Offline pro forma: the authority whose tax codes the lines show")
@click.option(
    "--profile",
    "profile_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Offline: the seller's profile JSON (name, tax_id, rccm, address, phone, email, logo)",
)
@click.option("--duplicate", is_flag=True, help="Offline: mark the print DUPLICATA (a reprint)")
@click.option("--url", envvar=URL_ENV, help=f"Gateway URL (or {URL_ENV})")
@click.option("--key", envvar=KEY_ENV, help=f"Tenant API key (or {KEY_ENV})")
def print_command(
    target: str,
    out_file: Path,
    layout: str,
    lang: str,
    invoice_file: Path | None,
    authority: str | None,
    profile_file: Path | None,
    duplicate: bool,
    url: str | None,
    key: str | None,
) -> None:
    """Write the PDF of an invoice to --out.

    TARGET is an invoice id (fetched from the gateway at --url with --key: it records the print
    and marks reprints DUPLICATA), a certification file written by `fiscalgate certify --out`
    (with --invoice, rendered offline), or an invoice file alone (a pro forma, with --authority).

    Exit codes: 0 written, 2 bad input, 3 the gateway refused or could not be reached."""
    path = Path(target)
    if path.is_file():
        pdf = _offline(path, invoice_file, authority, _profile(profile_file), layout, lang, duplicate)
    else:
        pdf = _online(target, url, key, layout, lang)
    out_file.write_bytes(pdf)
    click.echo(f"{out_file} written ({len(pdf)} bytes)")
