"""The ASGI app every simulator serves: its routes, wrapped in fault injection, with its platform
(the rules and memory) and a hook that hands the memory over after each request that may have
changed it, so the gateway (its database) or `fiscalgate simulate --state FILE` can keep it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from fiscalgate.simkit.faults import FaultInjector

# Reads never change a simulator's memory worth keeping (e-MECeF's expiry of old pending requests
# on a GET is redone by the next call anyway).
_READS = frozenset({"GET", "HEAD", "OPTIONS"})

# (version, snapshot): versions grow with each change, so a keeper that receives two snapshots out
# of order can keep the newer one.
ChangeHook = Callable[[int, dict[str, Any]], Awaitable[None]]


class Remembers(Protocol):
    """A simulator platform whose memory can be exported and put back (simkit.snapshot)."""

    def export_state(self) -> dict[str, Any]: ...

    def import_state(self, snapshot: dict[str, Any]) -> None: ...


class SimulatorApp(FaultInjector):
    def __init__(self, routes: ASGIApp, platform: Any) -> None:
        super().__init__(self._remembering)
        self.routes = routes
        self.platform = platform
        self.on_change: ChangeHook | None = None
        self.version = 0

    def export_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.platform.export_state()
        return state

    def import_state(self, snapshot: dict[str, Any]) -> None:
        self.platform.import_state(snapshot)

    async def _remembering(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.routes(scope, receive, send)
        finally:
            # Captured here, under fault injection: a request answered late (or never, "hang after
            # processing") is kept as soon as the platform has processed it, like the real one.
            if self.on_change is not None and scope["type"] == "http" and scope["method"] not in _READS:
                self.version += 1
                await self.on_change(self.version, self.export_state())
