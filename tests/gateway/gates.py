"""Holding a simulator's answer until a test lets it go: ordering by events, never by sleeps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio


class Gate:
    """Wraps a simulator: a request matching (method, path substring) waits until `release` is
    set; `arrived` is set as soon as one has reached the simulator (its caller's claim is held)."""

    def __init__(self, app: Any, method: str = "POST", path: str = "") -> None:
        self.app = app
        self.method = method
        self.path = path
        self.arrived = anyio.Event()
        self.release = anyio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == self.method and self.path in scope["path"]:
            self.arrived.set()
            await self.release.wait()
        await self.app(scope, receive, send)


async def wait_until(condition: Callable[[], Awaitable[bool]], *, deadline: float = 30.0) -> None:
    """Poll `condition` until it holds; fail after a generous `deadline` (a loaded machine)."""
    with anyio.fail_after(deadline):
        # The condition is the gateway's own state (read through its API): no event to wait on.
        while not await condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)
