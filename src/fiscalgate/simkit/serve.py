"""Running a simulator over a real socket (CLI `simulate`, socket tests), its memory in a file."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import uvicorn
from starlette.types import ASGIApp

from fiscalgate.simkit import snapshot
from fiscalgate.simkit.app import SimulatorApp
from fiscalgate.simkit.journal import Changes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(app: ASGIApp, port: int | None = None) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 in a background thread; yields its base URL ("http://127.0.0.1:N")."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"simulator did not start on port {port}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        # Force: a fault test may leave a request hanging on purpose, and a graceful shutdown would
        # wait for it.
        server.should_exit = True
        server.force_exit = True
        thread.join(timeout=10)


def run_forever(app: ASGIApp, host: str, port: int) -> None:
    uvicorn.run(app, host=host, port=port, log_level="info", lifespan="off")


def keep_state_in(app: SimulatorApp, path: Path) -> bool:
    """`fiscalgate simulate --state FILE`: start from the memory kept in `path` (when it exists)
    and rewrite it after each change, so a restarted simulator continues its numbering and still
    knows the invoices certified before. True when a memory was read."""
    remembered = snapshot.read_file(path)
    if remembered is not None:
        app.import_state(remembered)

    async def write(version: int, changes: Changes) -> None:
        # Written before the answer leaves (simkit.app), in request order: one process, one loop.
        # The file is rewritten whole (one file, atomically replaced); the gateway writes only the
        # changes (gateway/settings/mock_state.py).
        snapshot.write_file(path, app.export_state())

    app.on_change = write
    return remembered is not None


def state_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """The `--state FILE` option every `fiscalgate simulate` command takes."""
    return click.option(
        "--state",
        "state_file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Keep the simulator's memory in this JSON file (read at start, rewritten after each "
        "change): a restart continues the numbering and still knows earlier invoices.",
    )(command)
