"""Shared fixtures. Async tests use `@pytest.mark.anyio` (asyncio backend)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL URL for tests that need a real server.

    Skipped with a reason when FISCALGATE_TEST_POSTGRES_URL is unset; `.ci/run` sets it together
    with FISCALGATE_REQUIRE_POSTGRES=1, which turns the skip into a failure.
    """
    url = os.environ.get("FISCALGATE_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("FISCALGATE_REQUIRE_POSTGRES") == "1":
            pytest.fail("FISCALGATE_REQUIRE_POSTGRES=1 but FISCALGATE_TEST_POSTGRES_URL is not set")
        pytest.skip(
            "PostgreSQL tests need FISCALGATE_TEST_POSTGRES_URL "
            "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test); .ci/run sets it"
        )
    return url
