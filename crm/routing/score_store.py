"""Writing changed scores back at once: score, breakdown, warnings, rules version and time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from crm.core.db import is_postgres
from crm.models import UTCDateTime
from crm.routing.rules.model import Rules
from crm.routing.signals import Scored


def store_scores(
    session: Session, changed: Sequence[tuple[Scored, str]], rules: Rules, now: datetime
) -> None:
    """Write changed scores back at once (PostgreSQL: COPY into a temp table + UPDATE … FROM).

    ``changed`` pairs each score with its breakdown's stored text
    (:func:`crm.routing.signals.breakdown_text`).
    """
    if not changed:
        return
    if is_postgres(session):
        _store_scores_pg(session, changed, rules, now)
        return
    session.execute(
        _UPDATE_SCORES,
        [
            {
                "id": s.contact_id,
                "score": s.score,
                "breakdown": text_form,
                "warnings": s.violations,
                "version": rules.version,
                "at": now,
            }
            for s, text_form in changed
        ],
    )


_UPDATE_SCORES = text(
    "UPDATE contacts SET score = :score, score_breakdown = :breakdown, warnings = :warnings, "
    "rules_version = :version, scored_at = :at, updated_at = :at WHERE id = :id"
).bindparams(bindparam("at", type_=UTCDateTime()))


def _store_scores_pg(
    session: Session, changed: Sequence[tuple[Scored, str]], rules: Rules, now: datetime
) -> None:
    conn = session.connection()
    conn.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS route_scores "
            "(id bigint PRIMARY KEY, score integer, breakdown jsonb, warnings integer) "
            "ON COMMIT DROP"
        )
    )
    conn.execute(text("TRUNCATE route_scores"))
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy("COPY route_scores (id, score, breakdown, warnings) FROM STDIN") as copy,
    ):
        for s, text_form in changed:
            copy.write_row((s.contact_id, s.score, text_form, s.violations))
    conn.execute(
        text(
            "UPDATE contacts SET score = s.score, score_breakdown = s.breakdown, "
            "warnings = s.warnings, rules_version = :version, scored_at = :at, updated_at = :at "
            "FROM route_scores s WHERE contacts.id = s.id"
        ),
        {"version": rules.version, "at": now},
    )
