"""`fiscalgate simulate bj-emecef`: run the e-MCF simulator on a port and print a valid token."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from fiscalgate.authorities.bj_emecef.simulator.app import create_app
from fiscalgate.authorities.bj_emecef.simulator.state import (
    DEFAULT_IFU,
    DEFAULT_NIM,
    DEFAULT_TOKEN_SECRET,
    Platform,
    mint_token,
)
from fiscalgate.simkit.serve import keep_state_in, run_forever, state_option


@click.command("bj-emecef")
@click.option("--port", type=int, default=8088, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--ifu", default=DEFAULT_IFU, show_default=True, help="The taxpayer's IFU (13 digits).")
@click.option("--nim", default=DEFAULT_NIM, show_default=True, help="The e-MCF's NIM (TS… for a test one).")
@click.option(
    "--token-secret",
    default=DEFAULT_TOKEN_SECRET,
    show_default=True,
    help="HS256 secret the tokens are signed with (the default is fiscalgate's mock secret).",
)
@click.option(
    "--pending-ttl", type=float, default=120.0, show_default=True, help="Seconds a request stays pending."
)
@click.option(
    "--test-mode/--production-mode",
    default=True,
    show_default=True,
    help="Test mode: codes MECeF/DGI start with TEST, like the DGI test platform's.",
)
@click.option("--seed", type=int, default=None, help="Seed for uids and codes (reproducible runs).")
@state_option
def simulate_emecef(
    port: int,
    host: str,
    ifu: str,
    nim: str,
    token_secret: str,
    pending_ttl: float,
    test_mode: bool,
    seed: int | None,
    state_file: Path | None,
) -> None:
    """Simulate the DGI Bénin e-MCF API (e-MECeF) at http://HOST:PORT/api/..."""
    if len(ifu) != 13 or not ifu.isdigit():
        raise click.BadParameter("an IFU has 13 digits", param_hint="--ifu")
    if len(nim) != 10 or not nim[:2].isalpha() or not nim[2:].isdigit():
        raise click.BadParameter("a NIM is two letters and eight digits, e.g. TS01000001", param_hint="--nim")
    platform = Platform(
        ifu=ifu,
        nim=nim.upper(),
        token_secret=token_secret,
        test_mode=test_mode,
        pending_ttl=timedelta(seconds=pending_ttl),
        seed=seed,
    )
    token = mint_token(ifu, nim.upper(), token_secret)
    click.echo(
        f"e-MCF simulator for IFU {ifu}, NIM {nim.upper()} ({'test' if test_mode else 'production'} mode)"
    )
    click.echo(f"base URL: http://{host}:{port}")
    click.echo(f"token:    {token}")
    click.echo(
        f"certify:  fiscalgate certify INVOICE.json -a bj-emecef --url http://{host}:{port} "
        f"--set ifu={ifu} --set token=<token>"
    )
    app = create_app(platform)
    if state_file is not None:
        resumed = keep_state_in(app, state_file)
        click.echo(f"state:    {state_file} ({'resumed' if resumed else 'new'})")
    run_forever(app, host, port)
