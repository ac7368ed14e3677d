"""The scoring feed: a batch of contacts' events reduced in one aggregate query, scored in Python.

Events are reduced in SQL to one row per contact (counts per kind, intent and ad counts, the
decayed engagement sum, the ids of the kinds each signal cites as evidence); the integer
points come from :func:`crm.routing.signals.evaluate_tally`, the same arithmetic as
:func:`crm.routing.signals.evaluate`. Both SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    Subquery,
    Text,
    and_,
    any_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.types import NullType

from crm.core.db import is_postgres
from crm.core.vocabulary import ContactStatus, EventKind, Tier
from crm.models import Consent, Contact, Event, SourceInstance, Touch
from crm.routing.facts import (
    ACTIVITY_KINDS,
    COUNTED_KINDS,
    EVIDENCE_SIGNALS,
    Answer,
    ContactFacts,
    Tally,
    ad_labels,
    answers_of,
    intent_patterns,
)
from crm.routing.rules.model import Rules
from crm.routing.signals import Scored, breakdown_text, evaluate_tally

_Within = Callable[[Any], Any]


class Batch(NamedTuple):
    """A batch of active contacts: how many, how many not scored yet, first and last id."""

    size: int
    unscored: int
    first: int
    last: int


class Rescored(NamedTuple):
    """A batch scored: every contact, and those whose stored score must be rewritten."""

    scored: list[Scored]
    changed: list[tuple[Scored, str]]


def batches(session: Session, size: int) -> Iterator[Batch]:
    """The active contacts in batches of ``size``, in id order."""
    last = 0
    unscored = Contact.tier.is_(None)
    while True:
        # A batch's bounds and counts in one row: fetching its ids cost more than scoring it.
        rows = (
            select(Contact.id.label("id"), unscored.label("unscored"))
            .where(Contact.status == ContactStatus.ACTIVE.value, Contact.id > last)
            .order_by(Contact.id)
            .limit(size)
            .subquery()
        )
        count, new, first, last_id = session.execute(
            select(
                func.count(),
                func.count().filter(rows.c.unscored),
                func.min(rows.c.id),
                func.max(rows.c.id),
            )
        ).one()
        if not count:
            return
        last = int(last_id)
        yield Batch(int(count), int(new), int(first), last)


class Fetched(NamedTuple):
    """A batch's statement rows, read and ready to score without the database."""

    rows: Sequence[Any]
    reader: _RowReader


def fetch_range(
    session: Session,
    lo: int,
    hi: int,
    rules: Rules,
    now: datetime,
    *,
    only: Sequence[int] | None = None,
) -> Fetched:
    """The rows :func:`score_rows` scores: active contacts in [lo, hi] (and ``only``, if given)."""
    pg = is_postgres(session)

    def within(column: Any) -> Any:
        return _in_batch(column, lo, hi, only, pg)

    stmt = _batch_statement(session, within, rules, now, pg)
    answers = _answers(session, within, rules)
    # Core execution: the ORM's row loading layer cost as much as the scoring.
    result = session.connection().execute(stmt)
    return Fetched(result.all(), _RowReader(list(result.keys()), answers))


def score_rows(fetched: Fetched, rules: Rules, now: datetime) -> Rescored:
    """Score fetched rows. A contact is ``changed`` when its score, breakdown, warnings or
    rules version differ from the stored ones."""
    reader = fetched.reader
    scored: list[Scored] = []
    changed: list[tuple[Scored, str]] = []
    version = rules.version
    for row in fetched.rows:
        s = evaluate_tally(reader.facts(row), reader.tally(row), rules, now)
        scored.append(s)
        text_form = breakdown_text(s.breakdown)
        if reader.differs(row, s, text_form, version):
            changed.append((s, text_form))
    return Rescored(scored, changed)


def score_range(
    session: Session,
    lo: int,
    hi: int,
    rules: Rules,
    now: datetime,
    *,
    only: Sequence[int] | None = None,
) -> Rescored:
    """Score the active contacts with ids in [lo, hi] (and in ``only``, when given)."""
    return score_rows(fetch_range(session, lo, hi, rules, now, only=only), rules, now)


def _in_batch(column: Any, lo: int, hi: int, only: Sequence[int] | None, pg: bool) -> Any:
    if only is None:
        return column.between(lo, hi)
    # PostgreSQL takes the ids as one array, not thousands of bound parameters.
    listed = column == any_(literal(list(only), ARRAY(BigInteger))) if pg else column.in_(only)
    return and_(column.between(lo, hi), listed)


def _batch_statement(
    session: Session, within: _Within, rules: Rules, now: datetime, pg: bool
) -> Select[Any]:
    """One row per active contact of the batch: its stored score, sources, consents, events."""
    agg = _event_aggregates(_flagged_events(session, within, rules, pg), rules, now, pg)
    sources = _source_kinds(within, pg)
    consents = _consent_marks(within)
    return (
        select(
            Contact.id,
            Contact.tier,
            Contact.status,
            Contact.first_seen_at,
            Contact.last_active_at,
            Contact.tier_entered_at,
            Contact.referred_by_id,
            Contact.score,
            cast(Contact.score_breakdown, Text).label("stored"),
            Contact.warnings,
            Contact.rules_version,
            sources.c.kinds,
            consents.c.opt_out,
            consents.c.consent,
            agg,
        )
        .outerjoin(agg, agg.c.cid == Contact.id)
        .outerjoin(sources, sources.c.cid == Contact.id)
        .outerjoin(consents, consents.c.cid == Contact.id)
        .where(within(Contact.id), Contact.status == ContactStatus.ACTIVE.value)
        .order_by(Contact.id)
    )


def _flagged_events(session: Session, within: _Within, rules: Rules, pg: bool) -> Subquery:
    """The batch's events with their UTC day and a flag: an intent message or an ad."""
    message_text = func.lower(
        func.coalesce(Event.payload["message"].as_string(), Event.payload["text"].as_string())
    )
    label = func.lower(Event.payload["violation"].as_string())
    flag = case(
        (and_(Event.kind == EventKind.MESSAGE.value, _matches_any(message_text, rules, pg)), 1),
        (and_(Event.kind == EventKind.VIOLATION.value, label.in_(sorted(ad_labels(rules)))), 1),
        else_=0,
    )
    day = (
        cast(func.timezone("UTC", Event.occurred_at), Date) if pg else func.date(Event.occurred_at)
    )
    flagged = select(
        Event.contact_id, Event.kind, Event.id, flag.label("flag"), day.label("day")
    ).where(within(Event.contact_id))
    # OFFSET 0 keeps the subquery from being flattened: the flag (a JSON lookup and a regular
    # expression) and the day are computed once per event, not once per aggregate citing them.
    return flagged.offset(0).subquery()


def _matches_any(column: Any, rules: Rules, pg: bool) -> Any:
    # PostgreSQL: LIKE ANY over an array, several times cheaper than one regular expression.
    patterns = intent_patterns(rules)
    if pg:
        return column.like(any_(literal(patterns, ARRAY(Text))))
    return or_(*[column.like(p, escape="\\") for p in patterns])


def _event_aggregates(ranked: Subquery, rules: Rules, now: datetime, pg: bool) -> Subquery:
    """Per contact: counts per kind, intent and ads, the decayed sum, the evidence ids."""
    r = ranked.c
    half_life = float(rules.signals.engagement.half_life_days)
    today = now.astimezone(UTC).date()
    if pg:
        age = func.greatest(literal(today, Date) - r.day, 0)
        weight = func.power(
            cast(literal(0.5), Float), cast(age, Float) / cast(literal(half_life), Float)
        )
    else:
        age = func.max(func.julianday(literal(today.isoformat())) - func.julianday(r.day), 0)
        weight = func.power(0.5, age / literal(half_life))
    engaged = [k.value for k in rules.signals.engagement.kinds]
    message, violation = EventKind.MESSAGE.value, EventKind.VIOLATION.value
    intent, ads = and_(r.kind == message, r.flag == 1), and_(r.kind == violation, r.flag == 1)
    evidence = {
        "intent": intent,
        "engagement": r.kind.in_(engaged),
        "contribution": r.kind.in_([message, EventKind.SHARE.value]),
        "referrals": r.kind == EventKind.REFERRAL.value,
        "attendance": r.kind == EventKind.ACTIVITY_ATTENDED.value,
        "ads": ads,
        "violations": r.kind == violation,
        "opt_out": r.kind == EventKind.OPT_OUT.value,
        "churn": r.kind == EventKind.CHURN.value,
    }
    return (
        select(
            r.contact_id.label("cid"),
            *[func.count().filter(r.kind == k.value).label(f"n_{k.value}") for k in COUNTED_KINDS],
            func.count().filter(intent).label("n_intent"),
            func.count().filter(ads).label("n_ads"),
            func.sum(weight).filter(r.kind.in_(engaged)).label("decayed"),
            func.max(r.day).filter(r.kind.in_([k.value for k in ACTIVITY_KINDS])).label("last_day"),
            *[_id_list(r.id, evidence[name], pg).label(f"e_{name}") for name in EVIDENCE_SIGNALS],
        )
        .group_by(r.contact_id)
        .subquery()
    )


def _id_list(expr: Any, cond: Any, pg: bool) -> Any:
    # PostgreSQL hands back a list (psycopg parses it; no per-element SQLAlchemy processing);
    # SQLite a comma-separated string (see _id_seq).
    if pg:
        return type_coerce(func.array_agg(expr).filter(cond), NullType())
    return func.group_concat(expr).filter(cond)


def _source_kinds(within: _Within, pg: bool) -> Subquery:
    """Per contact: the distinct kinds of the sources it arrived through, comma-separated."""
    kinds = (
        select(Touch.contact_id, SourceInstance.kind)
        .join(SourceInstance, SourceInstance.id == Touch.source_instance_id)
        .where(within(Touch.contact_id))
        .distinct()
        .subquery()
    )
    listed = func.string_agg(kinds.c.kind, literal(",")) if pg else func.group_concat(kinds.c.kind)
    return (
        select(kinds.c.contact_id.label("cid"), listed.label("kinds"))
        .group_by(kinds.c.contact_id)
        .subquery()
    )


def _consent_marks(within: _Within) -> Subquery:
    """Per contact: its latest opt-out and latest consent (an opt-out after the consent counts)."""
    return (
        select(
            Consent.contact_id.label("cid"),
            func.max(Consent.id).filter(Consent.kind == "opt_out").label("opt_out"),
            func.max(Consent.id).filter(Consent.kind == "consent").label("consent"),
        )
        .where(within(Consent.contact_id))
        .group_by(Consent.contact_id)
        .subquery()
    )


def _answers(session: Session, within: _Within, rules: Rules) -> dict[int, list[Answer]]:
    """The batch's screening answers by contact (only read while the rules ask questions)."""
    answers: dict[int, list[Answer]] = {}
    if rules.signals.screening.questions:
        for cid, eid, payload in session.execute(
            select(Event.contact_id, Event.id, Event.payload).where(
                within(Event.contact_id), Event.kind == EventKind.ANSWER.value
            )
        ):
            answers.setdefault(int(cid), []).append(Answer(int(eid), answers_of(payload or {})))
    return answers


class _RowReader:
    """Reads the batch statement's rows by position: a mapping per row cost more than scoring."""

    def __init__(self, keys: Sequence[str], answers: Mapping[int, list[Answer]]) -> None:
        at = {name: i for i, name in enumerate(keys)}
        self._answers = answers
        self._counted = [(at[f"n_{k.value}"], k.value) for k in COUNTED_KINDS]
        self._evidence = {name: at[f"e_{name}"] for name in EVIDENCE_SIGNALS}
        self._sources: dict[tuple[Any, bool], frozenset[str]] = {}
        (
            self._id,
            self._tier,
            self._status,
            self._first,
            self._active,
            self._entered,
            self._kinds,
            self._ref,
            self._opt,
            self._consent,
        ) = (
            at[c]
            for c in (
                "id",
                "tier",
                "status",
                "first_seen_at",
                "last_active_at",
                "tier_entered_at",
                "kinds",
                "referred_by_id",
                "opt_out",
                "consent",
            )
        )
        self._cid, self._last, self._intent, self._ads, self._decayed = (
            at[c] for c in ("cid", "last_day", "n_intent", "n_ads", "decayed")
        )
        self._score, self._stored, self._warnings, self._version = (
            at[c] for c in ("score", "stored", "warnings", "rules_version")
        )

    def facts(self, row: Sequence[Any]) -> ContactFacts:
        """The contact's facts: sources (a referrer counts as one), answers, consent, dates."""
        kinds, referred = row[self._kinds], row[self._ref] is not None
        sources = self._sources.get((kinds, referred))
        if sources is None:
            names = set(str(kinds).split(",")) if kinds else set()
            if referred:
                names.add("referral")
            sources = self._sources[(kinds, referred)] = frozenset(names)
        opt, consent = row[self._opt], row[self._consent]
        cid = row[self._id]
        tier = row[self._tier]
        return ContactFacts(
            contact_id=cid,
            sources=sources,
            answers=tuple(self._answers.get(cid, ())),
            opted_out=opt is not None and opt > (consent or 0),
            tier=Tier(tier) if tier is not None else None,
            status=ContactStatus(row[self._status]),
            first_seen_at=row[self._first],
            last_active_at=row[self._active],
            tier_entered_at=row[self._entered],
        )

    def tally(self, row: Sequence[Any]) -> Tally:
        """The contact's event aggregates (none when it has no events)."""
        if row[self._cid] is None:
            return Tally(counts={})
        last = row[self._last]
        return Tally(
            counts={kind: row[i] for i, kind in self._counted if row[i]},
            intent=row[self._intent],
            ads=row[self._ads],
            decayed=float(row[self._decayed] or 0.0),
            last_day=_as_date(last) if last is not None else None,
            evidence=_RowEvidence(row, self._evidence),
        )

    def differs(self, row: Sequence[Any], s: Scored, text_form: str, version: str) -> bool:
        """Whether the stored score, breakdown, warnings or rules version must be rewritten."""
        return bool(
            s.score != row[self._score]
            or text_form != row[self._stored]
            or s.violations != row[self._warnings]
            or row[self._version] != version
        )


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


class _RowEvidence(Mapping[str, Sequence[int]]):
    """A row's evidence lists, parsed only for the signals that score (most contacts: few)."""

    __slots__ = ("_at", "_row")

    def __init__(self, row: Sequence[Any], at: Mapping[str, int]) -> None:
        self._row = row
        self._at = at

    def __getitem__(self, name: str) -> Sequence[int]:
        return _id_seq(self._row[self._at[name]])

    def get(self, name: str, default: Any = None) -> Any:
        # Called for every signal that scores: Mapping's generic get (through __getitem__ and
        # a KeyError) cost a fifth of the scoring.
        at = self._at.get(name)
        return default if at is None else _id_seq(self._row[at])

    def __iter__(self) -> Iterator[str]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)


def _id_seq(value: Any) -> Sequence[int]:
    if not value:
        return ()
    if isinstance(value, list):
        return value
    return [int(v) for v in str(value).split(",")]
