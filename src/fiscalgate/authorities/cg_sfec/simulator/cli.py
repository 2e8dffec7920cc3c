"""`fiscalgate simulate cg-sfec`: serve the SFEC simulator on a socket."""

from __future__ import annotations

from pathlib import Path

import click

from fiscalgate.authorities.cg_sfec.simulator.app import create_app
from fiscalgate.simkit.serve import keep_state_in, run_forever, state_option

# The same demo credentials the driver's `mock_credentials` gives (kept apart on purpose: the
# simulator imports nothing from the client side).
DEFAULT_NIU = "M2400000000001A"
DEFAULT_API_KEY = "sk_mock_cg_sfec_0123456789"


@click.command("cg-sfec")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8083, show_default=True, type=int)
@click.option(
    "--niu", default=DEFAULT_NIU, show_default=True, help="The taxpayer NIU the API key belongs to."
)
@click.option(
    "--api-key", default=DEFAULT_API_KEY, show_default=True, help="The X-API-Key the simulator accepts."
)
@state_option
def command(host: str, port: int, niu: str, api_key: str, state_file: Path | None) -> None:
    """Run the Congo SFEC simulator: certification (/api/invoices/certify, /api/v1/invoices),
    report (/api/invoices/report/api), look-up (/api/invoices/{id}) and list (/api/invoices),
    with fault injection at /_sim/faults."""
    app = create_app(niu=niu, api_key=api_key)
    click.echo("SFEC simulator (Congo)")
    click.echo(f"  taxpayer (NIU)   {niu.upper()}")
    click.echo(f"  API key          {api_key}   (send it as X-API-Key)")
    click.echo(f"  base URL         http://{host}:{port}   (--url; the API is under /api)")
    if state_file is not None:
        resumed = keep_state_in(app, state_file)
        click.echo(f"  state file       {state_file} ({'resumed' if resumed else 'new'})")
    click.echo("  Ctrl-C to stop")
    run_forever(app, host, port)
