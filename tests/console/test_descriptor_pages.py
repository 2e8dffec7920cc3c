"""What the console shows per authority comes from its descriptor: the reconcile choices on an
`unknown` invoice, the sticker figure on the dashboard, the module labels on the admin form. The
list comes from the registry, so a new authority is covered without editing this file."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import update

from fiscalgate.authorities import descriptors
from fiscalgate.authorities.descriptor import RECONCILE_ACTIONS, AuthorityDescriptor
from tests.console.conftest import World

pytestmark = pytest.mark.anyio

DESCRIPTORS = descriptors()
IDS = [d.code for d in DESCRIPTORS]


def _make_unknown(world: World, invoice_id: str) -> None:
    from fiscalgate.gateway.invoices.models import InvoiceRow

    world.gw.db.call(
        lambda s: s.execute(
            update(InvoiceRow).where(InvoiceRow.id == invoice_id).values(status="unknown", environment="mock")
        )
    )


@pytest.mark.parametrize("described", DESCRIPTORS, ids=IDS)
async def test_an_unknown_invoice_offers_the_authoritys_reconcile_actions(
    world: World, signed_in: Any, described: AuthorityDescriptor
) -> None:
    invoice_id = world.invoice(described.code)
    _make_unknown(world, invoice_id)
    client = await signed_in("accountant@demo.test")
    page = await client.get(f"/console/invoices/{invoice_id}")
    assert page.status_code == 200
    offered = re.findall(r'name="action" value="([a-z_]+)"', page.text)
    assert offered == list(described.reconcile.actions)
    assert set(offered) <= set(RECONCILE_ACTIONS)


async def test_the_dashboard_shows_stickers_only_where_the_authority_reports_them(
    world: World, signed_in: Any
) -> None:
    for described in DESCRIPTORS:
        world.invoice(described.code)  # every authority gets a tile (its settings exist in mock)
    client = await signed_in("owner@demo.test")
    dash = await client.get("/console/dashboard")
    assert dash.status_code == 200
    tiles = dash.text.split('<section class="card tile"')[1:]
    assert len(tiles) >= len(DESCRIPTORS)
    stickers = {d.name: d.sticker_balance for d in DESCRIPTORS}
    seen = set()
    for tile in tiles:
        heading = re.search(r"<h2[^>]*>([^<]+)", tile)
        assert heading is not None
        name = heading.group(1).strip()
        if name in stickers:
            seen.add(name)
            assert ("Stickers restants" in tile) is stickers[name], name
    assert seen == set(stickers)


@pytest.mark.parametrize("lang", ["fr", "en"])
async def test_the_admin_form_names_every_module_in_the_users_language(
    world: World, signed_in: Any, lang: str
) -> None:
    client = await signed_in("admin@platform.test")
    page = await client.get("/console/admin", headers={"Accept-Language": lang})
    assert page.status_code == 200
    for described in DESCRIPTORS:
        assert f'value="{described.module}"' in page.text
        assert described.label(lang).replace("'", "&#39;") in page.text
