"""Staff accounts for the sales workspace: roles, argon2 password hashes, enabling, listing."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm.core.audit import audit
from crm.core.db import transaction
from crm.core.errors import Conflict, InputError, NotFound
from crm.core.vocabulary import UserRole
from crm.models import User, utcnow

MIN_PASSWORD = 8
_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Verifying against this keeps login time the same whether or not the user exists.
    return _HASHER.hash("qunflow-no-such-user")


@dataclass(frozen=True)
class StaffUser:
    """What the web app and services need to know about the acting user."""

    id: int
    username: str
    display_name: str | None
    role: UserRole
    locale: str
    active: bool
    session_version: int = 0

    @property
    def is_manager(self) -> bool:
        """Managers and admins oversee every queue."""
        return self.role in (UserRole.MANAGER, UserRole.ADMIN)

    @property
    def is_admin(self) -> bool:
        """Only admins export and erase contacts."""
        return self.role == UserRole.ADMIN

    @property
    def label(self) -> str:
        """The name shown in lists and written to the audit log."""
        return self.username


def _staff(user: User) -> StaffUser:
    return StaffUser(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=UserRole(user.role),
        locale=user.locale,
        active=user.active,
        session_version=user.session_version,
    )


def _end_sessions(user: User) -> None:
    # Every session cookie carries the version it was issued under; a cookie from before
    # this bump no longer matches and the workspace sends its holder to the login form.
    user.session_version = User.session_version + 1


def hash_password(password: str) -> str:
    """An argon2id hash of a password (salted, parameters embedded)."""
    return _HASHER.hash(password)


def _check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError("error.sales.password_short", min=MIN_PASSWORD)


def _check_role(role: str) -> UserRole:
    try:
        return UserRole(role)
    except ValueError as exc:
        allowed = ", ".join(r.value for r in UserRole)
        raise InputError("error.sales.role_unknown", role=role, allowed=allowed) from exc


def clean_username(username: str) -> str:
    """A login name as stored; InputError if it is empty or too long."""
    username = username.strip()
    if not username or len(username) > 100:
        raise InputError("error.sales.username_length")
    return username


def add_user(
    engine: Engine,
    username: str,
    *,
    role: str,
    password: str,
    display_name: str | None = None,
    locale: str = "zh-CN",
    actor: str = "system",
    now: datetime | None = None,
) -> StaffUser:
    """Create a staff user with a hashed password; a taken name is a Conflict."""
    username = clean_username(username)
    checked = _check_role(role)
    _check_password_rules(password)
    now = now or utcnow()
    with transaction(engine) as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise Conflict("error.sales.user_exists", username=username)
        user = User(
            username=username,
            display_name=display_name,
            role=checked.value,
            password_hash=hash_password(password),
            locale=locale,
            created_at=now,
        )
        session.add(user)
        session.flush()
        audit(
            session,
            actor,
            "user.add",
            object_type="user",
            object_id=user.id,
            details={"role": checked.value},
            at=now,
        )
        return _staff(user)


def authenticate(engine: Engine, username: str, password: str) -> StaffUser | None:
    """The active user with this name and password, or None; rehashes outdated hashes."""
    with transaction(engine) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or not user.active:
            with contextlib.suppress(VerificationError):
                _HASHER.verify(_dummy_hash(), password)
            return None
        try:
            _HASHER.verify(user.password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if _HASHER.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        return _staff(user)


def set_password(engine: Engine, username: str, password: str, *, actor: str = "system") -> None:
    """Replace a user's password."""
    _check_password_rules(password)
    with transaction(engine) as session:
        user = _by_name(session, username)
        user.password_hash = hash_password(password)
        _end_sessions(user)
        audit(session, actor, "user.password", object_type="user", object_id=user.id)


def set_role(engine: Engine, username: str, role: str, *, actor: str = "system") -> StaffUser:
    """Give a user another role; their open sessions end (they log in again as the new role)."""
    checked = _check_role(role)
    with transaction(engine) as session:
        user = _by_name(session, username)
        before = user.role
        user.role = checked.value
        _end_sessions(user)
        audit(
            session,
            actor,
            "user.role",
            object_type="user",
            object_id=user.id,
            details={"from": before, "to": checked.value},
        )
        session.flush()
        session.refresh(user)
        return _staff(user)


def end_sessions(engine: Engine, user_id: int, *, actor: str) -> None:
    """Log a user out everywhere (the workspace's logout): every session cookie of theirs ends."""
    with transaction(engine) as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("error.sales.user_id_missing", user_id=user_id)
        _end_sessions(user)
        audit(session, actor, "logout", object_type="user", object_id=user.id)


def set_active(engine: Engine, username: str, active: bool, *, actor: str = "system") -> None:
    """Enable or disable a login (disabled users keep their history; their sessions end)."""
    with transaction(engine) as session:
        user = _by_name(session, username)
        user.active = active
        _end_sessions(user)
        audit(
            session,
            actor,
            "user.active",
            object_type="user",
            object_id=user.id,
            details={"active": active},
        )


def _by_name(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound("error.sales.user_missing", username=username)
    return user


def get_user(session: Session, user_id: int) -> StaffUser | None:
    """The user with this id, or None."""
    user = session.get(User, user_id)
    return None if user is None else _staff(user)


def user_id_by_name(session: Session, username: str) -> int:
    """The id of a user by name; NotFound otherwise."""
    return _by_name(session, username).id


@dataclass(frozen=True)
class StaffAccount:
    """A staff user as listed (never the hash); the claim limits keep their column names."""

    id: int
    username: str
    display_name: str | None
    role: UserRole
    active: bool
    locale: str
    daily_claim_cap: int
    holding_cap: int


def list_users(session: Session) -> list[StaffAccount]:
    """Every staff user with role and claim limits, by name."""
    rows = session.scalars(select(User).order_by(User.username)).all()
    return [
        StaffAccount(
            id=u.id,
            username=u.username,
            display_name=u.display_name,
            role=UserRole(u.role),
            active=u.active,
            locale=u.locale,
            daily_claim_cap=u.daily_claim_cap,
            holding_cap=u.holding_cap,
        )
        for u in rows
    ]


def count_users(session: Session) -> int:
    """How many staff users exist."""
    return int(session.scalar(select(func.count()).select_from(User)) or 0)
