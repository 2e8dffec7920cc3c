import pytest

from fiscalgate.core.errors import (
    AuthorityServerError,
    InvoiceError,
    OutcomeUnknown,
    Problem,
    Resolution,
    raise_if_problems,
)
from fiscalgate.core.masking import mask_headers, mask_mapping, mask_secret


def test_mask_secret_keeps_only_ends() -> None:
    key = "abcdEFGH1234ijklMNOP5678qrstUVWX"
    masked = mask_secret(key)
    assert key not in masked and masked.startswith("abcd") and masked.endswith("UVWX")
    assert "short" not in mask_secret("short")


def test_mask_headers_and_nested_values() -> None:
    key = "S3cr3tK3yS3cr3tK3y"
    headers = mask_headers({"Authorization": f"Bearer {key}", "X-API-Key": key, "Accept": "json"})
    assert key not in str(headers) and headers["Accept"] == "json"
    assert headers["Authorization"].startswith("Bearer ")
    data = mask_mapping({"a": [{"note": f"key={key}"}], "api_key": "whatever-value"}, [key])
    assert key not in str(data) and "whatever-value" not in str(data)


def test_error_kinds_carry_resolution() -> None:
    assert OutcomeUnknown("x", authority="ci-fne").resolution is Resolution.RECONCILE
    assert AuthorityServerError("x", authority="cg-sfec").retryable
    assert not OutcomeUnknown("x", authority="ci-fne").retryable


def test_invoice_error_lists_all_problems() -> None:
    problems = [Problem("a", "required", "a is required"), Problem("b", "invalid", "b is wrong")]
    with pytest.raises(InvoiceError) as caught:
        raise_if_problems(problems)
    assert caught.value.to_dict()["problems"] == [p.to_dict() for p in problems]
    raise_if_problems([])  # nothing to say, nothing raised
