import json

import pytest

from fiscalgate.core.errors import (
    AuthorityServerError,
    InvoiceError,
    OutcomeUnknown,
    Problem,
    Resolution,
    raise_if_problems,
)
from fiscalgate.core.masking import mask_headers, mask_mapping, mask_secret, may_hold_secrets


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


def test_the_masking_shortcut_reads_the_source_text_only_when_it_shows_every_string() -> None:
    secret = "sk_live_0123456789"
    clean = json.dumps({"items": [{"name": f"Article {i} é"} for i in range(50)]}, ensure_ascii=False)
    assert not may_hold_secrets(json.loads(clean), [secret], clean.encode())
    # The secret spelled with an escape: the source text does not show it, the parsed value does.
    escaped = '{"echo": "sk_live_\\u0030123456789"}'
    assert secret in json.loads(escaped)["echo"]
    assert may_hold_secrets(json.loads(escaped), [secret], escaped.encode())
    # UTF-16 source: not read as text, the parsed value is checked instead.
    utf16 = json.dumps({"echo": secret}).encode("utf-16")
    assert may_hold_secrets(json.loads(utf16), [secret], utf16)
    # A key that is always masked, in any case, found in the source text.
    keyed = '{"Nested": [{"API_KEY": "x"}]}'
    assert may_hold_secrets(json.loads(keyed), [], keyed)
