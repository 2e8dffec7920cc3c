"""Transport faults: what the caller learns, and how reconcile resolves it (in-process, 0.2 s timeout)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from fiscalgate.core.errors import (
    AuthorityAuthError,
    AuthorityServerError,
    AuthorityUnreachable,
    InvoiceRejected,
    OutcomeUnknown,
)

from .conftest import Emecef
from .samples import official_example

pytestmark = pytest.mark.anyio


async def test_timeout_after_the_post_is_unknown_then_reconcile_finds_and_confirms_it(
    emecef_local: Emecef,
) -> None:
    env = emecef_local
    env.sim.add("hang_after_processing", path="/api/invoice", method="POST", seconds=0.5)
    invoice = official_example(aib="B")
    with pytest.raises(OutcomeUnknown) as info:
        await env.driver.certify(invoice, env.settings, env.connection)
    assert info.value.checkpoint["uid"] is None  # no uid was received
    assert len(env.platform.pending) == 1  # but the e-MCF recorded it
    result = await env.driver.reconcile(invoice, env.settings, env.connection, info.value.checkpoint)
    assert result.status == "certified" and result.certification is not None
    assert result.certification.totals["total"] == 5170


async def test_timeout_on_confirm_carries_the_uid(emecef_local: Emecef) -> None:
    env = emecef_local
    env.sim.add("hang_after_processing", path="/confirm", seconds=0.5)
    invoice = official_example()
    with pytest.raises(OutcomeUnknown) as info:
        await env.driver.certify(invoice, env.settings, env.connection)
    uid = info.value.checkpoint["uid"]
    assert env.platform.finalised[uid] == "confirmed"  # it did certify, the answer was lost
    result = await env.driver.reconcile(invoice, env.settings, env.connection, info.value.checkpoint)
    assert result.status == "unknown" and uid in result.detail


async def test_timeout_on_confirm_of_an_unprocessed_request_reconciles_to_certified(
    emecef_local: Emecef,
) -> None:
    env = emecef_local
    env.sim.add("drop_before_processing", path="/confirm", seconds=0.5)
    invoice = official_example()
    with pytest.raises(OutcomeUnknown) as info:
        await env.driver.certify(invoice, env.settings, env.connection)
    result = await env.driver.reconcile(invoice, env.settings, env.connection, info.value.checkpoint)
    assert result.status == "certified"


async def test_server_error_is_retryable_and_nothing_is_recorded(emecef_local: Emecef) -> None:
    env = emecef_local
    env.sim.add("error", path="/api/invoice", status=503, body={"title": "Service Unavailable"})
    with pytest.raises(AuthorityServerError) as info:
        await env.driver.certify(official_example(), env.settings, env.connection)
    assert (
        info.value.http_status == 503 and info.value.retryable and "Service Unavailable" in info.value.message
    )
    assert env.platform.pending == {}


async def test_unreachable_host() -> None:
    from fiscalgate.authorities import get_driver
    from fiscalgate.authorities.base import Connection, Environment
    from fiscalgate.simkit.serve import free_port

    driver = get_driver("bj-emecef")
    settings = driver.parse_settings(driver.mock_credentials())
    connection = Connection(f"http://127.0.0.1:{free_port()}", Environment.MOCK, timeout=0.5)
    with pytest.raises(AuthorityUnreachable):
        await driver.certify(official_example(), settings, connection)


async def test_control_endpoint_moves_the_clock_and_rejects_unknown_codes(emecef_local: Emecef) -> None:
    env = emecef_local
    async with env.client() as client:
        await client.submit(env.driver.build_payload(official_example(), env.settings))
    async with httpx.AsyncClient(base_url=env.connection.base_url, transport=env.connection.transport) as raw:
        assert (await raw.post("/_sim/emecef", json={"advance_clock_seconds": 120})).json()["pending"] == 1
        assert len(env.platform.pending) == 1  # expiry happens on the next call
        assert (await raw.post("/_sim/emecef", json={"next_submit_errors": [42]})).status_code == 400
    async with env.client() as client:
        assert (await client.status()).pending_requests_count == 0


@pytest.mark.parametrize(
    "body",
    [
        {"dateTime": None, "qrCode": "", "codeMECeFDGI": ""},
        {"dateTime": "2026-07-16T11:00:00", "qrCode": "F;x", "codeMECeFDGI": "TEST-WZK2-KC5G-C5YW-HB23-KB7G"},
        {"dateTime": "16/07/2026 11:00:00", "qrCode": "F;x", "codeMECeFDGI": "TEST-0000-1111"},
    ],
    ids=["empty", "time-format", "code-format"],
)
async def test_unprintable_confirm_answer_is_an_unknown_outcome_never_a_retry(
    emecef_local: Emecef, body: dict[str, Any]
) -> None:
    env = emecef_local
    env.sim.add("error", path="/confirm", status=200, body=body)
    with pytest.raises(OutcomeUnknown) as info:
        await env.driver.certify(official_example(), env.settings, env.connection)
    error = info.value
    assert error.code == "authority.malformed_answer" and not error.retryable
    assert error.raw["uid"] == error.checkpoint["uid"] and error.checkpoint["uid"] in env.platform.pending
    assert error.checkpoint["submitted_totals"]["total"] == 4950


def _answer_502_after_processing(app: Any) -> Any:
    """A proxy in front of the e-MCF that lets the request through, then loses the answer (502)."""

    async def proxy(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/confirm"):
            await app(scope, receive, send)
            return

        async def swallow(message: Any) -> None:
            pass

        await app(scope, receive, swallow)
        await send(
            {"type": "http.response.start", "status": 502, "headers": [(b"content-type", b"text/html")]}
        )
        await send({"type": "http.response.body", "body": b"<html>502 Bad Gateway</html>"})

    return proxy


async def test_5xx_on_confirm_after_processing_is_unknown_and_never_certifies_twice(
    emecef_local: Emecef,
) -> None:
    env = emecef_local
    connection = replace(
        env.connection, transport=httpx.ASGITransport(app=_answer_502_after_processing(env.sim))
    )
    invoice = official_example(aib="B")
    with pytest.raises(OutcomeUnknown) as info:
        await env.driver.certify(invoice, env.settings, connection)
    error = info.value
    assert (error.http_status, error.resolution.value, error.retryable) == (502, "reconcile", False)
    uid = error.checkpoint["uid"]
    assert env.platform.finalised[uid] == "confirmed" and env.platform.total_counter == 1
    result = await env.driver.reconcile(invoice, env.settings, env.connection, error.checkpoint)
    assert result.status == "unknown" and uid in result.detail
    assert env.platform.total_counter == 1  # nothing was submitted or confirmed again


async def test_5xx_on_confirm_before_processing_reconciles_to_certified(emecef_local: Emecef) -> None:
    env = emecef_local
    env.sim.add("error", path="/confirm", status=503, body={"title": "Service Unavailable"})
    invoice = official_example(aib="B")
    with pytest.raises(OutcomeUnknown) as info:
        await env.driver.certify(invoice, env.settings, env.connection)
    assert info.value.http_status == 503 and info.value.checkpoint["uid"] in env.platform.pending
    result = await env.driver.reconcile(invoice, env.settings, env.connection, info.value.checkpoint)
    assert result.status == "certified" and result.certification is not None
    assert result.certification.totals["total"] == 5170
    assert result.certification.authority_data["totals_source"] == "e-mcf"  # from the error's checkpoint


async def test_error_99_on_confirm_is_unknown_with_the_official_text(emecef_local: Emecef) -> None:
    env = emecef_local
    text = "Erreur lors du traitement de la demande"
    env.sim.add("error", path="/confirm", status=200, body={"errorCode": "99", "errorDesc": text})
    with pytest.raises(OutcomeUnknown) as info:
        await env.driver.certify(official_example(), env.settings, env.connection)
    assert (info.value.authority_code, info.value.authority_message) == ("99", text)
    assert info.value.checkpoint["uid"] in env.platform.pending


async def test_definite_answers_to_confirm_keep_their_kind(emecef_local: Emecef) -> None:
    env = emecef_local
    env.sim.add("error", path="/confirm", status=401, body=None)
    with pytest.raises(AuthorityAuthError):
        await env.driver.certify(official_example(), env.settings, env.connection)


async def test_reconcile_cancel_of_a_request_finalised_meanwhile_is_unknown(emecef_local: Emecef) -> None:
    env = emecef_local
    invoice = official_example()
    async with env.client() as client:
        answer = await client.submit(env.driver.build_payload(invoice, env.settings))
    env.sim.add(
        "error",
        path="/cancel",
        status=200,
        body={"errorCode": "20", "errorDesc": "La facture n'existe pas ou elle est déjà finalisée / annulée"},
    )
    result = await env.driver.reconcile(
        invoice, env.settings, env.connection, {"uid": answer.uid}, decision="cancel"
    )
    assert result.status == "unknown" and "no longer pending" in result.detail


async def test_non_json_answer_is_a_server_error(emecef_local: Emecef) -> None:
    env = emecef_local
    env.sim.add("error", path="/api/info/taxGroups", status=200, body=["not", "an", "object"])
    async with env.client() as client:
        with pytest.raises(AuthorityServerError, match="unexpected answer"):
            await client.tax_groups()


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (400, "InvoiceRejected", "authority.rejected.bad_request"),
        (403, "AuthorityAuthError", "authority.auth.token_refused"),
        (404, "AuthorityServerError", "authority.endpoint_not_found"),
        (429, "RateLimited", "authority.rate_limited"),
        (502, "AuthorityServerError", "authority.http_502"),
    ],
)
async def test_http_statuses_are_classified(emecef_local: Emecef, status: int, kind: str, code: str) -> None:
    from fiscalgate.core.errors import AuthorityError

    env = emecef_local
    env.sim.add("error", path="/api/invoice", status=status, body={"title": "x"})
    with pytest.raises(AuthorityError) as info:
        await env.driver.certify(official_example(), env.settings, env.connection)
    assert (type(info.value).__name__, info.value.code, info.value.http_status) == (kind, code, status)


async def test_reconcile_when_the_request_expires_between_details_and_confirm(emecef_local: Emecef) -> None:
    env = emecef_local
    invoice = official_example()
    async with env.client() as client:
        answer = await client.submit(env.driver.build_payload(invoice, env.settings))
    env.sim.add(
        "error", path="/confirm", status=200, body={"errorCode": "20", "errorDesc": "La facture n'existe pas"}
    )
    result = await env.driver.reconcile(invoice, env.settings, env.connection, {"uid": answer.uid})
    assert result.status == "unknown" and "no longer pending" in result.detail


async def test_latency_within_the_timeout_still_certifies(emecef_local: Emecef) -> None:
    env = emecef_local
    env.sim.add("latency", path="/api/invoice", seconds=0.05, times=-1)
    cert = await env.driver.certify(official_example(), env.settings, env.connection)
    assert cert.counters == "1/1 FV"


async def test_a_post_lost_before_processing_reconciles_to_not_certified_then_certifies_once(
    emecef_local: Emecef,
) -> None:
    env = emecef_local
    env.sim.add("drop_before_processing", path="/api/invoice", method="POST", seconds=0.5)
    invoice = official_example(aib="B")
    with pytest.raises(OutcomeUnknown) as info:
        await env.driver.certify(invoice, env.settings, env.connection)
    assert info.value.checkpoint == {"stage": "submit", "uid": None, "submitted_totals": None}
    assert env.platform.pending == {}
    result = await env.driver.reconcile(invoice, env.settings, env.connection, info.value.checkpoint)
    assert result.status == "not_certified" and "safe to resubmit" in result.detail
    cert = await env.driver.certify(invoice, env.settings, env.connection)
    assert cert.counters == "1/1 FV" and env.platform.total_counter == 1


async def test_an_undocumented_error_code_is_a_rejection_for_a_human_not_a_retry(
    emecef_local: Emecef,
) -> None:
    env = emecef_local
    env.sim.add(
        "error", path="/api/invoice", status=200, body={"errorCode": 2, "errorDesc": "Jeton invalide"}
    )
    with pytest.raises(InvoiceRejected) as info:
        await env.driver.certify(official_example(), env.settings, env.connection)
    error = info.value
    assert (error.code, error.authority_code, error.authority_message) == (
        "authority.rejected.unknown_code",
        "2",
        "Jeton invalide",
    )
    assert not error.retryable and env.platform.pending == {}


async def test_an_undocumented_error_code_on_confirm_is_an_unknown_outcome(emecef_local: Emecef) -> None:
    env = emecef_local
    env.sim.add("error", path="/confirm", status=200, body={"errorCode": "42", "errorDesc": "?"})
    with pytest.raises(OutcomeUnknown) as info:
        await env.driver.certify(official_example(), env.settings, env.connection)
    assert info.value.authority_code == "42" and info.value.checkpoint["uid"] in env.platform.pending


async def test_a_lost_post_overrides_a_uid_left_by_an_earlier_attempt(emecef_local: Emecef) -> None:
    env = emecef_local
    invoice = official_example(aib="B")
    # attempt 1 got a uid, then failed definitively (the token was refused on confirm)
    env.sim.add("error", path="/confirm", status=401, body=None)
    stored: dict[str, Any] = {}

    async def remember(data: dict[str, Any]) -> None:
        stored.update(data)  # what the gateway does: merge every checkpoint into the invoice's row

    with pytest.raises(AuthorityAuthError):
        await env.driver.certify(invoice, env.settings, env.connection, checkpoint=remember)
    first = stored["uid"]
    env.platform.finalise(first, "cancel")  # gone: finalised or expired by now
    # attempt 2: the POST is recorded but its answer is lost
    env.sim.add("hang_after_processing", path="/api/invoice", method="POST", seconds=0.5)
    with pytest.raises(OutcomeUnknown) as info:
        await env.driver.certify(invoice, env.settings, env.connection, checkpoint=remember)
    stored.update(info.value.checkpoint)
    result = await env.driver.reconcile(invoice, env.settings, env.connection, stored)
    assert result.status == "certified" and result.certification is not None
    assert result.certification.authority_data["uid"] != first
