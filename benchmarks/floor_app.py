"""The floor the gateway's CPU is compared with (benchmarks/gateway_cpu.py): an ASGI app served by
the same uvicorn as `fiscalgate serve`, with two bare JSON routes, each parsing its body and writing
one row to SQLite with `synchronous=FULL` (one fsynced commit), no authority call. A create +
certify through the gateway is compared with one request to each route.

    python -m uvicorn benchmarks.floor_app:app   # FLOOR_DB=path/to/floor.db
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from typing import Any

_local = threading.local()
_PATH = os.environ.get("FLOOR_DB", "floor.db")


def _connection() -> sqlite3.Connection:
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(_PATH, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS docs (id TEXT PRIMARY KEY, kind TEXT, body TEXT)")
        _local.conn = conn
    return conn


def _write(kind: str, body: dict[str, Any]) -> str:
    doc_id = str(uuid.uuid4())
    conn = _connection()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO docs VALUES (?, ?, ?)", (doc_id, kind, json.dumps(body)))
    conn.execute("COMMIT")
    return doc_id


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    raw = await _body(receive)
    body = json.loads(raw) if raw else {}
    path = scope["path"]
    if path == "/healthz":
        status, answer = 200, {"ok": True}
    elif path in ("/create", "/certify"):
        # The write is a blocking call: run it where the gateway runs its own (the default thread
        # pool), like `anyio.to_thread.run_sync` would.
        import anyio.to_thread

        doc_id = await anyio.to_thread.run_sync(_write, path[1:], body)
        status, answer = 200, {"id": doc_id, "status": "ok"}
    else:
        status, answer = 404, {"error": "not found"}
    payload = json.dumps(answer).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
