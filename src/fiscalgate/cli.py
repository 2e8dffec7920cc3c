"""The `fiscalgate` command: serve the gateway, run a simulator, certify or reconcile an invoice."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import anyio
import click
import httpx

from fiscalgate import authorities
from fiscalgate.authorities.base import (
    AuthorityDriver,
    AuthoritySettings,
    Connection,
    Environment,
    Reconciliation,
)
from fiscalgate.certify_batch import certify_batch
from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import (
    AuthorityError,
    ConfigurationError,
    GatewayError,
    InvoiceError,
    OutcomeUnknown,
)
from fiscalgate.core.invoice import Invoice, InvoiceKind, parse_invoice
from fiscalgate.printing.cli import print_command
from fiscalgate.tools_cli import COMMANDS as TOOL_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fiscalgate")
def main() -> None:
    """fiscalgate: certify invoices with the tax authorities of francophone Africa, or with their
    built-in simulators (`fiscalgate authorities` lists them)."""


# --- simulate -------------------------------------------------------------------------------------
class _SimulateGroup(click.Group):
    """`fiscalgate simulate <authority>`: each authority brings its own command and flags."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return authorities.codes()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        try:
            driver = authorities.get_driver(cmd_name)
        except ConfigurationError:
            return None
        return driver.simulate_command()


@main.group(cls=_SimulateGroup)
def simulate() -> None:
    """Run an authority's simulator on 127.0.0.1 (`fiscalgate authorities` lists them)."""


def _register_users() -> None:
    from fiscalgate.gateway.console.cli import users

    main.add_command(users)


_register_users()


# --- serve ----------------------------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--database-url",
    envvar="FISCALGATE_DATABASE_URL",
    default=None,
    help="SQLAlchemy URL; default: a SQLite file under ./var/ (env FISCALGATE_DATABASE_URL).",
)
@click.option(
    "--demo/--no-demo",
    default=False,
    help="Create (once) a demo tenant with every authority in mock and print its API key.",
)
@click.option(
    "--workers",
    default=8,
    show_default=True,
    type=click.IntRange(min=0),
    help="Concurrency of the embedded queue worker (0: none; run `fiscalgate worker` processes).",
)
@click.option(
    "--migrate/--no-migrate",
    "run_migrations",
    default=True,
    help="Bring the schema up to date first (--no-migrate: the application role owns nothing).",
)
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Server processes on the one port (each with its own embedded queue worker); use "
    "PostgreSQL for more than one (on SQLite they take turns to write). `mock` simulators live in "
    "each process: keep 1 for mock tenants.",
)
def serve(
    host: str,
    port: int,
    database_url: str | None,
    demo: bool,
    workers: int,
    run_migrations: bool,
    processes: int,
) -> None:
    """Run the gateway's REST API (and, by default, a queue worker inside it)."""
    from fiscalgate.gateway.server import serve as run_gateway

    run_gateway(
        host=host,
        port=port,
        database_url=database_url,
        demo=demo,
        workers=workers,
        run_migrations=run_migrations,
        processes=processes,
    )


# --- worker ---------------------------------------------------------------------------------------
@main.command()
@click.option(
    "--database-url",
    envvar="FISCALGATE_DATABASE_URL",
    default=None,
    help="The gateway's database (PostgreSQL for several processes; env FISCALGATE_DATABASE_URL).",
)
@click.option(
    "--concurrency", default=8, show_default=True, type=click.IntRange(min=1), help="Jobs at a time."
)
@click.option("--poll", default=1.0, show_default=True, type=float, help="Seconds between looks when idle.")
@click.option(
    "--grace", default=30.0, show_default=True, type=float, help="Seconds in-flight jobs get on SIGTERM."
)
def worker(database_url: str | None, concurrency: int, poll: float, grace: float) -> None:
    """Work the certification queue (no HTTP) until SIGTERM / SIGINT, then stop gracefully."""
    from fiscalgate.gateway.queue.process import run_worker

    run_worker(database_url, concurrency, poll=poll, grace=grace)


# --- gateway maintenance (issue 14) ----------------------------------------------------------------
_DATABASE_OPTION = click.option(
    "--database-url",
    envvar="FISCALGATE_DATABASE_URL",
    default=None,
    help="SQLAlchemy URL; default: a SQLite file under ./var/ (env FISCALGATE_DATABASE_URL).",
)


@main.command("rotate-keys")
@_DATABASE_OPTION
def rotate_keys(database_url: str | None) -> None:
    """Re-encrypt every stored secret with the first key of FISCALGATE_SECRET_KEY (new,old)."""
    from fiscalgate.gateway.crypto import KEY_ENV, SecretBox, rotate_stored_secrets, split_keys
    from fiscalgate.gateway.db import DEFAULT_DATABASE_URL

    keys = os.environ.get(KEY_ENV) or (Path("var") / "secret.key").read_text()
    counts = rotate_stored_secrets(database_url or DEFAULT_DATABASE_URL, SecretBox(keys))
    click.echo(
        f"re-encrypted with the first of {len(split_keys(keys))} key(s): "
        + ", ".join(f"{n} in {table}" for table, n in counts.items())
        + "; the older keys can now be removed"
    )


@main.command("verify")
@_DATABASE_OPTION
def verify_chain(database_url: str | None) -> None:
    """Check every tenant's certified invoices against their hash chain (exit code 1 if broken)."""
    from fiscalgate.gateway.chain import verify
    from fiscalgate.gateway.db import DEFAULT_DATABASE_URL, make_engine

    engine = make_engine(database_url or DEFAULT_DATABASE_URL)
    try:
        with engine.connect() as connection:
            reports = verify(connection)
    finally:
        engine.dispose()
    broken = False
    for report in reports:
        if report.problems:
            broken = True
            click.echo(f"{report.tenant_id}: {len(report.problems)} problem(s)")
            for problem in report.problems:
                click.echo(f"  - {problem}")
        else:
            click.echo(
                f"{report.tenant_id}: {report.links} certified invoices, chain intact (head {report.head})"
            )
    if not reports:
        click.echo("no certified invoice yet")
    sys.exit(1 if broken else 0)


@main.command("migrate")
@_DATABASE_OPTION
def migrate_database(database_url: str | None) -> None:
    """Bring the database schema up to date (run it as the owner role; see the README)."""
    from fiscalgate.gateway.db import DEFAULT_DATABASE_URL, migrate

    migrate(database_url or DEFAULT_DATABASE_URL)
    click.echo("database schema up to date")


# --- certify --------------------------------------------------------------------------------------
def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.UsageError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"the {what} {path} is not valid JSON: {exc}") from None


def _settings(
    driver: AuthorityDriver, environment: str, url: str | None, file: Path | None, pairs: tuple[str, ...]
) -> AuthoritySettings:
    data: dict[str, Any] = {}
    if environment == Environment.MOCK:
        data.update(driver.mock_credentials())
    if file is not None:
        loaded = _read_json(file, "settings file")
        if not isinstance(loaded, dict):
            raise click.UsageError("the settings file must hold a JSON object")
        data.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.UsageError(f"--set takes key=value, got {pair!r}")
        data[key.strip()] = value
    data["environment"] = environment
    if url:
        data["base_url"] = url
    settings: AuthoritySettings = driver.parse_settings(data)
    return settings


def _connection(driver: AuthorityDriver, settings: AuthoritySettings) -> Connection:
    transport: httpx.AsyncBaseTransport | None = None
    if settings.environment == Environment.MOCK and not settings.base_url:
        transport = httpx.ASGITransport(app=driver.mock_app(settings))
    return Connection(
        base_url=driver.base_url(settings),
        environment=settings.environment,
        transport=transport,
        timeout=settings.timeout_seconds,
    )


def _print_problems(title: str, problems: list[Any]) -> None:
    click.secho(title, fg="red", err=True)
    for p in problems:
        click.echo(f"  - {p.field}: {p.message} [{p.rule}]", err=True)


def _print_certification(cert: Certification) -> None:
    click.secho(f"certified by {cert.authority} ({cert.environment})", fg="green")
    click.echo(f"  reference        {cert.reference}")
    if cert.verification_url:
        click.echo(f"  verification     {cert.verification_url}")
    if cert.qr_content:
        click.echo(f"  QR content       {cert.qr_content}")
    if cert.qr_image:
        click.echo(f"  QR image         {cert.qr_image[:40]}… ({len(cert.qr_image)} characters)")
    click.echo(f"  certified at     {cert.certified_at.isoformat()}")
    if cert.counters:
        click.echo(f"  counters         {cert.counters}")
    if cert.sticker_balance is not None:
        click.echo(f"  sticker balance  {cert.sticker_balance}")
    width = max([16, *(len(key) for key in cert.totals)])
    for key, value in cert.totals.items():
        click.echo(f"  {key:<{width}} {value}")
    for notice in cert.notices:
        if notice.severity == "warning":
            click.secho(f"  warning: {notice.message}", fg="yellow")
        else:
            click.echo(f"  note: {notice.message}")


_AUTHORITY_OPTIONS = [
    click.argument("invoice_file", type=click.Path(path_type=Path, dir_okay=False)),
    click.option(
        "-a",
        "--authority",
        required=True,
        help="An authority code or module (`fiscalgate authorities` lists them).",
    ),
    click.option(
        "-e",
        "--environment",
        type=click.Choice([e.value for e in Environment]),
        default="mock",
        show_default=True,
    ),
    click.option(
        "--url",
        default=None,
        help="Base URL to call instead of the environment's default "
        "(e.g. a simulator started with `fiscalgate simulate`).",
    ),
    click.option(
        "--settings",
        "settings_file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="JSON file with the authority settings (credentials...).",
    ),
    click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE", help="One setting (repeatable)."),
    click.option(
        "--original",
        "original_file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="For a credit note: the certification JSON of the original (from --out).",
    ),
    click.option(
        "--out",
        "out_file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Write the certification as JSON here (needed later for credit notes). When the outcome "
        "is unknown, what `reconcile` needs is written to OUT.pending.json instead.",
    ),
]


def _authority_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_AUTHORITY_OPTIONS):
        command = option(command)
    return command


def _pending_file(out_file: Path | None) -> Path | None:
    return None if out_file is None else out_file.with_name(out_file.name + ".pending.json")


@contextmanager
def _reported(
    environment: str, url: str | None, original_file: Path | None, out_file: Path | None
) -> Iterator[None]:
    """Turn every fiscalgate error into a readable message and an exit code (2: fix the input or
    settings, 3: the authority refused or failed, 4: outcome unknown, reconcile)."""
    try:
        yield
    except InvoiceError as exc:
        _print_problems(f"the invoice is invalid ({len(exc.problems)} problem(s)):", exc.problems)
        sys.exit(2)
    except ConfigurationError as exc:
        if exc.problems:
            _print_problems(f"configuration error: {exc.message}", exc.problems)
        else:
            click.secho(f"configuration error: {exc.message}", fg="red", err=True)
        sys.exit(2)
    except AuthorityError as exc:
        click.secho(f"{type(exc).__name__}: {exc.message}", fg="red", err=True)
        if exc.authority_code or exc.authority_message:
            click.echo(f"  authority says: [{exc.authority_code}] {exc.authority_message}", err=True)
        for p in exc.problems:
            click.echo(f"  - {p.field}: {p.message}", err=True)
        click.echo(f"  what to do: {exc.resolution.value}", err=True)
        if isinstance(exc, OutcomeUnknown):
            checkpoint = json.dumps(exc.checkpoint, ensure_ascii=False, default=str)
            click.echo(f"  checkpoint: {checkpoint}", err=True)
            pending = _pending_file(out_file)
            if pending is not None:
                pending.parent.mkdir(parents=True, exist_ok=True)
                pending.write_text(checkpoint, encoding="utf-8")
                click.echo(
                    f"  written to {pending}; resolve with `fiscalgate reconcile ... --checkpoint {pending}`",
                    err=True,
                )
            else:
                click.echo(
                    "  resolve with `fiscalgate reconcile <same invoice and options> --checkpoint "
                    "'<the JSON above>'`",
                    err=True,
                )
            sys.exit(4)
        if environment == Environment.MOCK and not url and original_file is not None:
            click.echo(
                "  hint: without --url, mock mode starts a fresh in-process simulator that has never seen "
                "the original; run `fiscalgate simulate <authority>` and pass its --url for credit notes",
                err=True,
            )
        sys.exit(3)
    except GatewayError as exc:
        click.secho(f"error: {exc.message}", fg="red", err=True)
        sys.exit(2)


def _load_original(invoice: Invoice, original_file: Path | None) -> Certification | None:
    if invoice.kind is not InvoiceKind.CREDIT_NOTE:
        return None
    if original_file is None:
        raise click.UsageError("a credit note needs --original (the original's certification JSON)")
    return Certification.model_validate(_read_json(original_file, "original certification"))


def _save(cert: Certification, out_file: Path | None) -> None:
    # Write the file first: the invoice is certified now, and a broken stdout (`| head`) must not
    # lose the only record of a number the authority has already used.
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(cert.model_dump_json(indent=2), encoding="utf-8")
    _print_certification(cert)
    if out_file is not None:
        click.echo(f"certification written to {out_file}")


@main.command()
@_authority_options
@click.option("--dry-run", is_flag=True, help="Validate and print the payload; send nothing.")
def certify(
    invoice_file: Path,
    authority: str,
    environment: str,
    url: str | None,
    settings_file: Path | None,
    pairs: tuple[str, ...],
    original_file: Path | None,
    out_file: Path | None,
    dry_run: bool,
) -> None:
    """Certify the neutral invoice in INVOICE_FILE (JSON) with an authority.

    Exit codes: 0 certified, 2 invalid invoice or settings, 3 refused or failed by the authority,
    4 outcome unknown (the authority may have certified it: run `fiscalgate reconcile`)."""
    with _reported(environment, url, original_file, out_file):
        driver = authorities.get_driver(authority)
        settings = _settings(driver, environment, url, settings_file, pairs)
        invoice = parse_invoice(_read_json(invoice_file, "invoice file"))
        problems = driver.validate(invoice, settings)
        if problems:
            raise InvoiceError(problems)
        if dry_run:
            click.echo(
                json.dumps(driver.build_payload(invoice, settings), indent=2, ensure_ascii=False, default=str)
            )
            return
        original = _load_original(invoice, original_file)
        cert = anyio.run(_certify, driver, invoice, settings, original)
        _save(cert, out_file)


@main.command()
@_authority_options
@click.option(
    "--checkpoint",
    "checkpoint_arg",
    required=True,
    help="What the unknown attempt left: the JSON printed by `certify`, or the file it wrote.",
)
@click.option(
    "--decision",
    type=click.Choice(["confirm", "cancel"]),
    default="confirm",
    show_default=True,
    help="For a request still pending at the authority (e-MECeF): confirm it or cancel it.",
)
def reconcile(
    invoice_file: Path,
    authority: str,
    environment: str,
    url: str | None,
    settings_file: Path | None,
    pairs: tuple[str, ...],
    original_file: Path | None,
    out_file: Path | None,
    checkpoint_arg: str,
    decision: str,
) -> None:
    """Find out whether an invoice whose certification ended `unknown` was certified.

    e-MECeF finds the pending request and confirms or cancels it; SFEC looks the invoice up by its
    id; FNE has no look-up (check the portal). Exit codes: 0 certified or definitely not certified
    (safe to certify again), 4 still unknown, 2/3 as for `certify`."""
    with _reported(environment, url, original_file, out_file):
        driver = authorities.get_driver(authority)
        settings = _settings(driver, environment, url, settings_file, pairs)
        invoice = parse_invoice(_read_json(invoice_file, "invoice file"))
        checkpoint_path = Path(checkpoint_arg)
        raw = (
            _read_json(checkpoint_path, "checkpoint file")
            if checkpoint_path.is_file()
            else _parse_checkpoint(checkpoint_arg)
        )
        resolved = raw.get(RESOLVED)
        if isinstance(resolved, dict):
            # Resolved by an earlier run: asking again could only mislead (a confirmed e-MECeF
            # request is no longer pending, which reads as "never certified").
            click.secho(
                f"already resolved on {resolved.get('at')}: {resolved.get('status')} "
                + (f"(reference {resolved['reference']})" if resolved.get("reference") else ""),
                fg="green" if resolved.get("status") == "certified" else "yellow",
            )
            if resolved.get("status") == "not_certified":
                click.echo("  if it has been certified again since, that certification stands")
            return
        original = _load_original(invoice, original_file)
        choice: Literal["confirm", "cancel"] = "cancel" if decision == "cancel" else "confirm"
        outcome = anyio.run(_reconcile, driver, invoice, settings, raw, original, choice)
        if outcome.status in ("certified", "not_certified") and checkpoint_path.is_file():
            reference = outcome.certification.reference if outcome.certification is not None else None
            mark = {"status": outcome.status, "reference": reference, "at": datetime.now(UTC).isoformat()}
            checkpoint_path.write_text(
                json.dumps({**raw, RESOLVED: mark}, ensure_ascii=False, default=str), encoding="utf-8"
            )
        if outcome.status == "certified" and outcome.certification is not None:
            _save(outcome.certification, out_file)
            return
        if outcome.status == "not_certified":
            click.secho(f"not certified: {outcome.detail}", fg="yellow")
            click.echo("  the authority has no trace of it: certifying it again is safe")
            return
        click.secho(f"still unknown: {outcome.detail}", fg="red", err=True)
        sys.exit(4)


# Written into a checkpoint file once `reconcile` has resolved it: {status, reference, at}.
RESOLVED = "resolved"


def _parse_checkpoint(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"--checkpoint is neither a file nor JSON: {exc}") from None
    if not isinstance(value, dict):
        raise click.UsageError("--checkpoint must be a JSON object")
    return value


async def _certify(
    driver: AuthorityDriver, invoice: Invoice, settings: AuthoritySettings, original: Certification | None
) -> Certification:
    connection = _connection(driver, settings)
    if original is not None:
        return await driver.credit_note(invoice, original, settings, connection)
    return await driver.certify(invoice, settings, connection)


async def _reconcile(
    driver: AuthorityDriver,
    invoice: Invoice,
    settings: AuthoritySettings,
    checkpoint: dict[str, Any],
    original: Certification | None,
    decision: Literal["confirm", "cancel"],
) -> Reconciliation:
    connection = _connection(driver, settings)
    return await driver.reconcile(
        invoice, settings, connection, checkpoint, original=original, decision=decision
    )


main.add_command(print_command)
# --- certify-batch (a client of a running gateway; its own module) ----------------------------------
main.add_command(certify_batch)

# --- test-connection, info, report (clients of a running gateway; tools_cli.py) ---------------------
for _command in TOOL_COMMANDS:
    main.add_command(_command)


@main.command("wait-for")
@click.argument("urls", nargs=-1, required=True)
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(min=0), help="Seconds.")
def wait_for(urls: tuple[str, ...], timeout: float) -> None:
    """Return once every URL answers (any HTTP status): a simulator or gateway just started in the
    background is ready. Exit code 1 if one still does not answer after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            try:
                httpx.get(url, timeout=2.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    click.secho(f"{url} does not answer after {timeout:g} s", fg="red", err=True)
                    sys.exit(1)
                time.sleep(0.1)  # a process starting up: nothing to wait on but its socket
        click.echo(f"{url} answers")


@main.command("new-authority")
@click.argument("code")
@click.option("--country", required=True, help="ISO 3166 alpha-2 code of the authority's country (SN...).")
@click.option("--currency", default="XOF", show_default=True, help="The currency invoices are in.")
@click.option(
    "--package-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The fiscalgate/authorities folder to write into (default: this installation's).",
)
@click.option(
    "--tests-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the authority's tests go (default: tests/authorities of this source checkout).",
)
def new_authority(
    code: str, country: str, currency: str, package_dir: Path | None, tests_dir: Path | None
) -> None:
    """Write a new authority folder CODE (e.g. sn-demo) in the house shape, its tests and its
    registry line: a working skeleton, with its own simulator, whose rules are placeholders."""
    from fiscalgate.authorities import scaffold

    default_package, default_tests = scaffold.default_dirs()
    try:
        written = scaffold.generate(
            code,
            country,
            currency=currency,
            package_dir=package_dir or default_package,
            tests_dir=tests_dir or default_tests,
        )
    except scaffold.ScaffoldError as exc:
        raise click.UsageError(str(exc)) from None
    for path in written:
        click.echo(f"  wrote {path}")
    click.secho(
        f"{code.strip().lower()} is registered; next: its README.md, then each placeholder rule", fg="green"
    )


@main.command("authorities")
def list_authorities() -> None:
    """List the authorities fiscalgate knows: code, module, country, name, currencies, and what
    else each offers (connection_test, information, report: see `fiscalgate test-connection`,
    `info`, `report`)."""
    from fiscalgate.authorities.capabilities import capabilities

    for d in authorities.descriptors():
        currencies = ",".join(d.currencies)
        try:
            offers = ", ".join(capabilities(authorities.get_driver(d.code))) or "nothing else"
        except Exception as exc:  # one driver that cannot load must not hide the others
            offers = f"unknown (driver: {type(exc).__name__})"
        named = f"{d.name} ({d.country_name})"
        click.echo(f"{d.code:<10} {d.module:<6} {d.country}  {named}  {currencies}  offers: {offers}")


if __name__ == "__main__":
    main()
