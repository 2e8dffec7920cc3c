"""Console accounts: users, Argon2 passwords, sessions (revocable), sign-in rate limiting."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fiscalgate.core.errors import Problem
from fiscalgate.gateway.audit.service import record_event
from fiscalgate.gateway.console.models import ADMIN_ROLE, ROLES, ConsoleSession, User
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import Conflict, InvalidRequest, NotFound
from fiscalgate.gateway.tenants.service import Caller, get_tenant

SESSION_LIFETIME = timedelta(days=7)
MIN_PASSWORD = 10
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when the e-mail is unknown, so a wrong address costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Principal:
    """The signed-in user, as the pages need it (no ORM object crosses a transaction)."""

    user_id: str
    session_id: str
    email: str
    name: str
    role: str
    tenant_id: str | None
    tenant_name: str | None
    csrf_token: str
    language: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN_ROLE

    def can(self, action: str) -> bool:
        return self.role in PERMISSIONS.get(action, ())

    @property
    def caller(self) -> Caller:
        """What the gateway's services and the audit log see: `user:<e-mail>`."""
        return Caller(tenant_id=self.tenant_id, trigger=f"user:{self.email}"[:120])


# Which role may do what. `read` is every tenant page; the rest are the actions.
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "read": ("owner", "accountant", "viewer"),
    "invoices": ("owner", "accountant"),  # create, approve, certify, retry, reconcile, credit notes
    "audit.replay": ("owner", "accountant"),
    "settings": ("owner",),
    "users": ("owner",),
    "api_keys": ("owner",),
    "admin": (ADMIN_ROLE,),
}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(
            f"the password needs at least {MIN_PASSWORD} characters",
            code="user.password_short",
            problems=[Problem("password", "min_length", f"at least {MIN_PASSWORD} characters")],
        )


def _normalise_email(email: str) -> str:
    value = email.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or " " in value:
        raise InvalidRequest(
            f"{email!r} is not an e-mail address",
            code="user.email_invalid",
            problems=[Problem("email", "format", "an e-mail address such as name@example.ci")],
        )
    return value


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    role: str,
    tenant_id: str | None,
    name: str = "",
    by: str = "cli",
) -> User:
    address = _normalise_email(email)
    if role == ADMIN_ROLE:
        if tenant_id is not None:
            raise InvalidRequest("the platform administrator belongs to no tenant", code="user.admin_tenant")
    elif role in ROLES:
        if tenant_id is None:
            raise InvalidRequest(f"a {role} belongs to a tenant", code="user.tenant_required")
        get_tenant(session, tenant_id)
    else:
        raise InvalidRequest(
            f"unknown role {role!r}; roles: {', '.join((*ROLES, ADMIN_ROLE))}",
            code="user.role_unknown",
            problems=[Problem("role", "choice", ", ".join(ROLES))],
        )
    _check_password(password)
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise Conflict(
            f"a user with the e-mail {address} already exists",
            code="user.email_taken",
            problems=[Problem("email", "unique", "already used by another user")],
        )
    user = User(
        email=address,
        name=name.strip(),
        role=role,
        tenant_id=tenant_id,
        password_hash=hash_password(password),
        created_at=utcnow(),
    )
    session.add(user)
    session.flush()
    record_event(
        session,
        tenant_id=tenant_id,
        kind="user",
        event="user.created",
        trigger=by,
        detail={"email": address, "role": role},
    )
    return user


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def list_users(session: Session, tenant_id: str | None) -> list[User]:
    query = select(User).order_by(User.created_at, User.email)
    query = query.where(User.tenant_id.is_(None) if tenant_id is None else User.tenant_id == tenant_id)
    return _detached(session, list(session.scalars(query)))


def _detached(session: Session, rows: list[Any]) -> list[Any]:
    for row in rows:  # readable after a read-only unit's rollback
        session.expunge(row)
    return rows


def tenant_user(session: Session, tenant_id: str, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None or user.tenant_id != tenant_id:
        raise NotFound(f"no user {user_id}", code="user.not_found")
    return user


def set_disabled(session: Session, user: User, disabled: bool, by: str) -> None:
    user.disabled_at = utcnow() if disabled else None
    if disabled:
        revoke_all(session, user.id)
    record_event(
        session,
        tenant_id=user.tenant_id,
        kind="user",
        event="user.disabled" if disabled else "user.enabled",
        trigger=by,
        detail={"email": user.email},
    )


# --- passwords and sessions -------------------------------------------------------------------------
def verify_password(user: User | None, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(
    session: Session, email: str, password: str, *, user_agent: str = "", ip: str = ""
) -> tuple[str, User] | None:
    """(cookie token, user) when the e-mail and password match an enabled user, else None."""
    user = find_user(session, email)
    if not verify_password(user, password) or user is None or user.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        ConsoleSession(
            user_id=user.id,
            token_hash=_token_hash(token),
            csrf_token=secrets.token_urlsafe(32),
            user_agent=user_agent[:300],
            ip=ip[:64],
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    record_event(
        session, tenant_id=user.tenant_id, kind="user", event="user.signed_in", trigger=f"user:{user.email}"
    )
    return token, user


def principal(session: Session, token: str) -> Principal | None:
    """The user behind a session cookie, or None (unknown, expired, revoked, user disabled)."""
    row = session.execute(
        select(ConsoleSession, User)
        .join(User, User.id == ConsoleSession.user_id)
        .where(ConsoleSession.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None
    cs, user = row
    if cs.revoked_at is not None or cs.expires_at <= utcnow() or user.disabled_at is not None:
        return None
    tenant_name = get_tenant(session, user.tenant_id).name if user.tenant_id else None
    return Principal(
        user_id=user.id,
        session_id=cs.id,
        email=user.email,
        name=user.name,
        role=user.role,
        tenant_id=user.tenant_id,
        tenant_name=tenant_name,
        csrf_token=cs.csrf_token,
        language=user.language,
    )


def touch(session: Session, session_id: str) -> None:
    cs = session.get(ConsoleSession, session_id)
    if cs is not None:
        cs.last_seen_at = utcnow()


def list_sessions(session: Session, user_id: str) -> list[ConsoleSession]:
    now = utcnow()
    return _detached(
        session,
        [
            s
            for s in session.scalars(
                select(ConsoleSession)
                .where(ConsoleSession.user_id == user_id, ConsoleSession.revoked_at.is_(None))
                .order_by(ConsoleSession.last_seen_at.desc())
            )
            if s.expires_at > now
        ],
    )


def revoke_session(session: Session, user_id: str, session_id: str) -> None:
    cs = session.get(ConsoleSession, session_id)
    if cs is None or cs.user_id != user_id:  # only one's own sessions
        raise NotFound(f"no session {session_id}", code="session.not_found")
    cs.revoked_at = cs.revoked_at or utcnow()


def revoke_all(session: Session, user_id: str, *, keep: str | None = None) -> None:
    for cs in session.scalars(
        select(ConsoleSession).where(ConsoleSession.user_id == user_id, ConsoleSession.revoked_at.is_(None))
    ):
        if cs.id != keep:
            cs.revoked_at = utcnow()


def change_password(session: Session, who: Principal, current: str, new: str, confirm: str) -> None:
    user = session.get(User, who.user_id)
    if user is None or not verify_password(user, current):
        raise InvalidRequest(
            "the current password is wrong",
            code="user.password_wrong",
            problems=[Problem("current", "wrong", "the current password is wrong")],
        )
    if new != confirm:
        raise InvalidRequest(
            "the two new passwords differ",
            code="user.password_mismatch",
            problems=[Problem("confirm", "mismatch", "the two new passwords differ")],
        )
    try:
        _check_password(new)
    except InvalidRequest as exc:
        exc.problems = [Problem("new", p.rule, p.message) for p in exc.problems]
        raise
    user.password_hash = hash_password(new)
    revoke_all(session, user.id, keep=who.session_id)  # every other browser signs in again
    record_event(
        session,
        tenant_id=user.tenant_id,
        kind="user",
        event="user.password_changed",
        trigger=f"user:{user.email}",
    )


def set_language(session: Session, user_id: str, language: str | None) -> None:
    user = session.get(User, user_id)
    if user is not None:
        user.language = language


class SignInLimiter:
    """At most `limit` failed sign-ins per e-mail and per client address in `window` seconds.

    Kept in memory (per process): it slows a password guesser down, which is its purpose; a
    restart forgets it. Successful sign-ins do not count."""

    def __init__(self, limit: int = 5, window: float = 300.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, *keys: str) -> int:
        """Seconds to wait before another try (0: go ahead)."""
        now = time.monotonic()
        with self._lock:
            waits = [
                int(q[0] + self.window - now) + 1
                for key in keys
                if len(q := self._recent(key, now)) >= self.limit
            ]
        return max(waits, default=0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)


def is_expired(at: datetime) -> bool:
    return at <= utcnow()
