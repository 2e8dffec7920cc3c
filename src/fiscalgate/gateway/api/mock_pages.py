"""`GET /mock/{tenant_id}/{authority}/{path}`: the public pages of a tenant's in-process simulator.

Mock certifications made while the gateway knows its public URL carry QR / verification URLs under
`{public_url}/mock/{tenant}/{authority}/`; this route makes them open. No authentication: it
mirrors the authorities' public verification pages, which anyone holding the printed invoice may
open. Only the pages listed in `PUBLIC_PAGES` are forwarded (never a simulator's API or its `/_sim`
control endpoints), only with GET, and only to a simulator already running for that tenant: the
route never creates one.
"""

from __future__ import annotations

import re

import anyio
import httpx
from fastapi import APIRouter, Request, Response

from fiscalgate.gateway.errors import ApiError, NotFound
from fiscalgate.gateway.runtime import Gateway, mock_prefix

# The simulators' public pages, as paths relative to the simulator's root. FNE: the verification
# page its QR codes point at (spec fne.md §8.7). The e-MECeF and SFEC simulators serve no public
# page today, so nothing is forwarded to them.
PUBLIC_PAGES: dict[str, tuple[re.Pattern[str], ...]] = {
    "ci-fne": (re.compile(r"fr/verification/[A-Za-z0-9-]{1,100}"),),
}
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
    # One answer for an unknown page, an unknown tenant (or one with no simulator running) and an
    # unknown token, so that the page does not tell which tenant ids exist (issue 14).
    not_found = NotFound(f"no public mock page at {authority}/{path}", code="mock.page_not_found")
    if not any(page.fullmatch(path) for page in PUBLIC_PAGES.get(authority, ())):
        raise not_found
    simulator = gw.simulators.find(tenant_id, authority)
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
