"""The wire models read what the live platform answers (spec §6, the [OBS] samples)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fiscalgate.authorities.bj_emecef.schemas import (
    InvoiceDetailsDto,
    SecurityElementsDto,
    StatusResponseDto,
)

LIVE_STATUS = {
    "status": True,
    "version": "1.0",
    "ifu": "0202300000001",
    "nim": "TS01017752",
    "tokenValid": "2026-08-05T18:38:07.523+01:00",
    "serverDateTime": "2026-07-16T00:09:13.2113394+01:00",
    "pendingRequestsCount": 1,
    "pendingRequestsList": [{"date": "2020-11-21T17:25:14.7179651+01:00", "uid": "a1b2"}],
    "pendingAibPaymentList": [],  # undocumented v1.0 extension, kept
}


def test_live_status_with_seven_fraction_digits() -> None:
    status = StatusResponseDto.model_validate(LIVE_STATUS)
    assert status.server_date_time == datetime(2026, 7, 15, 23, 9, 13, 211339, tzinfo=UTC)
    assert status.pending_requests_list[0].uid == "a1b2"
    assert status.model_extra == {"pendingAibPaymentList": []}


def test_server_times_without_offset_are_read_as_benin_time_never_naive() -> None:
    status = StatusResponseDto.model_validate(
        {
            **LIVE_STATUS,
            "tokenValid": "2026-08-05T18:38:07",
            "serverDateTime": "2026-07-16T00:09:13",
            "pendingRequestsList": [{"date": "2026-07-16T00:08:00", "uid": "a1b2"}],
        }
    )
    times = [status.token_valid, status.server_date_time, status.pending_requests_list[0].date]
    assert all(t is not None and t.utcoffset() == timedelta(hours=1) for t in times)
    assert status.server_date_time == datetime(2026, 7, 15, 23, 9, 13, tzinfo=UTC)


def test_error_bodies_of_the_live_platform() -> None:
    # finalising a non-pending uid (OBS): 200, errorCode as a string, refundWithAibPayment false
    security = SecurityElementsDto.model_validate(
        {"errorCode": "20", "errorDesc": "x", "refundWithAibPayment": False, "qrCode": None}
    )
    assert (security.error_code, security.refund_with_aib_payment) == ("20", False)
    # details of a non-pending uid: type "NA" and nulls; a numeric errorCode is read as text too
    details = InvoiceDetailsDto.model_validate({"ifu": None, "type": "NA", "items": None, "errorCode": 20})
    assert (details.type, details.error_code) == ("NA", "20")
