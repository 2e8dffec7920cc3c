"""Encryption at rest for authority secrets (Fernet: AES-128-CBC + HMAC-SHA256, from `cryptography`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from fiscalgate.core.errors import ConfigurationError

KEY_ENV = "FISCALGATE_SECRET_KEY"


def load_or_create_key(var_dir: Path) -> bytes:
    """The key from FISCALGATE_SECRET_KEY, else `var_dir/secret.key`, created (mode 600) on first use."""
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode()
    path = var_dir / "secret.key"
    if path.exists():
        return path.read_bytes().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class SecretBox:
    def __init__(self, key: bytes | str) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise ConfigurationError(
                f"{KEY_ENV} is not a valid Fernet key (32 url-safe base64-encoded bytes; "
                "generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)",
                code="gateway.secret_key.invalid",
            ) from None

    def seal(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data, sort_keys=True).encode()).decode()

    def open(self, token: str | None) -> dict[str, Any]:
        if not token:
            return {}
        try:
            value = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise ConfigurationError(
                "stored secrets cannot be decrypted with the current secret key "
                f"({KEY_ENV} or var/secret.key changed?); re-enter the credentials",
                code="gateway.secret_key.mismatch",
            ) from None
        return dict(value)
