"""Encryption at rest for authority secrets (Fernet: AES-128-CBC + HMAC-SHA256, from `cryptography`).

Key rotation without downtime: `FISCALGATE_SECRET_KEY` (or var/secret.key) may hold several keys,
comma-separated, newest first. The first one encrypts; every one decrypts (MultiFernet). Rotate
by putting a new key in front (`new,old`) and restarting the processes one by one, then run
`fiscalgate rotate-keys` (re-encrypts every stored secret and sealed request with the new key),
then drop the old key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

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


def split_keys(key: bytes | str) -> list[bytes]:
    text = key.decode() if isinstance(key, bytes) else key
    return [part.strip().encode() for part in text.replace("\n", ",").split(",") if part.strip()]


class SecretBox:
    def __init__(self, key: bytes | str) -> None:
        try:
            keys = split_keys(key)
            if not keys:
                raise ValueError("no key")
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError):
            raise ConfigurationError(
                f"{KEY_ENV} is not a valid Fernet key (32 url-safe base64-encoded bytes; "
                "generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)",
                code="gateway.secret_key.invalid",
            ) from None

    def seal(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data, sort_keys=True).encode()).decode()

    def rotate(self, token: str) -> str:
        """The same secret encrypted with the first (newest) key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise ConfigurationError(
                "a stored secret cannot be decrypted with any of the keys given; keep the old key in "
                f"{KEY_ENV} (new,old) until `fiscalgate rotate-keys` has run",
                code="gateway.secret_key.mismatch",
            ) from None

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


def rotate_stored_secrets(database_url: str, box: SecretBox) -> dict[str, int]:
    """Re-encrypt every sealed value in the database with the box's first key, in one transaction
    (all or nothing). Returns the count per table."""
    from sqlalchemy import select

    from fiscalgate.gateway.api.models import IdempotencyRecord
    from fiscalgate.gateway.audit.models import AuditEntry
    from fiscalgate.gateway.db import make_engine, make_sessionmaker
    from fiscalgate.gateway.settings.models import AuthorityConfig

    engine = make_engine(database_url)
    counts = {"authority_settings": 0, "audit_entries": 0, "idempotency_keys": 0}
    try:
        with make_sessionmaker(engine).begin() as session:
            for config in session.scalars(
                select(AuthorityConfig).where(AuthorityConfig.secrets_sealed.is_not(None))
            ):
                config.secrets_sealed = box.rotate(config.secrets_sealed or "")
                counts["authority_settings"] += 1
            for entry in session.scalars(select(AuditEntry).where(AuditEntry.sealed_request.is_not(None))):
                entry.sealed_request = box.rotate(entry.sealed_request or "")
                counts["audit_entries"] += 1
            # Answers kept for Idempotency-Key replays are sealed too (api/idempotency.py).
            for record in session.scalars(
                select(IdempotencyRecord).where(IdempotencyRecord.response_status.is_not(None))
            ):
                body = record.response_body
                if isinstance(body, dict) and isinstance(body.get("sealed"), str) and len(body) == 1:
                    record.response_body = {"sealed": box.rotate(body["sealed"])}
                    counts["idempotency_keys"] += 1
    finally:
        engine.dispose()
    return counts
