"""Storage plumbing: the declarative base, timezone-aware datetimes, engines, sessions, migrations.

Synchronous SQLAlchemy: the async extension needs `greenlet`, which is not among the project's
dependencies. The async routes run each short unit of database work in a worker thread
(`Database.run`), so the event loop stays free while a transaction waits for a lock, and no
transaction is ever held open across an authority call.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from alembic import command
from alembic.config import Config
from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from sqlalchemy import DateTime, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

DEFAULT_DATABASE_URL = "sqlite:///./var/fiscalgate.db"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every database (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timezone-aware column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _storable(value: datetime) -> datetime:
    # 0001-01-01T00:00+14:00 is year 0 in UTC: no database column (nor Python) can hold it.
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the date is out of range once converted to UTC") from None
    return value


# An aware datetime that a `UTCDateTime` column can store (API inputs: filters, dates given by hand).
StoredDatetime = Annotated[AwareDatetime, AfterValidator(_storable)]


def _day_or_moment(end_of_day: bool) -> Any:
    """A filter bound: an aware datetime, or a plain date `YYYY-MM-DD` read in UTC (the start of
    that day for a lower bound; the start of the next day for an upper one, so that
    `created_before=2026-03-31` includes all of 31 March)."""

    def parse(value: Any) -> Any:
        if isinstance(value, str) and len(value.strip()) == 10:
            try:
                day = date.fromisoformat(value.strip())
            except ValueError:
                return value  # not a date: judged as a datetime, with that error
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end_of_day else start
        return value

    return BeforeValidator(parse)


FromBound = Annotated[StoredDatetime, _day_or_moment(end_of_day=False)]
UntilBound = Annotated[StoredDatetime, _day_or_moment(end_of_day=True)]
# The largest `offset` the databases take (a signed 64-bit integer).
MAX_OFFSET = 2**63 - 1


class Base(DeclarativeBase):
    pass


def normalise_url(database_url: str) -> URL:
    """The URL the gateway uses: SQLite via pysqlite, PostgreSQL via psycopg 3 (async driver names
    such as `sqlite+aiosqlite` are accepted and mapped to their synchronous sibling)."""
    url = make_url(database_url)
    if url.drivername in ("sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"):
        url = url.set(drivername="sqlite+pysqlite")
    elif url.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg_async"):
        url = url.set(drivername="postgresql+psycopg")
    else:
        raise ValueError(f"unsupported database URL driver {url.drivername!r}: use sqlite or postgresql")
    if url.drivername.startswith("sqlite"):
        if not url.database or url.database == ":memory:":
            # Each pooled connection would get its own empty in-memory database.
            raise ValueError("the gateway needs a SQLite *file* (e.g. sqlite:///./var/fiscalgate.db)")
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level so SQLAlchemy's "begin" hook below decides how transactions
    # start; WAL lets readers run beside the writer; the busy timeout makes writers queue up.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


READ_ONLY = "fiscalgate_read_only"  # execution option of the engine `Database.read` uses


def _sqlite_begin_immediate(connection: Any) -> None:
    # Take the write lock when the transaction starts, not when its first write comes: a read that
    # later upgrades to a write could otherwise fail at once with "database is locked" instead of
    # waiting its turn. Transactions here are short (never held across an authority call).
    # Read-only units (`Database.read`) never write, so they take a plain deferred BEGIN: in WAL
    # mode it reads one consistent snapshot without queueing behind the writer.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _tune_sqlite(sync_engine: Engine) -> None:
    event.listen(sync_engine, "connect", _sqlite_pragmas)
    event.listen(sync_engine, "begin", _sqlite_begin_immediate)


def _postgres_read_only(dbapi_connection: Any, _record: Any) -> None:
    # Every statement of this pool runs in its own read-only transaction: the server itself
    # refuses a write that would slip into a read-only unit.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET default_transaction_read_only = on")


def make_engine(database_url: str) -> Engine:
    url = normalise_url(database_url)
    if url.drivername.startswith("sqlite"):
        engine = create_engine(
            url, pool_size=10, max_overflow=10, pool_timeout=60, connect_args={"check_same_thread": False}
        )
        _tune_sqlite(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def make_read_engine(database_url: str) -> Engine | None:
    """PostgreSQL: a small pool in autocommit for the read-only units. Under READ COMMITTED each
    statement sees what was committed before it anyway, so a read needs no BEGIN/ROLLBACK: two
    round trips fewer per read (two reads per API request: the key, then the GET). SQLite: None
    (its read-only units use the main engine, see `_sqlite_begin_immediate`)."""
    url = normalise_url(database_url)
    if url.drivername.startswith("sqlite"):
        return None
    engine = create_engine(
        url, pool_size=5, max_overflow=10, pool_pre_ping=True, isolation_level="AUTOCOMMIT"
    )
    event.listen(engine, "connect", _postgres_read_only)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("fiscalgate.gateway") / "migrations"))
    return cfg


def _run(database_url: str, action: str, revision: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            cfg = _alembic_config()
            cfg.attributes["connection"] = connection
            before = _current_revision(connection)
            if action == "upgrade":
                command.upgrade(cfg, revision)
            else:
                command.downgrade(cfg, revision)
            changed = _current_revision(connection) != before
        if changed and action == "upgrade" and engine.dialect.name == "postgresql":
            # Fresh statistics for the planner: new indexes (0011's lists) and tables are used at
            # once, and the per-certification reference check does not pick a stale plan.
            with engine.connect() as connection:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                tables = connection.scalars(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                ).all()
                if tables:  # this schema's tables only, not every schema of the database
                    connection.execute(text("ANALYZE " + ", ".join(f'"{t}"' for t in tables)))
    finally:
        engine.dispose()


def _current_revision(connection: Any) -> str | None:
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(sorted(heads)) or None


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the schema up to `revision` (the app and `serve` call this at startup)."""
    _run(database_url, "upgrade", revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    _run(database_url, "downgrade", revision)
