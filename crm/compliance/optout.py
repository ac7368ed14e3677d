"""Opt-outs (退订) and consent: who may be messaged on which channel, for which purpose.

An opt-out stops every future message to that contact on that channel (``channel`` NULL: all
channels) at once: planned and deferred outbox rows are skipped with reason ``opted_out`` in
the same transaction, planning leaves opted-out contacts out, and dispatch checks again just
before sending. Contacts from sources that require sign-up consent (in-person QR sign-ups)
get marketing messages only with a recorded marketing consent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import ColumnElement, Engine, and_, exists, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import KeyedColumnElement

from crm.contacts.queries import resolve_contact_id
from crm.core.audit import audit
from crm.core.db import transaction
from crm.core.errors import InputError
from crm.core.settings import Settings
from crm.core.vocabulary import EventKind, OutboxState, SourceKind
from crm.models import Consent, Event, OutboxMessage, SourceInstance, Touch, utcnow

OPT_OUT = "opt_out"
CONSENT = "consent"
OPTED_OUT = "opted_out"
NO_CONSENT = "no_marketing_consent"
# Replies that mean "stop": 退订 and its usual short forms (compared case-insensitively).
STOP_WORDS = frozenset({"退订", "TD", "T", "退", "取消订阅", "UNSUBSCRIBE", "STOP"})
# Sources whose sign-up form asks for consent: without it, no marketing.
CONSENT_SOURCES = (SourceKind.QR_SIGNUP.value,)
_SALT = "qunflow-unsubscribe"


def is_stop_reply(text: str) -> bool:
    """True when a reply asks to stop messages (退订 / TD …)."""
    return text.strip().strip("。.!！ ").upper() in STOP_WORDS


def opted_out_clause(
    contact_id: KeyedColumnElement[Any] | ColumnElement[Any], channel: Any
) -> ColumnElement[bool]:
    """SQL: the contact opted out of this channel (or of all channels)."""
    return exists().where(
        Consent.contact_id == contact_id,
        Consent.kind == OPT_OUT,
        or_(Consent.channel.is_(None), Consent.channel == channel),
    )


def lacks_marketing_consent_clause(
    contact_id: KeyedColumnElement[Any] | ColumnElement[Any], channel: Any
) -> ColumnElement[bool]:
    """SQL: the contact came from a consent-requiring source and gave no marketing consent."""
    needs = exists().where(
        Touch.contact_id == contact_id,
        SourceInstance.id == Touch.source_instance_id,
        SourceInstance.kind.in_(CONSENT_SOURCES),
    )
    gave = exists().where(
        Consent.contact_id == contact_id,
        Consent.kind == CONSENT,
        Consent.purpose == "marketing",
        or_(Consent.channel.is_(None), Consent.channel == channel),
    )
    return and_(needs, ~gave)


def opt_out(
    session: Session,
    contact_id: int,
    *,
    channel: str | None = None,
    source: str = "manual",
    evidence: dict[str, Any] | None = None,
    actor: str = "system",
    now: datetime | None = None,
) -> int:
    """Record an opt-out and skip its pending messages on that channel; returns skipped."""
    now = now or utcnow()
    cid = resolve_contact_id(session, contact_id)
    session.add(
        Consent(
            contact_id=cid,
            kind=OPT_OUT,
            channel=channel,
            purpose="all",
            source=source,
            evidence=evidence or {},
            recorded_at=now,
        )
    )
    session.add(
        Event(
            contact_id=cid,
            kind=EventKind.OPT_OUT.value,
            occurred_at=now,
            payload={"channel": channel, "source": source},
        )
    )
    stmt = (
        update(OutboxMessage)
        .where(
            OutboxMessage.contact_id == cid,
            OutboxMessage.state.in_([OutboxState.PLANNED.value, OutboxState.DEFERRED.value]),
        )
        .values(state=OutboxState.SKIPPED.value, reason=OPTED_OUT, updated_at=now)
    )
    if channel is not None:
        stmt = stmt.where(OutboxMessage.channel == channel)
    skipped = session.execute(stmt).rowcount or 0  # type: ignore[attr-defined]
    audit(
        session,
        actor,
        "contact.opt_out",
        object_type="contact",
        object_id=cid,
        details={"channel": channel, "source": source, "skipped": skipped},
        at=now,
    )
    return int(skipped)


def record_consent(
    session: Session,
    contact_id: int,
    *,
    channel: str | None = None,
    purpose: str = "marketing",
    source: str = "signup form",
    evidence: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """Record a consent given (e.g. the sign-up form's marketing checkbox)."""
    session.add(
        Consent(
            contact_id=resolve_contact_id(session, contact_id),
            kind=CONSENT,
            channel=channel,
            purpose=purpose,
            source=source,
            evidence=evidence or {},
            recorded_at=now or utcnow(),
        )
    )


def is_opted_out(session: Session, contact_id: int, channel: str) -> bool:
    """Whether the contact opted out of this channel (or all channels)."""
    return bool(session.scalar(select(opted_out_clause(literal(contact_id), channel))))


def apply_reply(
    engine: Any, contact_id: int, text: str, *, channel: str, now: datetime | None = None
) -> bool:
    """Handle an inbound reply: 退订 / TD opts the contact out of that channel; True if it did."""
    if not is_stop_reply(text):
        return False
    with transaction(engine) as session:
        opt_out(
            session,
            contact_id,
            channel=channel,
            source=f"reply {text.strip()[:20]}",
            evidence={"reply": text.strip()[:200]},
            now=now,
        )
    return True


def unsubscribe_token(contact_id: int, channel: str | None, *, settings: Settings) -> str:
    """A signed token for an unsubscribe link (contact and channel; no personal data)."""
    key = settings.secret_key.get_secret_value()
    return str(URLSafeSerializer(key, salt=_SALT).dumps({"c": contact_id, "ch": channel}))


def unsubscribe_url(contact_id: int, channel: str | None, *, settings: Settings) -> str:
    """The unsubscribe link put into messages (the web app serves GET /u/<token>)."""
    token = unsubscribe_token(contact_id, channel, settings=settings)
    return f"{settings.public_base_url.rstrip('/')}/u/{token}"


@dataclass(frozen=True)
class Unsubscribe:
    """Whom an unsubscribe link names, and how many planned messages opting out skipped."""

    contact_id: int
    channel: str | None  # None: every channel
    skipped: int = 0


def read_unsubscribe(token: str, *, settings: Settings) -> Unsubscribe:
    """The contact and channel a signed unsubscribe token names; InputError for a bad token."""
    key = settings.secret_key.get_secret_value()
    try:
        data = URLSafeSerializer(key, salt=_SALT).loads(token)
    except BadSignature as exc:
        raise InputError("error.compliance.unsubscribe_invalid") from exc
    return Unsubscribe(contact_id=int(data["c"]), channel=data.get("ch"))


def apply_unsubscribe(
    engine: Engine, token: str, *, settings: Settings, now: datetime | None = None
) -> Unsubscribe:
    """Opt out the contact a signed unsubscribe token names; InputError for a bad token."""
    named = read_unsubscribe(token, settings=settings)
    with transaction(engine) as session:
        skipped = opt_out(
            session, named.contact_id, channel=named.channel, source="unsubscribe link", now=now
        )
    return Unsubscribe(contact_id=named.contact_id, channel=named.channel, skipped=skipped)
