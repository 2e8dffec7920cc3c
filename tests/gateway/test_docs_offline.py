"""`/docs` works without the internet: every asset it loads is served by the gateway."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI

from tests.gateway.conftest import client

pytestmark = pytest.mark.anyio


async def test_docs_page_and_its_assets_are_served_locally(real_app: FastAPI) -> None:
    async with client(real_app, None) as anyone:
        page = await anyone.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        links = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
        assets = [link for link in links if not link.startswith("#")]
        assert assets and all(link.startswith("/docs/assets/") for link in assets), assets
        assert "cdn" not in page.text.lower()
        for link in assets:
            r = await anyone.get(link)
            assert r.status_code == 200 and len(r.content) > 100, link
        assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text
        assert (await anyone.get("/openapi.json")).status_code == 200
        assert (await anyone.get("/redoc")).status_code == 404  # CDN-only: not offered
