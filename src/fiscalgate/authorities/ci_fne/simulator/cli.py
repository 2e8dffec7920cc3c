"""`fiscalgate simulate ci-fne`: run the FNE simulator on a socket."""

from __future__ import annotations

import re
from pathlib import Path

import click

from fiscalgate.authorities.ci_fne.simulator.app import (
    DEFAULT_API_KEY,
    DEFAULT_ESTABLISHMENTS,
    DEFAULT_NCC,
    DEFAULT_POINTS_OF_SALE,
    make_simulator,
)
from fiscalgate.simkit.serve import keep_state_in, run_forever, state_option


def _ncc(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not re.fullmatch(r"[0-9]{7}[A-Z]", value):
        raise click.BadParameter("an NCC is 7 digits and one uppercase letter, e.g. 9606123E")
    return value


def _api_key(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # An empty key would let a bare "Authorization: Bearer" in; a space could never arrive in a header.
    if not re.fullmatch(r"[!-~]+", value):
        raise click.BadParameter("the API key must be printable ASCII without spaces, e.g. 32 letters/digits")
    return value


@click.command("ci-fne")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8010, show_default=True, type=int)
@click.option("--ncc", default=DEFAULT_NCC, show_default=True, callback=_ncc, help="The demo taxpayer's NCC.")
@click.option(
    "--api-key",
    default=DEFAULT_API_KEY,
    show_default=True,
    callback=_api_key,
    help="The Bearer key the simulator accepts.",
)
@click.option(
    "--stickers", default=1000, show_default=True, type=click.IntRange(min=0), help="Sticker balance."
)
@click.option(
    "--establishment",
    "establishments",
    multiple=True,
    help=f"An establishment name declared in the space (repeatable; default {DEFAULT_ESTABLISHMENTS[0]!r}).",
)
@click.option(
    "--point-of-sale",
    "points_of_sale",
    multiple=True,
    help=f"A point of sale declared in the space (repeatable; default {DEFAULT_POINTS_OF_SALE[0]!r}).",
)
@click.option(
    "--warning-threshold",
    default=50,
    show_default=True,
    type=click.IntRange(min=0),
    help="`warning` becomes true when fewer stickers than this remain (undocumented; 50 as one SDK assumes).",
)
@state_option
def simulate_fne(
    host: str,
    port: int,
    ncc: str,
    api_key: str,
    stickers: int,
    establishments: tuple[str, ...],
    points_of_sale: tuple[str, ...],
    warning_threshold: int,
    state_file: Path | None,
) -> None:
    """Simulate the Côte d'Ivoire DGI FNE platform: API under http://HOST:PORT/ws, verification
    pages under /fr/verification/<token>, controls under /_sim."""
    app = make_simulator(
        ncc=ncc,
        api_key=api_key,
        establishments=establishments or DEFAULT_ESTABLISHMENTS,
        points_of_sale=points_of_sale or DEFAULT_POINTS_OF_SALE,
        stickers=stickers,
        warning_threshold=warning_threshold,
    )
    base = f"http://{host}:{port}"
    click.echo("FNE simulator (Côte d'Ivoire DGI)")
    click.echo(f"  taxpayer (NCC)   {ncc}")
    click.echo(f"  API key          {api_key}")
    click.echo(f"  establishments   {', '.join(establishments or DEFAULT_ESTABLISHMENTS)}")
    click.echo(f"  points of sale   {', '.join(points_of_sale or DEFAULT_POINTS_OF_SALE)}")
    click.echo(f"  stickers         {stickers} (warning under {warning_threshold})")
    click.echo(f"  base URL         {base}/ws")
    click.echo(f"  verification     {base}/fr/verification/<token>")
    if state_file is not None:
        resumed = keep_state_in(app, state_file)
        click.echo(f"  state file       {state_file} ({'resumed' if resumed else 'new'})")
    run_forever(app, host, port)
