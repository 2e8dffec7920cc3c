"""Webhooks delivered to a real HTTP receiver on 127.0.0.1: every event, signed (checked with the
README's own receiver code), retried while the receiver is down, given up after the bound,
redelivered by hand, claimed once across two gateway processes, secrets never shown."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.webhooks.dispatcher import DeliveryPolicy, running_dispatcher
from fiscalgate.gateway.webhooks.events import EVENT_TYPES, record_event
from fiscalgate.gateway.webhooks.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from tests.gateway.conftest import FAKE_SETTINGS, gateway, new_tenant, sample_invoice
from tests.gateway.fake_driver import FakeDriver
from tests.gateway.webhook_receiver import Received, Receiver, eventually

pytestmark = pytest.mark.anyio

FAST = DeliveryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.2, timeout=5.0, poll_interval=0.05)
SECRET = "s3cret-webhook-key-do-not-leak-0123"
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_check() -> Callable[..., bool]:
    """The receiver check exactly as the README shows it."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    (code,) = [b for b in blocks if b.startswith("# fiscalgate webhook signature check")]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    check: Callable[..., bool] = namespace["verify_fiscalgate_signature"]
    return check


@pytest.fixture(autouse=True)
def allow_private(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FISCALGATE_ALLOW_PRIVATE_URLS", "1")  # the receiver is on 127.0.0.1


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def down_receiver() -> Iterator[Receiver]:
    r = Receiver(listening=False)
    yield r
    r.close()


async def received(receiver: Receiver, condition: Callable[[list[Received]], bool]) -> list[Received]:
    return await anyio.to_thread.run_sync(receiver.wait_for, condition)


async def hook(
    api: httpx.AsyncClient, url: str, events: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    r = await api.post("/v1/webhooks", json={"url": url, "events": events or ["invoice.certified"], **extra})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def certify(api: httpx.AsyncClient, number: str | None = None) -> dict[str, Any]:
    inv = (await api.post("/v1/invoices", json={"invoice": sample_invoice(number), "approve": True})).json()
    r = await api.post(f"/v1/invoices/{inv['id']}/certify")
    return dict(r.json(), id=inv["id"])


async def all_delivered(api: httpx.AsyncClient, webhook_id: str, count: int) -> list[dict[str, Any]]:
    """Once the receiver has the requests, wait for the gateway to have recorded their answers."""

    async def done() -> list[dict[str, Any]] | None:
        listed = await deliveries(api, webhook_id)
        ok = len(listed) == count and all(d["status"] == "delivered" for d in listed)
        return listed if ok else None

    result: list[dict[str, Any]] = await eventually(done)
    return result


async def deliveries(api: httpx.AsyncClient, webhook_id: str) -> list[dict[str, Any]]:
    r = await api.get(f"/v1/webhooks/{webhook_id}/deliveries")
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["items"]
    return data


@pytest.fixture
async def tenant(fake_app: FastAPI) -> AsyncIterator[tuple[dict[str, Any], httpx.AsyncClient]]:
    t, api = await new_tenant(fake_app, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        yield t, api


async def test_every_event_is_delivered_signed_with_the_readme_check(
    fake_app: FastAPI,
    fakes: dict[str, FakeDriver],
    tenant: tuple[dict[str, Any], httpx.AsyncClient],
    receiver: Receiver,
) -> None:
    t, api = tenant
    endpoint = await hook(api, receiver.url, list(EVENT_TYPES), secret=SECRET)
    gw = gateway(fake_app)
    check = readme_check()
    async with running_dispatcher(gw, FAST):
        certified = await certify(api)
        rejected = await certify(api, "REJECT-1")
        fakes["ci-fne"].explode = KeyError("reference")  # a driver bug after sending: unknown
        unknown = await certify(api)
        fakes["ci-fne"].explode = None
        # the simulator keeps its key: another one in the settings is refused (401) -> failed
        assert (
            await api.put("/v1/settings/ci-fne", json={"api_key": "another-key-0123456789"})
        ).status_code == 200
        failed = await certify(api)
        # stickers.low and authority.* come from code paths with their own tests; here, delivery
        for kind in ("stickers.low", "authority.down", "authority.up"):
            await gw.db.run(record_event, t["id"], kind, {"authority": "ci-fne", "environment": "mock"})
        got = await received(receiver, lambda rs: {r.json["type"] for r in rs} >= set(EVENT_TYPES))
        listed = await all_delivered(api, endpoint["id"], len(EVENT_TYPES))
    assert (certified["status"], rejected["invoice_status"], unknown["invoice_status"]) == (
        "certified",
        "rejected",
        "unknown",
    )
    assert failed["invoice_status"] == "failed"
    by_type = {r.json["type"]: r for r in got}
    for r in got:
        assert check(SECRET, r.headers["fiscalgate-signature"], r.body), r.headers
        assert r.headers["fiscalgate-event-id"] == r.json["id"]
        assert r.headers["fiscalgate-event-type"] == r.json["type"]
        assert r.headers["content-type"] == "application/json"
        assert r.json["tenant_id"] == t["id"]
    for kind, inv in [
        ("invoice.certified", certified),
        ("invoice.rejected", rejected),
        ("invoice.unknown", unknown),
        ("invoice.failed", failed),
    ]:
        data = by_type[kind].json["data"]
        assert data["invoice_id"] == (inv.get("invoice_id") or inv["id"])
        assert data["status"] == kind.split(".")[1]
    assert by_type["invoice.certified"].json["data"]["reference"] == certified["reference"]
    assert by_type["invoice.rejected"].json["data"]["error"]["code"] == rejected["code"]
    # a forged, altered or stale signature does not pass the same check
    one = by_type["invoice.certified"]
    sig = one.headers["fiscalgate-signature"]
    assert not check("another-secret-0123456789", sig, one.body)
    assert not check(SECRET, sig, one.body.replace(b"certified", b"rejected"))
    stamp = int(sig.split(",")[0][2:])
    assert not check(SECRET, sig, one.body, tolerance=-1) and check(SECRET, sig, one.body)
    old = sig.replace(f"t={stamp}", f"t={stamp - 3600}")
    assert not check(SECRET, old, one.body)
    # each delivery says so, with its response code and its attempt
    assert {d["event_type"] for d in listed} == set(EVENT_TYPES)
    assert all(d["status"] == "delivered" and d["response_status"] == 200 for d in listed)
    assert all(d["attempt_log"][-1]["response_status"] == 200 for d in listed)


async def test_a_receiver_that_is_down_gets_the_event_once_it_is_up(
    fake_app: FastAPI, tenant: tuple[dict[str, Any], httpx.AsyncClient], down_receiver: Receiver
) -> None:
    _, api = tenant
    endpoint = await hook(api, down_receiver.url, secret=SECRET)
    policy = DeliveryPolicy(max_attempts=50, base_delay=0.05, max_delay=0.1, timeout=5.0, poll_interval=0.05)
    async with running_dispatcher(gateway(fake_app), policy):
        inv = await certify(api)

        async def refused_twice() -> Any:
            (d,) = await deliveries(api, endpoint["id"])
            return d if len(d["attempt_log"]) >= 2 else None

        pending = await eventually(refused_twice)
        assert pending["status"] in ("pending", "delivering") and pending["delivered_at"] is None
        assert all(a["response_status"] is None and "Connect" in a["error"] for a in pending["attempt_log"])
        down_receiver.up()
        (got,) = await received(down_receiver, lambda rs: len(rs) >= 1)

        async def delivered() -> Any:
            (d,) = await deliveries(api, endpoint["id"])
            return d if d["status"] == "delivered" else None

        final = await eventually(delivered)
    assert got.json["data"]["invoice_id"] == inv["id"]
    assert got.headers["fiscalgate-delivery-attempt"] == str(final["attempts"])
    assert final["attempts"] == len(final["attempt_log"]) >= 3
    assert final["attempt_log"][-1]["response_status"] == 200 and final["last_error"] is None
    assert final["next_attempt_at"] is None


async def test_gives_up_after_the_bound_then_a_manual_redelivery_sends_it(
    fake_app: FastAPI, tenant: tuple[dict[str, Any], httpx.AsyncClient], receiver: Receiver
) -> None:
    _, api = tenant
    endpoint = await hook(api, receiver.url, secret=SECRET)
    receiver.answer = 500
    async with running_dispatcher(gateway(fake_app), FAST):
        await certify(api)

        async def failed() -> Any:
            (d,) = await deliveries(api, endpoint["id"])
            return d if d["status"] == "failed" else None

        gave_up = await eventually(failed)
        assert gave_up["attempts"] == FAST.max_attempts and gave_up["next_attempt_at"] is None
        assert gave_up["response_status"] == 500 and "500" in gave_up["last_error"]
        assert [a["response_excerpt"] for a in gave_up["attempt_log"]] == ["receiver says no"] * 3
        assert len(receiver.requests) == 3
        receiver.answer = 200
        r = await api.post(f"/v1/webhook-deliveries/{gave_up['id']}/redeliver")
        assert r.status_code == 202 and r.json()["status"] == "pending"
        got = await received(receiver, lambda rs: len(rs) >= 4)

        async def delivered() -> Any:
            (d,) = await deliveries(api, endpoint["id"])
            return d if d["status"] == "delivered" else None

        final = await eventually(delivered)
    assert len({g.headers["fiscalgate-event-id"] for g in got}) == 1  # the same event, de-duplicable
    assert [a["trigger"] for a in final["attempt_log"]] == ["automatic"] * 3 + ["manual"]
    assert final["attempts"] == 4 and final["response_status"] == 200
    audit = (await api.get("/v1/audit", params={"kind": "webhook"})).json()["items"]
    assert "webhook.redeliver" in {e["event"] for e in audit}


async def test_two_gateway_processes_send_each_delivery_once(
    make_app: Callable[..., FastAPI], fakes: dict[str, FakeDriver], receiver: Receiver
) -> None:
    one, two = make_app(lambda c: fakes[c]), make_app(lambda c: fakes[c])
    t, api = await new_tenant(one, settings={"ci-fne": FAKE_SETTINGS})
    async with api:
        await hook(api, receiver.url, ["stickers.low"], secret=SECRET)
    count = 12
    policy = DeliveryPolicy(
        max_attempts=3, base_delay=0.05, max_delay=0.1, timeout=5.0, poll_interval=0.02, batch=4
    )

    def burst(session: Session) -> None:
        for i in range(count):
            record_event(session, t["id"], "stickers.low", {"n": i})

    async with running_dispatcher(gateway(one), policy), running_dispatcher(gateway(two), policy):
        await gateway(one).db.run(burst)
        got = await received(receiver, lambda rs: len(rs) >= count)

        async def settled() -> bool:
            rows = await gateway(one).db.read(lambda s: list(s.scalars(select(WebhookDelivery.status))))
            return rows.count("delivered") == count

        await eventually(settled)
    ids = [r.headers["fiscalgate-event-id"] for r in got]
    assert len(ids) == len(set(ids)) == count
    assert sorted(r.json["data"]["n"] for r in got) == list(range(count))


async def test_a_sender_that_died_mid_delivery_is_taken_over_after_its_lease(
    fake_app: FastAPI, tenant: tuple[dict[str, Any], httpx.AsyncClient], receiver: Receiver
) -> None:
    t, api = tenant
    endpoint = await hook(api, receiver.url, ["authority.down"], secret=SECRET)
    gw = gateway(fake_app)
    await gw.db.run(record_event, t["id"], "authority.down", {"authority": "ci-fne"})
    # as a dispatcher that claimed it and was killed would leave it: delivering, lease running
    claimed = {
        "status": "delivering",
        "claim_token": "dead-sender",
        "lease_until": utcnow().replace(year=2999),
    }
    await gw.db.run(lambda s: s.execute(update(WebhookDelivery).values(**claimed)))
    async with running_dispatcher(gw, FAST) as dispatcher:
        async with httpx.AsyncClient() as c:
            assert await dispatcher.run_once(c) == 0  # its lease still runs: not taken
        await gw.db.run(lambda s: s.execute(update(WebhookDelivery).values(lease_until=utcnow())))
        dispatcher.wake()
        (got,) = await received(receiver, lambda rs: len(rs) >= 1)
        (d,) = await all_delivered(api, endpoint["id"], 1)
    assert got.json["type"] == "authority.down"
    assert d["attempts"] == 1 and d["attempt_log"][0]["trigger"] == "automatic"


async def test_a_hanging_receiver_does_not_hold_up_the_others(
    fake_app: FastAPI, tenant: tuple[dict[str, Any], httpx.AsyncClient], receiver: Receiver
) -> None:
    t, api = tenant
    slow = Receiver()
    slow.released.clear()
    try:
        await hook(api, slow.url, ["authority.down"], secret=SECRET)
        fast = await hook(api, receiver.url, ["authority.up"], secret=SECRET)
        gw = gateway(fake_app)
        policy = DeliveryPolicy(
            max_attempts=3, base_delay=0.05, max_delay=0.1, timeout=30.0, poll_interval=0.05, batch=4
        )
        async with running_dispatcher(gw, policy):
            await gw.db.run(record_event, t["id"], "authority.down", {"authority": "ci-fne"})
            await received(slow, lambda rs: len(rs) == 1)  # sent, and hanging
            for _ in range(3):
                await gw.db.run(record_event, t["id"], "authority.up", {"authority": "ci-fne"})
            await received(receiver, lambda rs: len(rs) == 3)
            await all_delivered(api, fast["id"], 3)  # while the slow one still hangs
            assert not slow.released.is_set()
            slow.released.set()
    finally:
        slow.close()


async def test_an_endpoint_whose_secret_cannot_be_opened_fails_alone(
    fake_app: FastAPI, tenant: tuple[dict[str, Any], httpx.AsyncClient], receiver: Receiver
) -> None:
    t, api = tenant
    broken = await hook(api, receiver.url + "/broken", ["authority.down"], secret=SECRET)
    fine = await hook(api, receiver.url + "/fine", ["authority.down"], secret=SECRET)
    gw = gateway(fake_app)
    # as if sealed under another FISCALGATE_SECRET_KEY
    await gw.db.run(
        lambda s: s.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == broken["id"])
            .values(secret_sealed="gAAAAAB-not-ours")
        )
    )
    async with running_dispatcher(gw, FAST):
        await gw.db.run(record_event, t["id"], "authority.down", {"authority": "ci-fne"})
        await received(receiver, lambda rs: len(rs) == 1)
        await all_delivered(api, fine["id"], 1)

        async def failed() -> Any:
            (d,) = await deliveries(api, broken["id"])
            return d if d["status"] == "failed" else None

        d = await eventually(failed)
    assert "cannot be decrypted" in d["last_error"] and d["attempts"] == 0
    assert [r.path for r in receiver.requests] == ["/hooks/fiscalgate/fine"]


async def test_the_outbox_row_belongs_to_the_callers_transaction(
    fake_app: FastAPI, tenant: tuple[dict[str, Any], httpx.AsyncClient]
) -> None:
    t, api = tenant
    await hook(api, "https://erp.example/h", ["authority.up"])
    gw = gateway(fake_app)

    def rolled_back(session: Session) -> None:
        record_event(session, t["id"], "authority.up", {"authority": "ci-fne"})
        raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await gw.db.run(rolled_back)
    counts = await gw.db.read(
        lambda s: (
            len(list(s.scalars(select(OutboxEvent.id)))),
            len(list(s.scalars(select(WebhookDelivery.id)))),
        )
    )
    assert counts == (0, 0)
    await gw.db.run(record_event, t["id"], "authority.up", {"authority": "ci-fne"})
    with pytest.raises(ValueError, match="unknown event type"):
        await gw.db.run(record_event, t["id"], "invoice.exploded", {})


async def test_a_deleted_endpoint_gets_nothing_more(
    fake_app: FastAPI, tenant: tuple[dict[str, Any], httpx.AsyncClient], receiver: Receiver
) -> None:
    _, api = tenant
    gone = await hook(api, receiver.url + "/gone", secret=SECRET)
    kept = await hook(api, receiver.url + "/kept", secret=SECRET)
    await certify(api)  # no dispatcher yet: both deliveries pending
    assert (await api.delete(f"/v1/webhooks/{gone['id']}")).status_code == 204
    assert (await api.get(f"/v1/webhooks/{gone['id']}/deliveries")).status_code == 404
    async with running_dispatcher(gateway(fake_app), FAST):
        await certify(api)
        await received(receiver, lambda rs: len(rs) >= 2)
        await all_delivered(api, kept["id"], 2)
    assert [r.path for r in receiver.requests] == ["/hooks/fiscalgate/kept"] * 2
    assert [h["id"] for h in (await api.get("/v1/webhooks")).json()["items"]] == [kept["id"]]


BAD_REGISTRATIONS = [
    ({"events": ["invoice.certified", "invoice.exploded"]}, "events[1]", "webhook.unknown_event"),
    ({"events": []}, "events", "request.invalid"),
    ({"url": "http://erp.example.com/h"}, "url", "webhook.url_https_required"),
    ({"url": "ftp://erp.example.com/h"}, "url", "webhook.url_invalid"),
    ({"url": "https://user:pw@erp.example.com/h"}, "url", "webhook.url_credentials"),
    ({"url": "https://erp.example.com:99999/h"}, "url", "webhook.url_invalid"),
    ({"url": "https://erp.example.com/a b"}, "url", "webhook.url_invalid"),
    ({"url": "https://0177.0.0.1.5/h"}, "url", "webhook.url_invalid"),
    ({"secret": "short"}, "secret", "request.invalid"),
    ({"colour": "blue"}, "colour", "request.invalid"),
]
PRIVATE = [
    "https://127.0.0.1/h",
    "http://localhost:8080/h",
    "https://10.1.2.3/h",
    "https://[::1]/h",
    "https://169.254.169.254/",
    "https://0x7f.1/h",
]


# Validation reads no data: one database is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_bad_registration_is_refused_with_its_field(
    tenant: tuple[dict[str, Any], httpx.AsyncClient],
) -> None:
    _, api = tenant
    for body, field, code in BAD_REGISTRATIONS:
        r = await api.post(
            "/v1/webhooks", json={"url": "https://erp.example.com/h", "events": ["invoice.failed"], **body}
        )
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] == code, body
        assert field in [p["field"] for p in r.json()["problems"]], body
    assert (await api.get("/v1/webhooks")).json()["items"] == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_private_urls_need_the_operators_consent(
    tenant: tuple[dict[str, Any], httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, api = tenant
    for url in PRIVATE:
        monkeypatch.delenv("FISCALGATE_ALLOW_PRIVATE_URLS")
        r = await api.post("/v1/webhooks", json={"url": url, "events": ["invoice.failed"]})
        assert r.status_code == 422 and r.json()["code"] == "webhook.url_private", r.text
        assert "FISCALGATE_ALLOW_PRIVATE_URLS" in r.json()["problems"][0]["message"]
        monkeypatch.setenv("FISCALGATE_ALLOW_PRIVATE_URLS", "1")
        assert (
            await api.post("/v1/webhooks", json={"url": url, "events": ["invoice.failed"]})
        ).status_code == 201
    assert len((await api.get("/v1/webhooks")).json()["items"]) == len(PRIVATE)


async def test_a_public_name_resolving_to_a_private_address_is_not_called(
    fake_app: FastAPI,
    tenant: tuple[dict[str, Any], httpx.AsyncClient],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, api = tenant
    monkeypatch.delenv("FISCALGATE_ALLOW_PRIVATE_URLS")
    endpoint = await hook(api, "https://erp.example.com/h")

    async def loopback(host: str, port: int, **kw: Any) -> list[Any]:
        return [(2, 1, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr("fiscalgate.authorities.http.anyio.getaddrinfo", loopback)
    async with running_dispatcher(gateway(fake_app), FAST):
        await certify(api)

        async def tried() -> Any:
            (d,) = await deliveries(api, endpoint["id"])
            return d if d["attempt_log"] else None

        d = await eventually(tried)
    assert "resolves to 127.0.0.1" in d["attempt_log"][0]["error"]
    assert d["attempt_log"][0]["response_status"] is None
    assert receiver.requests == []


async def test_webhook_secrets_never_appear_in_answers_logs_or_plain_columns(
    fake_app: FastAPI,
    tenant: tuple[dict[str, Any], httpx.AsyncClient],
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, api = tenant
    created = await hook(api, receiver.url, list(EVENT_TYPES))  # secret generated
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    mine = await hook(api, receiver.url, ["invoice.certified"], secret=SECRET)
    assert mine["secret"] == SECRET
    caplog.set_level(logging.DEBUG)
    async with running_dispatcher(gateway(fake_app), FAST):
        await certify(api)
        got = await received(receiver, lambda rs: len(rs) >= 2)
        await all_delivered(api, created["id"], 1)
        await all_delivered(api, mine["id"], 1)
    answers = [
        (await api.get("/v1/webhooks")).text,
        (await api.get(f"/v1/webhooks/{created['id']}/deliveries")).text,
        (await api.get(f"/v1/webhooks/{mine['id']}/deliveries")).text,
        (await api.get("/v1/audit", params={"limit": 1000})).text,
    ]
    listed = json.loads(answers[0])["items"]
    assert {h["secret"] for h in listed} == {f"{secret[:4]}…{secret[-4:]}", f"{SECRET[:4]}…{SECRET[-4:]}"}
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "webhook invoice.certified" in logs  # the attempts are logged...
    headers = "".join(json.dumps(r.headers) for r in got)
    for value in (secret, SECRET):
        for where in [*answers, logs]:
            assert value not in where  # ... never with the secret
        assert value not in headers  # the signature is not the secret

    def dump(session: Session) -> str:
        tables = [
            "webhook_endpoints",
            "webhook_deliveries",
            "webhook_attempts",
            "outbox_events",
            "audit_entries",
        ]
        return "\n".join(str(row) for t in tables for row in session.execute(text(f"SELECT * FROM {t}")))

    stored = await gateway(fake_app).db.read(dump)
    assert secret not in stored and SECRET not in stored
