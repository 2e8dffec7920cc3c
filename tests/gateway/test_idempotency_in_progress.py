"""The answer to a key whose first request is still running (its process alive): 409
`idempotency.in_progress` that a retry policy reads as "retry later" (resolution / retryable, the
only fields it may look at), never as "fix the input". Both databases."""

from __future__ import annotations

import hashlib
import json

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from fiscalgate.gateway.api.models import IdempotencyRecord
from fiscalgate.gateway.db import utcnow
from tests.gateway.conftest import gateway, real_invoice, real_tenant

pytestmark = pytest.mark.anyio


async def test_a_key_in_progress_is_a_409_to_retry_later(real_app: FastAPI) -> None:
    tenant, api, _, _ = await real_tenant(real_app, "cg-sfec")
    gw = gateway(real_app)
    body = json.dumps({"invoice": real_invoice("cg-sfec")}).encode()
    digest = hashlib.sha256(b"\n".join([b"POST", b"/v1/invoices", b"", body])).hexdigest()

    def running(session: Session) -> None:  # held by this very process, which is alive
        session.add(
            IdempotencyRecord(
                scope=f"tenant:{tenant['id']}",
                key="k-live",
                request_hash=digest,
                method="POST",
                path="/v1/invoices",
                holder=gw.process_id,
                created_at=utcnow(),
            )
        )

    gw.db.call(running)
    async with api:
        r = await api.post(
            "/v1/invoices",
            content=body,
            headers={"Idempotency-Key": "k-live", "Content-Type": "application/json"},
        )
        assert r.status_code == 409, r.text
        answer = r.json()
        assert answer["code"] == "idempotency.in_progress"
        assert (answer["resolution"], answer["retryable"]) == ("retry_later", True)
        assert (await api.get("/v1/invoices")).json()["total"] == 0  # nothing created meanwhile
