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


def may_hold_secrets(data: Any, secrets: list[str]) -> bool:
    """False only when `mask_mapping(data, secrets)` would change nothing: no secret in any of its
    strings, no key that is always masked. Checked once on its JSON text (json's C encoder,
    escapes undone: every string appears verbatim, between quotes) instead of walking every value
    (a 1,000-line invoice holds ~70,000 strings). A secret the text would escape (a quote, a
    backslash, a control character) is always walked for."""
    text = json.dumps(data, ensure_ascii=False, default=str)
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue  # mask_text leaves those alone too
        if '"' in secret or "\\" in secret or any(ord(c) < 0x20 for c in secret) or secret in text:
            return True
    lowered = text.lower()
    return any(f'"{key}"' in lowered for key in SENSITIVE_KEYS)


def mask_if_needed(data: Any, secrets: list[str]) -> Any:
    """`mask_mapping`, skipped when `may_hold_secrets` says it would change nothing (the same
    value is returned, not a copy)."""
    return mask_mapping(data, secrets) if may_hold_secrets(data, secrets) else data
