"""Replaying one recorded authority call, for diagnosis. A replay never creates a certification.

Safety rule (issue 14): read-only calls (GET/HEAD) are replayed as recorded, wherever they went.
Any other call (FNE's sign, e-MECeF's submit and confirm, SFEC's certify) could certify: in
`production` it is refused (403 `replay.production_write`: a second, numbered, legal invoice), in
`sandbox` and against a simulator run apart (`mock` with a `base_url`) refused too (403
`replay.not_idempotent`: a new FNE number each time, an e-MECeF pending request). A call recorded
against the in-process simulator (`mock`, no `base_url`) is sent to a *throwaway* simulator,
built for this replay from the tenant's settings and dropped after it: the answer shows what the
simulator says to that request, and the tenant's own simulator (its numbers, pending requests,
certified invoices) is untouched. The replay is itself audited.
"""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import anyio
import httpx
from sqlalchemy.orm import Session

from fiscalgate.authorities.base import AuthorityDriver, AuthoritySettings, Environment
from fiscalgate.gateway.audit.schemas import ReplayOut
from fiscalgate.gateway.audit.service import get_entry, record_calls
from fiscalgate.gateway.audit.transport import RecordingTransport
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import Conflict, Forbidden
from fiscalgate.gateway.runtime import Gateway, mock_prefix
from fiscalgate.gateway.settings.service import load_settings
from fiscalgate.gateway.tenants.service import Caller, get_tenant

READ_ONLY = ("GET", "HEAD")
_DROP = {"host", "content-length", "transfer-encoding", "connection"}


async def replay_entry(gw: Gateway, caller: Caller, tenant_id: str, entry_id: str) -> ReplayOut:
    entry = await gw.db.run(get_entry, tenant_id, entry_id)
    if entry.kind != "authority_call" or not entry.sealed_request or not entry.authority:
        raise Conflict("only authority calls can be replayed", code="replay.not_a_call")
    exact = gw.box.open(entry.sealed_request)
    method = str(exact["method"]).upper()
    writes = method not in READ_ONLY
    if entry.environment == Environment.PRODUCTION.value and writes:
        raise Forbidden(
            f"replaying a production {method} is refused: it could certify (and number) a real invoice "
            "again; only GET/HEAD calls to production can be replayed",
            code="replay.production_write",
        )

    def load(session: Session) -> tuple[AuthorityDriver, AuthoritySettings]:
        return load_settings(session, gw, get_tenant(session, tenant_id), entry.authority or "")

    driver, settings = await gw.db.run(load)
    in_process = (
        entry.environment == Environment.MOCK.value
        and settings.environment == Environment.MOCK
        and not settings.base_url
    )
    if writes and not in_process:
        raise Forbidden(
            f"replaying a {entry.environment} {method} is refused: it could certify again (a new "
            "number, a pending request); only GET/HEAD calls are replayed there, and calls to the "
            "built-in simulator go to a throwaway copy of it",
            code="replay.not_idempotent",
        )
    inner: httpx.AsyncBaseTransport
    if in_process:
        # A call recorded under the gateway's public URL went to `.../mock/{tenant}/{authority}/...`
        # with that mount's path as the ASGI root_path: replay it the same way, whatever the
        # gateway's public URL is now (older records, made without one, have no such path).
        path = urlsplit(str(exact["url"])).path
        mount = mock_prefix(tenant_id, driver.code)
        at = path.find(mount + "/")
        root_path = path[: at + len(mount)] if at >= 0 else ""
        # Reads go to the tenant's simulator; anything else to a throwaway one (never certifies).
        simulator = (
            gw.simulators.get(tenant_id, driver, settings) if not writes else driver.mock_app(settings)
        )
        inner = httpx.ASGITransport(app=simulator, root_path=root_path)
    else:
        inner = gw.network_transport()
    recorder = RecordingTransport(inner, settings.secrets())
    headers = {k: v for k, v in dict(exact["headers"]).items() if k.lower() not in _DROP}
    started_at = utcnow()
    outcome = "no response"
    try:
        async with httpx.AsyncClient(transport=recorder, timeout=settings.timeout_seconds) as client:
            with anyio.fail_after(settings.timeout_seconds):
                await client.request(
                    method, str(exact["url"]), headers=headers, content=base64.b64decode(exact["content"])
                )
    except (httpx.HTTPError, TimeoutError) as exc:
        outcome = f"no response ({type(exc).__name__})"

    def store(session: Session) -> str | None:
        entries = record_calls(
            session,
            gw.box,
            recorder.records,
            tenant_id=tenant_id,
            authority=entry.authority or "",
            environment=entry.environment or "",
            trigger=f"replay:{entry_id}:{caller.trigger}",
            invoice_id=entry.invoice_id,
            event="audit.replay",
            started_at=started_at,
        )
        session.flush()
        return entries[0].id if entries else None

    new_id = await gw.db.run(store)
    record = recorder.records[0] if recorder.records else None
    return ReplayOut(
        replayed_entry_id=entry_id,
        audit_entry_id=new_id,
        method=method,
        url=entry.url or "",
        response_status=record.response_status if record else None,
        response_body=record.response_body if record else None,
        duration_ms=record.duration_ms if record else None,
        outcome=record.outcome if record and record.response_status is not None else outcome,
    )
