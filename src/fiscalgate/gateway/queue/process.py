"""`fiscalgate worker`: a process that only works the queue (no HTTP), until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import anyio

from fiscalgate.gateway.authorities import default_lookup
from fiscalgate.gateway.crypto import KEY_ENV, SecretBox
from fiscalgate.gateway.db import DEFAULT_DATABASE_URL
from fiscalgate.gateway.netpolicy import private_urls_allowed
from fiscalgate.gateway.queue.worker import DEFAULT_GRACE, DEFAULT_POLL, run_background
from fiscalgate.gateway.runtime import Database, Gateway
from fiscalgate.gateway.webhooks.dispatcher import background_dispatcher

log = logging.getLogger(__name__)


def _secret_key(var_dir: Path) -> bytes:
    """The key the server uses; never a new one (it could not open the stored secrets)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode()
    path = var_dir / "secret.key"
    if path.exists():
        return path.read_bytes().strip()
    raise SystemExit(f"no secret key: set {KEY_ENV} to the server's key (or run beside its {path})")


async def _until_signalled(gw: Gateway, concurrency: int, poll: float, grace: float) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        # A worker also sends webhooks: the events its certifications record are delivered
        # without waiting for a `serve` process to pick them up.
        async with (
            background_dispatcher(gw),
            run_background(gw, "worker", concurrency=concurrency, poll=poll, grace=grace),
        ):
            print(f"fiscalgate worker {gw.process_id}: concurrency {concurrency}", flush=True)
            async for signum in signals:
                print(
                    f"fiscalgate worker {gw.process_id}: {signal.Signals(signum).name}, stopping", flush=True
                )
                break
    print(f"fiscalgate worker {gw.process_id}: stopped", flush=True)


def run_worker(
    database_url: str | None,
    concurrency: int,
    *,
    poll: float = DEFAULT_POLL,
    grace: float = DEFAULT_GRACE,
    var_dir: str | Path = "var",
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = database_url or os.environ.get("FISCALGATE_DATABASE_URL") or DEFAULT_DATABASE_URL
    gw = Gateway(
        db=Database(url),
        box=SecretBox(_secret_key(Path(var_dir))),
        admin_token="",
        driver_lookup=default_lookup,
        allow_private_urls=private_urls_allowed(),
    )
    try:
        anyio.run(_until_signalled, gw, concurrency, poll, grace)
    finally:
        gw.db.dispose()
