"""`GET /mock/{tenant_id}/{authority}/{path}`: the public pages of a tenant's in-process simulator.

Mock certifications made while the gateway knows its public URL carry QR / verification URLs under
`{public_url}/mock/{tenant}/{authority}/`; this route makes them open. No authentication: it
mirrors the authorities' public verification pages, which anyone holding the printed invoice may
open. Only the pages each authority's descriptor lists (`simulator_pages`) are forwarded (never a
simulator's API or its `/_sim` control endpoints), only with GET, and only to the simulator of a
tenant whose settings are in mock: one not running yet in this process (after a restart) is woken
from the memory the database keeps, so verification URLs handed out before the restart still open.
"""

from __future__ import annotations

import re

import anyio
import httpx
from fastapi import APIRouter, Request, Response

from fiscalgate.authorities import descriptor
from fiscalgate.core.errors import ConfigurationError
from fiscalgate.gateway.errors import ApiError, NotFound
from fiscalgate.gateway.runtime import Gateway, mock_prefix
from fiscalgate.gateway.settings.service import mock_simulator_settings


def public_pages(authority: str) -> tuple[re.Pattern[str], ...]:
    """The simulator's public pages (paths relative to its root), from the authority's descriptor;
    none for anything but an authority's exact code."""
    try:
        described = descriptor(authority)
    except ConfigurationError:
        return ()
    return described.page_patterns() if described.code == authority else ()


# An in-process page answers in microseconds; this only bounds a fault left queued on it.
FORWARD_TIMEOUT = 10.0
# Response headers passed on from the simulator's page.
_KEPT_HEADERS = ("content-type", "cache-control", "content-language")


class SimulatorPageUnavailable(ApiError):
    default_code = "mock.page_unavailable"
    http_status = 504


router = APIRouter(tags=["mock"])


@router.get("/mock/{tenant_id}/{authority}/{path:path}", response_class=Response)
async def mock_public_page(tenant_id: str, authority: str, path: str, request: Request) -> Response:
    """A public page (e.g. FNE's invoice verification page) of the tenant's mock simulator."""
    gw: Gateway = request.app.state.gateway
    # One answer for an unknown page, an unknown tenant (or one with no simulator) and an unknown
    # token, so that the page does not tell which tenant ids exist (issue 14).
    not_found = NotFound(f"no public mock page at {authority}/{path}", code="mock.page_not_found")
    if not any(page.fullmatch(path) for page in public_pages(authority)):
        raise not_found
    simulator = gw.simulators.find(tenant_id, authority)
    if simulator is None:
        # Not called yet in this process (a restart): woken from the memory the database keeps,
        # so verification URLs handed out before the restart still open.
        found = await gw.db.read(mock_simulator_settings, gw, tenant_id, authority)
        if found is not None:
            simulator = await anyio.to_thread.run_sync(gw.simulators.get, tenant_id, *found)
    if simulator is None:
        raise not_found
    # Reached the way certifications reach it: mounted at this route's prefix (ASGI root_path).
    mount = str(request.base_url).rstrip("/") + mock_prefix(tenant_id, authority)
    transport = httpx.ASGITransport(app=simulator, root_path=httpx.URL(mount).path)
    try:
        async with httpx.AsyncClient(transport=transport) as forward:
            with anyio.fail_after(FORWARD_TIMEOUT):
                answer = await forward.get(f"{mount}/{path}")
    except (httpx.HTTPError, TimeoutError) as exc:
        raise SimulatorPageUnavailable(
            f"the {authority} simulator did not answer ({type(exc).__name__})"
        ) from None
    if answer.status_code == 404:
        raise not_found
    headers = {k: v for k, v in answer.headers.items() if k.lower() in _KEPT_HEADERS}
    return Response(answer.content, status_code=answer.status_code, headers=headers)
