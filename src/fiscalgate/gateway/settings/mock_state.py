"""Where the gateway keeps its in-process simulators' memory: the `mock_simulator_entries` table,
one row per entry of a simulator's memory (simkit.journal), per (tenant, authority).

A simulator hands over what changed after every request that may have changed it (simkit.app),
before its answer reaches the driver, so what the gateway records (a reference) is never newer than
what the simulator remembers. Only the entries that changed are written (an FNE certification: its
document, its taxpayer's sticker balance, one counter), so keeping the memory costs the same with
ten invoices certified as with a hundred thousand. Two requests finishing out of order are
handled per entry: an entry is never overwritten by an older version of itself.

Memories written by an older version (whole snapshots in `mock_simulator_states`) are read once,
when such a simulator starts; its first change then writes every entry and deletes the snapshot.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any

import anyio.to_thread
from sqlalchemy import Table, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fiscalgate.gateway.settings.models import MockSimulatorEntry, MockSimulatorState
from fiscalgate.simkit.journal import Changes, assemble

log = logging.getLogger(__name__)

_T: Table = MockSimulatorEntry.__table__  # type: ignore[assignment]
_ROWS = (
    select(_T.c.part, _T.c.key, _T.c.value)
    .where(_T.c.tenant_id == bindparam("tenant"), _T.c.authority == bindparam("authority"))
    .order_by(_T.c.position)
)
_LAST_POSITION = select(func.max(_T.c.position)).where(
    _T.c.tenant_id == bindparam("tenant"), _T.c.authority == bindparam("authority")
)
_DELETE_ENTRY = delete(_T).where(
    _T.c.tenant_id == bindparam("tenant"),
    _T.c.authority == bindparam("authority"),
    _T.c.part == bindparam("p"),
    _T.c.key == bindparam("k"),
)
_DELETE_PART = delete(_T).where(
    _T.c.tenant_id == bindparam("tenant"),
    _T.c.authority == bindparam("authority"),
    _T.c.part == bindparam("p"),
)
_LEGACY: Table = MockSimulatorState.__table__  # type: ignore[assignment]
_DELETE_LEGACY = delete(_LEGACY).where(
    _LEGACY.c.tenant_id == bindparam("tenant"), _LEGACY.c.authority == bindparam("authority")
)


def _upsert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_T).values(
        tenant_id=bindparam("tenant"),
        authority=bindparam("authority"),
        part=bindparam("p"),
        key=bindparam("k"),
        position=bindparam("position"),
        value=bindparam("value", type_=_T.c.value.type),
    )
    # The position is the first write's: an entry keeps its place in the dict's order.
    return stmt.on_conflict_do_update(
        index_elements=[_T.c.tenant_id, _T.c.authority, _T.c.part, _T.c.key],
        set_={"value": stmt.excluded.value},
    )


Scope = tuple[str, str]  # (tenant id, authority)


class MockStateStore:
    def __init__(self, db: Any) -> None:  # a runtime.Database (not imported: runtime imports us)
        self.db = db
        self._upsert = _upsert(db.engine.dialect.name)
        self._lock = threading.Lock()
        self._locks: dict[Scope, threading.Lock] = defaultdict(threading.Lock)
        # Per scope: the version last written of each (part, key) while older calls are in flight,
        # the next position, whether an older version's whole snapshot is still to be deleted, and
        # the versions being written.
        self._written: dict[Scope, dict[tuple[str, str], int]] = defaultdict(dict)
        self._next_position: dict[Scope, int] = {}
        self._legacy: set[Scope] = set()
        self._inflight: dict[Scope, set[int]] = defaultdict(set)

    def load(self, tenant_id: str, authority: str) -> tuple[dict[str, Any] | None, bool]:
        """(the memory stored, whether it is stored entry by entry: then only changes follow)."""
        scope = (tenant_id, authority)
        params = {"tenant": tenant_id, "authority": authority}

        def read(session: Session) -> tuple[list[Any], int | None, dict[str, Any] | None]:
            rows = list(session.execute(_ROWS, params))
            last = session.scalar(_LAST_POSITION, params)
            legacy = None
            if not rows:
                row = session.get(MockSimulatorState, scope)
                legacy = dict(row.state) if row is not None else None
            return rows, last, legacy

        rows, last, legacy = self.db.read_call(read)
        with self._scope_lock(scope):
            self._next_position[scope] = (last or 0) + 1
            self._written.pop(scope, None)
            if legacy is not None:
                self._legacy.add(scope)
        if rows:
            return assemble((r.part, r.key, r.value) for r in rows), True
        return legacy, False

    async def save(self, tenant_id: str, authority: str, version: int, changes: Changes) -> None:
        # Registered in the event loop before the first await: a call's version is in flight from
        # the moment it was numbered (simkit.app numbers and hands over in one step).
        inflight = self._inflight[(tenant_id, authority)]
        inflight.add(version)
        try:
            await anyio.to_thread.run_sync(self._save, tenant_id, authority, version, changes)
        finally:
            inflight.discard(version)

    def _scope_lock(self, scope: Scope) -> threading.Lock:
        with self._lock:
            return self._locks[scope]

    def _save(self, tenant_id: str, authority: str, version: int, changes: Changes) -> None:
        scope = (tenant_id, authority)
        base = {"tenant": tenant_id, "authority": authority}
        with self._scope_lock(scope):
            written = self._written[scope]
            position = self._next_position.get(scope, 1)
            wipe: list[str] = []
            kept_later: list[tuple[str, set[str]]] = []
            upserts: list[dict[str, Any]] = []
            deletes: list[dict[str, Any]] = []
            done: dict[tuple[str, str], int] = {}

            def newer(part: str, key: str) -> bool:
                return written.get((part, key), 0) > version  # a later call already wrote it

            for part, entries in changes.parts.items():
                later = {k for (p, k), v in written.items() if p == part and v > version}
                if not later:
                    wipe.append(part)
                else:  # rare: a replaced part overtaken by a later change of some of its entries
                    kept_later.append((part, later))
                for key, value in entries.items():
                    if key not in later:
                        upserts.append({**base, "p": part, "k": key, "position": position, "value": value})
                        position += 1
                        done[(part, key)] = version
            for (part, key), value in changes.entries.items():
                if newer(part, key):
                    continue
                if value is None:
                    deletes.append({**base, "p": part, "k": key})
                else:
                    upserts.append({**base, "p": part, "k": key, "position": position, "value": value})
                    position += 1
                done[(part, key)] = version

            legacy = scope in self._legacy

            def write(session: Session) -> None:
                for part in wipe:
                    session.execute(_DELETE_PART, {**base, "p": part})
                for part, later in kept_later:
                    session.execute(_DELETE_PART.where(_T.c.key.not_in(sorted(later))), {**base, "p": part})
                if deletes:
                    session.execute(_DELETE_ENTRY, deletes)
                if upserts:
                    session.execute(self._upsert, upserts)
                if legacy:
                    session.execute(_DELETE_LEGACY, base)

            self.db.call(write)
            for part in wipe:
                for k in [k for k in written if k[0] == part]:
                    del written[k]
            written.update(done)
            # Versions only need remembering while an older call's changes may still arrive: keep
            # those at or above the oldest one still in flight (later calls have higher versions).
            floor = min(self._inflight[scope] - {version}, default=None)
            for k in [k for k, v in written.items() if floor is None or v < floor]:
                del written[k]
            self._next_position[scope] = position
            self._legacy.discard(scope)
