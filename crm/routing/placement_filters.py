"""Who a placement pass leaves waiting: contacts who opted out, and what each can be reached by.

A contact with no handle on a group's platform and no email to fall back to is not invited
there: the invitation would reach nobody and its membership would hold a slot of the group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import BigInteger, any_, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from crm.core.db import is_postgres
from crm.core.vocabulary import EventKind, IdentityKind
from crm.models import Consent, Event, Identity
from crm.routing.group_choice import PLATFORM_ADDRESS_KIND


def chunks(session: Session, ids: Sequence[int]) -> Iterator[Callable[[Any], Any]]:
    """``among(column)`` conditions that together cover ``ids``, in bounded chunks."""
    # PostgreSQL takes the ids as one array (= ANY), not thousands of bound parameters.
    pg = is_postgres(session)
    step = max(len(ids), 1) if pg else 5000
    for start in range(0, len(ids), step):
        chunk = list(ids[start : start + step])

        def among(column: Any, chunk: list[int] = chunk) -> Any:
            return column == any_(literal(chunk, ARRAY(BigInteger))) if pg else column.in_(chunk)

        yield among


def opted_out_among(session: Session, contact_ids: Sequence[int]) -> set[int]:
    """Which of these contacts opted out (an opt-out event, or an opt-out after any consent)."""
    out: set[int] = set()
    for among in chunks(session, contact_ids):
        out.update(
            session.scalars(
                select(Event.contact_id)
                .where(among(Event.contact_id), Event.kind == EventKind.OPT_OUT.value)
                .distinct()
            )
        )
        marks: dict[int, dict[str, int]] = {}
        for cid, kind, last in session.execute(
            select(Consent.contact_id, Consent.kind, func.max(Consent.id))
            .where(among(Consent.contact_id))
            .group_by(Consent.contact_id, Consent.kind)
        ):
            marks.setdefault(int(cid), {})[kind] = int(last)
        out.update(cid for cid, k in marks.items() if k.get("opt_out", 0) > k.get("consent", 0))
    return out


def address_kinds_among(session: Session, contact_ids: Sequence[int]) -> dict[int, set[str]]:
    """The kinds of address (chat handles, email) each of these contacts can be invited by."""
    kinds = [*PLATFORM_ADDRESS_KIND.values(), IdentityKind.EMAIL.value]
    out: dict[int, set[str]] = {}
    for among in chunks(session, contact_ids):
        for cid, kind in session.execute(
            select(Identity.contact_id, Identity.kind)
            .where(among(Identity.contact_id), Identity.kind.in_(kinds))
            .distinct()
        ):
            out.setdefault(int(cid), set()).add(kind)
    return out
