"""Where the gateway keeps its in-process simulators' memory: the `mock_simulator_states` table,
one row per (tenant, authority), holding the simulator's latest `simkit.snapshot`.

A simulator hands over a snapshot after every request that may have changed it (simkit.app), before
its answer reaches the driver, so what the gateway records (a reference) is never newer than what
the simulator remembers. Snapshots are whole: simple, and cheap for a mock's volumes (see the
gateway README for the figure).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.settings.models import MockSimulatorState

log = logging.getLogger(__name__)


class MockStateStore:
    def __init__(self, db: Any) -> None:  # a runtime.Database (not imported: runtime imports us)
        self.db = db
        self._lock = threading.Lock()
        self._written: dict[tuple[str, str], int] = {}

    def load(self, tenant_id: str, authority: str) -> dict[str, Any] | None:
        def read(session: Session) -> dict[str, Any] | None:
            row = session.get(MockSimulatorState, (tenant_id, authority))
            return dict(row.state) if row is not None else None

        found: dict[str, Any] | None = self.db.read_call(read)
        return found

    async def save(self, tenant_id: str, authority: str, version: int, snapshot: dict[str, Any]) -> None:
        await anyio.to_thread.run_sync(self._save, tenant_id, authority, version, snapshot)

    def _save(self, tenant_id: str, authority: str, version: int, snapshot: dict[str, Any]) -> None:
        key = (tenant_id, authority)
        with self._lock:
            if version <= self._written.get(key, 0):
                return  # a newer snapshot is already stored (two calls finished out of order)

            def write(session: Session) -> None:
                row = session.scalar(
                    select(MockSimulatorState).where(
                        MockSimulatorState.tenant_id == tenant_id, MockSimulatorState.authority == authority
                    )
                )
                if row is None:
                    session.add(
                        MockSimulatorState(
                            tenant_id=tenant_id, authority=authority, state=snapshot, saved_at=utcnow()
                        )
                    )
                else:
                    row.state = snapshot
                    row.saved_at = utcnow()

            self.db.call(write)
            self._written[key] = version
