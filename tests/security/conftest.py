"""The gateway fixtures (SQLite and PostgreSQL) for the security tests."""

from tests.gateway.conftest import database_url, fake_app, fakes, make_app, pg_session_url  # noqa: F401
