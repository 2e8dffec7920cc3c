"""The ASGI app every simulator serves: its routes, wrapped in fault injection, with its platform
(the rules and memory) and a hook that hands over what changed in the memory after each request
that may have changed it (`simkit.journal`), so the gateway (its database) or `fiscalgate simulate
--state FILE` can keep it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from fiscalgate.simkit.faults import FaultInjector
from fiscalgate.simkit.journal import Changes, Journal

# Reads never change a simulator's memory worth keeping (e-MECeF's expiry of old pending requests
# on a GET is redone by the next call anyway).
_READS = frozenset({"GET", "HEAD", "OPTIONS"})

# (version, changes): versions grow with each change, so a keeper that receives two sets of changes
# out of order can keep the newer value of each entry.
ChangeHook = Callable[[int, Changes], Awaitable[None]]


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
        self.journal = Journal(platform, getattr(platform, "MEMORY", ()))

    def export_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.platform.export_state()
        return state

    def import_state(self, snapshot: dict[str, Any], *, kept: bool = False) -> None:
        """Put a memory back. `kept`: the keeper holds exactly this memory, so only what changes
        from here on is handed over; otherwise the first change hands over all of it."""
        self.platform.import_state(snapshot)
        if kept:
            self.journal.settle()

    async def _remembering(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.routes(scope, receive, send)
        finally:
            # Captured here, under fault injection: a request answered late (or never, "hang after
            # processing") is kept as soon as the platform has processed it, like the real one.
            if self.on_change is not None and scope["type"] == "http" and scope["method"] not in _READS:
                changes = self.journal.take()
                if changes:
                    self.version += 1
                    try:
                        await self.on_change(self.version, changes)
                    except BaseException:
                        # Not kept: hand everything over with the next change, so the keeper
                        # catches up instead of missing these entries for good.
                        self.journal.forget()
                        raise
