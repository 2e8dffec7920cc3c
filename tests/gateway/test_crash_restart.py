"""Issue 14's "done when": a real `fiscalgate serve` process killed with SIGKILL while it waits for
the authority's answer to a synchronous certification (`Idempotency-Key` set), then started
again. Within a minute of the restart (default heartbeat and dead-after settings) the invoice
is resolved where the authority lets a machine settle it (SFEC's look-up; e-MECeF's pending
request, found and confirmed: certified, submitted once) or plainly waiting for a person where
it does not (FNE: `unknown`, saying what to check); and the retry of the
interrupted request with the same `Idempotency-Key` gets an answer, not "in progress".
Both databases; the simulator runs apart, over a socket, and counts what it processed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from cryptography.fernet import Fernet

from fiscalgate.authorities import get_driver
from fiscalgate.gateway import create_app
from fiscalgate.simkit.faults import FaultInjector
from fiscalgate.simkit.serve import free_port, serve_in_thread
from tests.gateway.conftest import ADMIN, gateway, mock_settings, new_tenant, real_invoice

pytestmark = pytest.mark.anyio
FISCALGATE = Path(sys.executable).with_name("fiscalgate")
# The authorities' certification routes (what the simulator counts as "processed").
CERTIFY_PATH = {"cg-sfec": "/invoices/certify", "ci-fne": "/sign", "bj-emecef": "/api/invoice"}
# Where a machine can settle the uncertain call (SFEC's look-up, e-MECeF's pending request).
RESOLVED_BY_THE_GATEWAY = ("cg-sfec", "bj-emecef")


class Processed:
    """Counts the certifications the simulator itself processed with success, answer lost or not
    (it sits inside the fault injector, under its `hang_after_processing`)."""

    def __init__(self, app: Any, path: str) -> None:
        self.app = app
        self.path = path
        self.count = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or self.path not in scope["path"]:
            await self.app(scope, receive, send)
            return

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                self.count += 1
            await send(message)

        await self.app(scope, receive, watch)


class Server:
    """`fiscalgate serve` on a free port, default heartbeat / dead-after, one embedded worker pool."""

    def __init__(self, database_url: str, secret: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("FISCALGATE_")}
        env.update(
            FISCALGATE_SECRET_KEY=secret,
            FISCALGATE_ADMIN_TOKEN=ADMIN,
            FISCALGATE_ALLOW_PRIVATE_URLS="1",  # the simulator runs apart on 127.0.0.1
        )
        argv = [str(FISCALGATE), "serve", "--port", str(self.port), "--database-url", database_url]
        self.out = log.open("ab")
        self.proc = subprocess.Popen(argv, cwd=log.parent, env=env, stdout=self.out, stderr=subprocess.STDOUT)

    async def up(self, deadline: float) -> None:
        with anyio.fail_after(deadline):
            while True:
                assert self.proc.poll() is None, self.log.read_text()
                try:
                    async with httpx.AsyncClient(timeout=1) as c:
                        if (await c.get(f"{self.url}/healthz")).status_code == 200:
                            return
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.out.close()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[[str, str], Server]]:
    started: list[Server] = []

    def start(database_url: str, secret: str) -> Server:
        server = Server(database_url, secret, tmp_path / "serve.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.mark.parametrize(("authority", "country"), [("cg-sfec", "CG"), ("ci-fne", "CI"), ("bj-emecef", "BJ")])
async def test_kill_9_during_a_certification_heals_within_a_minute_of_the_restart(
    database_url: str,
    tmp_path: Path,
    servers: Callable[[str, str], Server],
    authority: str,
    country: str,
) -> None:
    secret = Fernet.generate_key().decode()
    driver = get_driver(authority)
    parsed = driver.parse_settings(mock_settings(authority))
    processed = Processed(driver.mock_app(parsed), CERTIFY_PATH[authority])
    prefix = httpx.URL(driver.base_url(parsed)).path.rstrip("/")  # FNE's routes live under /ws
    injector = FaultInjector(processed)
    # The authority processes the certification, then its answer never comes (the worst case:
    # maybe certified); the process waiting for it is killed meanwhile.
    injector.add("hang_after_processing", method="POST", path=CERTIFY_PATH[authority])

    # The tenant and its approved invoice, set up through an app of the test on the same database.
    setup = create_app(
        database_url, admin_token=ADMIN, secret_key=secret, var_dir=tmp_path / "var", allow_private_urls=True
    )
    with serve_in_thread(injector) as sim_url:
        try:
            settings = mock_settings(authority, base_url=sim_url + prefix, timeout_seconds=120)
            tenant, api = await new_tenant(setup, country=country, settings={authority: settings})
            async with api:
                r = await api.post("/v1/invoices", json={"invoice": real_invoice(authority), "approve": True})
                assert r.status_code == 201, r.text
                invoice_id = r.json()["id"]
        finally:
            gateway(setup).db.dispose()

        key = {"Authorization": f"Bearer {tenant['key']}", "Idempotency-Key": f"certify-{invoice_id}"}
        certify = f"/v1/invoices/{invoice_id}/certify"
        first = servers(database_url, secret)
        await first.up(60)
        interrupted: list[BaseException] = []
        answered: list[httpx.Response] = []

        async def call_and_lose_the_answer() -> None:
            try:
                async with httpx.AsyncClient(base_url=first.url, timeout=120) as c:
                    answered.append(await c.post(certify, headers=key))
            except httpx.TransportError as exc:  # the server died under the request
                interrupted.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call_and_lose_the_answer)
            with anyio.fail_after(30):
                while processed.count == 0:  # the event happens in the simulator's thread
                    assert not answered, answered[0].text
                    await anyio.sleep(0.02)
            first.proc.kill()  # SIGKILL while the certification is in flight
            first.proc.wait(10)
        assert interrupted, "the request was answered before the kill"

        second = servers(database_url, secret)
        restarted = time.monotonic()
        await second.up(60)
        async with httpx.AsyncClient(base_url=second.url, headers=key, timeout=30) as c:
            # Right after the restart the invoice is still `submitting` under the dead process's
            # claim; it must not stay so: wait for the event itself, with the deadline.
            with anyio.fail_after(60 - (time.monotonic() - restarted)):
                while True:
                    inv = (await c.get(f"/v1/invoices/{invoice_id}")).json()
                    if inv["status"] not in ("submitting", "approved", "queued") and (
                        authority not in RESOLVED_BY_THE_GATEWAY or inv["status"] == "certified"
                    ):
                        break
                    await anyio.sleep(0.2)
            healed_in = time.monotonic() - restarted

            # The interrupted request, retried with its key: an answer, not 409 "in progress".
            again = await c.post(certify)
        if authority in RESOLVED_BY_THE_GATEWAY:  # found again: certified, sent once
            assert inv["status"] == "certified" and inv["reference"], inv
            assert again.status_code == 200, again.text
            assert again.json()["reference"] == inv["reference"]
            assert again.headers.get("Fiscalgate-Already-Certified") == "true"
        else:  # FNE has no look-up: plainly waiting for a person, never sent again
            assert inv["status"] == "unknown", inv
            assert "process handling the call stopped" in inv["status_detail"], inv
            assert again.status_code == 409, again.text
            # the invoice's own answer ("reconcile it first"), not the key's "in progress"
            assert again.json()["code"] == "invoice.cannot_certify.unknown", again.text
        assert processed.count == 1, "certified twice at the authority"
        assert healed_in < 60
        print(f"{authority}: healed {healed_in:.1f} s after the restart")
