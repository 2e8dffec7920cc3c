"""The simulated e-MCF's rules, without HTTP (injectable clock, no sleeping)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fiscalgate.authorities.bj_emecef.simulator.state import (
    MESSAGES,
    BusinessError,
    Platform,
    mint_token,
)

from .conftest import FakeClock

IFU = "0202300000001"
NIM = "TS01000001"
SECRET = "a-test-secret-of-at-least-32-bytes-long"


def _platform(clock: FakeClock | None = None, **kw: Any) -> Platform:
    return Platform(ifu=IFU, nim=NIM, token_secret=SECRET, clock=clock or FakeClock(), seed=1, **kw)


def _request(**extra: Any) -> dict[str, Any]:
    return {
        "ifu": IFU,
        "type": "FV",
        "items": [{"name": "Jus", "price": 1800, "quantity": 2, "taxGroup": "B"}],
        "operator": {"name": "Jacques"},
        **extra,
    }


def _code(platform: Platform, error: int, request: dict[str, Any]) -> None:
    with pytest.raises(BusinessError) as info:
        platform.submit(request)
    assert info.value.code == error
    assert str(info.value) == MESSAGES[error]


def _certify(platform: Platform, **extra: Any) -> dict[str, Any]:
    return platform.finalise(platform.submit(_request(**extra))["uid"], "confirm")


def test_token_checks() -> None:
    platform = _platform()
    assert platform.authenticate("Bearer " + mint_token(IFU, NIM, SECRET))
    assert not platform.authenticate(None)
    assert not platform.authenticate(mint_token(IFU, NIM, SECRET))  # no Bearer scheme
    assert not platform.authenticate("Bearer " + mint_token(IFU, NIM, SECRET + "x"))  # wrong signature
    assert not platform.authenticate("Bearer " + mint_token(IFU, "TS01000002", SECRET))  # another e-MCF
    expired = mint_token(IFU, NIM, SECRET, now=datetime.now(UTC) - timedelta(days=400))
    assert not platform.authenticate("Bearer " + expired)


def test_security_elements_format() -> None:
    platform = _platform()
    answer = _certify(platform)
    code = answer["codeMECeFDGI"]
    assert re.fullmatch(r"TEST(-[A-Z2-7]{4}){5}", code) and len(code) == 29
    raw = code.replace("-", "")
    assert answer["qrCode"] == f"F;{NIM};{raw};{IFU};20260716110000"  # 10:00Z is 11:00 in Bénin
    assert answer["dateTime"] == "16/07/2026 11:00:00"
    assert answer["counters"] == "1/1 FV" and answer["nim"] == NIM


def test_production_mode_codes_do_not_start_with_test() -> None:
    platform = _platform(test_mode=False)
    answers = [_certify(platform) for _ in range(5)]
    codes = [a["codeMECeFDGI"] for a in answers]
    assert all(re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){5}", c) for c in codes)
    assert not any(c.startswith("TEST") for c in codes) and len(set(codes)) == 5
    assert all(a["qrCode"].split(";")[2] == a["codeMECeFDGI"].replace("-", "") for a in answers)


def test_counters_per_type_and_overall_and_cancel_consumes_none() -> None:
    platform = _platform()
    seen = [_certify(platform)["counters"] for _ in range(2)]
    export = _certify(platform, type="EV")["counters"]
    cancelled = platform.finalise(platform.submit(_request())["uid"], "cancel")
    assert cancelled["qrCode"] == "" and cancelled["codeMECeFDGI"] == ""
    after = _certify(platform)["counters"]
    assert [*seen, export, after] == ["1/1 FV", "2/2 FV", "1/3 EV", "3/4 FV"]


def test_at_most_ten_pending_and_expiry_after_the_ttl() -> None:
    clock = FakeClock()
    platform = _platform(clock, pending_ttl=timedelta(seconds=120))
    uids = [platform.submit(_request())["uid"] for _ in range(10)]
    _code(platform, 1, _request())
    clock.advance(119)
    assert platform.status()["pendingRequestsCount"] == 10
    clock.advance(1)
    assert platform.status()["pendingRequestsCount"] == 0
    for uid in uids[:2]:
        with pytest.raises(BusinessError) as info:
            platform.finalise(uid, "confirm")
        assert info.value.code == 20
    assert platform.submit(_request())["uid"]


def test_finalised_requests_answer_20_everywhere() -> None:
    platform = _platform()
    uid = platform.submit(_request())["uid"]
    assert platform.details(uid)["items"][0]["name"] == "Jus"
    platform.finalise(uid, "confirm")
    for call in (
        lambda: platform.details(uid),
        lambda: platform.finalise(uid, "confirm"),
        lambda: platform.finalise(uid, "cancel"),
    ):
        with pytest.raises(BusinessError) as info:
            call()
        assert info.value.code == 20


@pytest.mark.parametrize(
    ("error", "change"),
    [
        (3, {"type": "XX"}),
        (6, {"aib": "C"}),
        (7, {"payment": [{"name": "BITCOIN", "amount": 1}]}),
        (8, {"items": []}),
        (9, {"items": [{"name": "x", "price": 1, "quantity": 1, "taxGroup": "G"}]}),
        (4, {"type": "FA"}),
        (5, {"type": "FA", "reference": "TS01019550-1"}),
        (11, {"type": "FA", "reference": "TESTAAAAAAAAAAAAAAAAAAAA"}),
        (99, {"ifu": "9999999999999"}),
        (99, {"operator": {"name": ""}}),
        (99, {"items": [{"name": "x", "price": -1800, "quantity": 1, "taxGroup": "B"}]}),
        (99, {"items": [{"name": "x", "price": 1800, "quantity": 0, "taxGroup": "B"}]}),
        (99, {"items": [{"name": "x", "price": 1800, "quantity": "-2", "taxGroup": "B"}]}),
        (99, {"items": [{"name": "x", "price": 1800, "quantity": 1, "taxGroup": "B", "taxSpecific": -5}]}),
    ],
)
def test_request_errors(error: int, change: dict[str, Any]) -> None:
    _code(_platform(), error, _request(**change))


def test_credit_notes_are_checked_against_a_confirmed_original_of_the_matching_type() -> None:
    platform = _platform()
    sale = _certify(platform, aib="B")["codeMECeFDGI"].replace("-", "")  # 3600 + AIB 153 = 3753
    export = _certify(platform, type="EV")["codeMECeFDGI"].replace("-", "")
    _code(platform, 11, _request(type="EA", reference=sale))  # EA credits an EV only
    _code(platform, 11, _request(type="FA", reference=export))
    half = [{"name": "Jus", "price": 1800, "quantity": 1, "taxGroup": "B"}]
    first = platform.submit(_request(type="FA", reference=sale, aib="B", items=half))
    assert first["total"] == 1876  # 1800 + AIB round(1525 x 5 %) = 76
    platform.finalise(first["uid"], "confirm")
    second = platform.submit(_request(type="FA", reference=sale, aib="B", items=half))
    platform.finalise(second["uid"], "confirm")
    # 3753 - 2 x 1876 = 1 franc remains, cumulatively: 2 francs are refused, 1 is accepted
    _code(
        platform,
        12,
        _request(
            type="FA", reference=sale, items=[{"name": "x", "price": 2, "quantity": 1, "taxGroup": "A"}]
        ),
    )
    assert platform.submit(
        _request(type="FA", reference=sale, items=[{"name": "x", "price": 1, "quantity": 1, "taxGroup": "A"}])
    )


def test_remaining_amount_is_rechecked_at_confirm() -> None:
    platform = _platform()
    sale = _certify(platform)["codeMECeFDGI"].replace("-", "")
    a = platform.submit(_request(type="FA", reference=sale))
    b = platform.submit(_request(type="FA", reference=sale))
    platform.finalise(a["uid"], "confirm")
    with pytest.raises(BusinessError) as info:
        platform.finalise(b["uid"], "confirm")
    assert info.value.code == 12


def test_controls_force_errors_and_skew() -> None:
    platform = _platform()
    sale = _certify(platform)["codeMECeFDGI"].replace("-", "")
    platform.next_credit_errors.append(10)
    _code(platform, 10, _request(type="FA", reference=sale))
    assert platform.submit(_request(type="FA", reference=sale))["uid"]  # consumed once
    platform.next_totals_skew["tab"] = 1
    assert platform.submit(_request())["tab"] == 3601
    assert platform.submit(_request())["tab"] == 3600


def test_status_lists_pending_requests_with_their_reception_time() -> None:
    platform = _platform()
    uid = platform.submit(_request())["uid"]
    status = platform.status()
    assert status["pendingRequestsList"] == [{"date": "2026-07-16T11:00:00+01:00", "uid": uid}]
    assert status["serverDateTime"].endswith("+01:00")


def test_a_short_token_secret_is_the_users_call_and_works_without_warnings() -> None:
    # `fiscalgate simulate bj-emecef --token-secret S`: PyJWT's key-length warning would be an error
    # under this suite's filterwarnings, and noise on the simulator's console
    platform = Platform(ifu=IFU, nim=NIM, token_secret="S", clock=FakeClock())
    assert platform.authenticate("Bearer " + mint_token(IFU, NIM, "S"))
    assert not platform.authenticate("Bearer " + mint_token(IFU, NIM, "T"))
