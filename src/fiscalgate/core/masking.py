"""Masking of secrets before anything is logged, audited or returned."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

SENSITIVE_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "set-cookie", "proxy-authorization"})
# Keys whose values are always secret. Not "token": FNE's `token` is the public verification URL;
# secret values under other keys are caught by value (`secrets`).
SENSITIVE_KEYS = frozenset({"api_key", "apikey", "secret", "password", "authorization", "x-api-key"})


def mask_secret(value: str | None, *, keep: int = 4) -> str:
    """`abcd…wxyz`-style masking that keeps just enough to recognise which secret it was."""
    if not value:
        return ""
    if len(value) <= keep * 3:
        return "…" + "*" * min(len(value), 8)
    return f"{value[:keep]}…{value[-keep:]}"


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in SENSITIVE_HEADERS:
            scheme, _, rest = value.partition(" ")
            out[name] = f"{scheme} {mask_secret(rest)}" if rest else mask_secret(value)
        else:
            out[name] = value
    return out


def mask_text(text: str, secrets: list[str]) -> str:
    """Replace every occurrence of each secret in free text."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, mask_secret(secret))
    return text


def mask_mapping(data: Any, secrets: list[str]) -> Any:
    """Recursively mask known secret values and the values of secret-looking keys."""
    if isinstance(data, Mapping):
        return {
            k: (
                mask_secret(str(v))
                if str(k).lower() in SENSITIVE_KEYS and isinstance(v, str)
                else mask_mapping(v, secrets)
            )
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [mask_mapping(v, secrets) for v in data]
    if isinstance(data, str):
        return mask_text(data, secrets)
    return data


def _json_text(source: str | bytes | None) -> str | None:
    """The JSON source text when it can stand for its parsed strings as they are: UTF-8 without a
    single backslash (no escape anywhere, so every string appears verbatim between quotes)."""
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError:
            return None  # UTF-16/32 or not text: the parsed value is dumped instead
    if source is None or "\\" in source:
        return None
    return source


def may_hold_secrets(data: Any, secrets: list[str], source: str | bytes | None = None) -> bool:
    """False only when `mask_mapping(data, secrets)` would change nothing: no secret in any of its
    strings, no key that is always masked. Checked once on its JSON text instead of walking every
    value (a 1,000-line invoice holds ~70,000 strings): `source`, the text `data` was parsed
    from, when it holds no escape at all (then every string appears in it verbatim, between
    quotes); otherwise json's C encoder's dump of `data`, escapes undone. A secret the text would
    escape (a quote, a backslash, a control character) is always walked for."""
    text = _json_text(source)
    if text is None:
        text = json.dumps(data, ensure_ascii=False, default=str)
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue  # mask_text leaves those alone too
        if '"' in secret or "\\" in secret or any(ord(c) < 0x20 for c in secret) or secret in text:
            return True
    lowered = text.lower()
    return any(f'"{key}"' in lowered for key in SENSITIVE_KEYS)


def mask_if_needed(data: Any, secrets: list[str], source: str | bytes | None = None) -> Any:
    """`mask_mapping`, skipped when `may_hold_secrets` says it would change nothing (the same
    value is returned, not a copy). `source`: the JSON text `data` was parsed from, if at hand."""
    return mask_mapping(data, secrets) if may_hold_secrets(data, secrets, source) else data
