"""The gateway's process-wide state: database, secret box, admin token, drivers, simulators."""

from __future__ import annotations

import logging
import secrets
import ssl
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpx
from starlette.types import ASGIApp

from fiscalgate.authorities.base import AuthorityDriver, AuthoritySettings
from fiscalgate.authorities.http import guarded_transport
from fiscalgate.core.errors import ConfigurationError
from fiscalgate.gateway import netpolicy
from fiscalgate.gateway.authorities import DriverLookup, default_lookup
from fiscalgate.gateway.crypto import SecretBox
from fiscalgate.gateway.db import READ_ONLY, make_engine, make_read_engine, make_sessionmaker
from fiscalgate.gateway.settings.mock_state import MockStateStore
from fiscalgate.simkit.app import SimulatorApp
from fiscalgate.simkit.journal import Changes
from fiscalgate.simkit.snapshot import SnapshotError

T = TypeVar("T")
log = logging.getLogger(__name__)

PUBLIC_URL_ENV = "FISCALGATE_PUBLIC_URL"


def normalise_public_url(url: str) -> str:
    """`http(s)://host[:port][/path]` without a trailing slash, query or fragment."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError(
            f"the public URL must be http(s)://host[:port][/path], not {url!r}", code="settings.public_url"
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def mock_prefix(tenant_id: str, authority: str) -> str:
    """Where a tenant's in-process simulator is mounted under the gateway's public URL."""
    return f"/mock/{tenant_id}/{authority}"


class Database:
    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.engine = make_engine(database_url)
        self.sessions = make_sessionmaker(self.engine)
        # SQLite runs one write transaction at a time (ours all start with BEGIN IMMEDIATE). Queue
        # them on a lock in this process instead of SQLite's busy handler, which polls with sleeps
        # of up to 100 ms; other processes on the same file still wait through busy_timeout.
        sqlite = self.engine.dialect.name == "sqlite"
        self._serial: AbstractContextManager[Any] = threading.Lock() if sqlite else nullcontext()
        # Pure reads (the API-key look-up of every request, GETs) need no place in that queue:
        # on SQLite they start a deferred transaction (one WAL snapshot, beside the writer, see
        # db.py); on PostgreSQL they go through an autocommit, read-only pool (`make_read_engine`).
        self.read_engine = make_read_engine(database_url)
        self.readers = make_sessionmaker(
            self.read_engine or self.engine.execution_options(**{READ_ONLY: True})
        )

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(session, *args)` in one transaction, committed when it returns."""
        with self._serial, self.sessions.begin() as session:
            return fn(session, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`call` in a worker thread; not abandoned on cancellation, so a started transaction
        always finishes (commit or rollback) before the caller moves on."""
        return await anyio.to_thread.run_sync(self.call, fn, *args)

    def read_call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(session, *args)`, which must only read (checked: it may not add, change or
        delete anything), outside the write queue."""
        with self.readers() as session:
            result = fn(session, *args)
            if session.new or session.dirty or session.deleted:
                session.rollback()
                raise RuntimeError(f"{getattr(fn, '__name__', fn)!r} changed data inside a read-only unit")
            session.rollback()  # nothing to commit; ends SQLite's read transaction
            return result

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """`read_call` in a worker thread."""
        return await anyio.to_thread.run_sync(self.read_call, fn, *args)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not None:
            self.read_engine.dispose()


class SimulatorCache:
    """One in-process simulator per (tenant, authority), kept for the process lifetime, so a mock
    tenant's counters and certified invoices persist between calls (credit notes need them).

    It is created from the settings in force at the first call and not rebuilt when they change:
    like a real platform, it then refuses credentials it was not configured with. With a `store`
    (the gateway's database), its memory outlives the process: a simulator created after a
    restart starts from the memory stored, and stores what changed after each call.
    """

    def __init__(self, store: MockStateStore | None = None) -> None:
        self._apps: dict[tuple[str, str], ASGIApp] = {}
        self._lock = threading.Lock()
        self.store = store

    def get(self, tenant_id: str, driver: AuthorityDriver, settings: AuthoritySettings) -> ASGIApp:
        key = (tenant_id, driver.code)
        with self._lock:
            if key not in self._apps:
                self._apps[key] = self._create(tenant_id, driver, settings)
            return self._apps[key]

    def _create(self, tenant_id: str, driver: AuthorityDriver, settings: AuthoritySettings) -> ASGIApp:
        app = driver.mock_app(settings)
        store = self.store
        if store is None or not isinstance(app, SimulatorApp):
            return app
        remembered, kept = store.load(tenant_id, driver.code)
        if remembered is not None:
            try:
                app.import_state(remembered, kept=kept)
            except SnapshotError as exc:  # written by an incompatible version: start afresh, say so
                log.warning("mock %s simulator of tenant %s starts empty: %s", driver.code, tenant_id, exc)

        async def keep(version: int, changes: Changes) -> None:
            await store.save(tenant_id, driver.code, version, changes)

        app.on_change = keep
        return app

    def find(self, tenant_id: str, authority: str) -> ASGIApp | None:
        """The tenant's running simulator, if any; never creates one."""
        with self._lock:
            return self._apps.get((tenant_id, authority))

    def install(self, tenant_id: str, authority: str, app: ASGIApp) -> None:
        """Put a given simulator in place (tests wrap one to count or fail calls)."""
        with self._lock:
            self._apps[(tenant_id, authority)] = app


# In-process wake-ups (queue): an enqueue wakes this process's workers at once, and a settled
# attempt wakes the requests waiting for that invoice. Other processes poll, so a lost signal only
# costs latency, never work. Used from the event loop only.
class QueueSignals:
    def __init__(self) -> None:
        self._work: list[anyio.Event] = []
        self._settled: dict[str, list[anyio.Event]] = {}

    def wake(self) -> None:
        waiting, self._work = self._work, []
        for event in waiting:
            event.set()

    async def wait_for_work(self, seconds: float) -> None:
        event = anyio.Event()
        self._work.append(event)
        with anyio.move_on_after(seconds):
            await event.wait()

    def settled(self, invoice_id: str) -> None:
        for event in self._settled.pop(invoice_id, []):
            event.set()

    async def wait_settled(self, invoice_id: str, seconds: float) -> None:
        event = anyio.Event()
        self._settled.setdefault(invoice_id, []).append(event)
        try:
            with anyio.move_on_after(seconds):
                await event.wait()
        finally:
            waiting = self._settled.get(invoice_id)
            if waiting and event in waiting:
                waiting.remove(event)
                if not waiting:
                    del self._settled[invoice_id]


@dataclass
class Gateway:
    db: Database
    box: SecretBox
    admin_token: str
    driver_lookup: DriverLookup = default_lookup
    simulators: SimulatorCache = field(default_factory=SimulatorCache)
    # Where clients reach this gateway (`normalise_public_url` form); None when unknown (the app
    # used in-process), in which case mock calls go to the drivers' placeholder hosts as before.
    public_url: str | None = None
    # This process's id once it beats (queue/healing.py); claims it makes carry it.
    process_id: str | None = None
    queue: QueueSignals = field(default_factory=QueueSignals)
    # Operator's choice (FISCALGATE_ALLOW_PRIVATE_URLS=1): tenants' authority URLs may then name
    # loopback / private hosts (simulators run apart). Otherwise refused at save and call time.
    allow_private_urls: bool = False
    _tls: ssl.SSLContext | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.simulators.store is None:
            self.simulators.store = MockStateStore(self.db)

    def driver(self, code: str) -> AuthorityDriver:
        return self.driver_lookup(code)

    @property
    def admin_tokens(self) -> tuple[str, ...]:
        """Every accepted administrator token: `admin_token` may list several, comma-separated, so
        that a new one can be rolled out before the old one is withdrawn (no downtime)."""
        return tuple(t.strip() for t in self.admin_token.split(",") if t.strip())

    def is_admin_token(self, token: str) -> bool:
        given = token.encode()
        # Every token compared (no early exit), each in constant time.
        return sum(secrets.compare_digest(given, t.encode()) for t in self.admin_tokens) > 0

    def simulator_connection(
        self, tenant_id: str, driver: AuthorityDriver, settings: AuthoritySettings
    ) -> tuple[httpx.ASGITransport, str]:
        """(transport, base URL) for a call to the tenant's in-process simulator.

        With a public URL the simulator is reached as if mounted at `mount URL` =
        `{public_url}/mock/{tenant}/{authority}`: the base URL is that plus the path of the
        driver's placeholder URL (FNE: `/ws`), and the transport passes the mount's path as the
        ASGI `root_path`, so the simulator's routes still match (Starlette strips `root_path`
        from the path) and `request.base_url` includes it. Without one, nothing changes: the
        placeholder URL, no `root_path`."""
        app = self.simulators.get(tenant_id, driver, settings)
        placeholder = driver.base_url(settings)
        if self.public_url is None:
            return httpx.ASGITransport(app=app), placeholder
        mount = self.public_url + mock_prefix(tenant_id, driver.code)
        transport = httpx.ASGITransport(app=app, root_path=urlsplit(mount).path)
        return transport, mount + urlsplit(placeholder).path.rstrip("/")

    def network_transport(self) -> httpx.AsyncBaseTransport:
        """A fresh transport for one call to a platform over the network (sandbox, production, or
        a simulator run apart). Fresh, as before: no connection is kept between calls, since a
        stale keep-alive connection could turn a resend into a false "outcome unknown". Only its
        TLS context (CA bundle, verification on, as httpx builds it by default) is built once per
        process: loading the CA bundle costs ~25 ms of CPU, more than the gateway spends on the
        rest of a certification. The context holds no per-tenant state."""
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return guarded_transport(self._check_destination, verify=self._tls)

    def _check_destination(self, host: str, address: netpolicy.IPAddress) -> None:
        """Call-time check of every address an authority host resolves to (see `netpolicy`)."""
        netpolicy.check_address(address, host=host, allow_private=self.allow_private_urls)
