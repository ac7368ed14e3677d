"""Joins from a batch's staged rows to big tables that stay index look-ups on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

from crm.core.db import is_postgres


def probe_join(session: Session, table: str, alias: str, columns: str, on: str) -> str:
    """A join clause from a staging table to a big table through its unique index.

    A batch is small next to a table that grows with every import: given the staging table's
    statistics PostgreSQL would hash the whole big table for each batch; a ``LIMIT 1`` lateral
    subquery keeps it to one index lookup per staged row. SQLite does that for a plain join.
    """
    if is_postgres(session):
        probe = f"SELECT {columns} FROM {table} {alias} WHERE {on} LIMIT 1"
        return f" CROSS JOIN LATERAL ({probe}) {alias}"
    return f" JOIN {table} {alias} ON {on}"


@contextmanager
def index_probes(session: Session) -> Iterator[None]:
    """Within the block, PostgreSQL joins staging rows to tables by index lookups only.

    For an UPDATE … FROM a staging table there is no lateral form (see :func:`probe_join`),
    and with stale statistics the planner would otherwise scan the whole table each batch.
    """
    if not is_postgres(session):
        yield
        return
    session.execute(text("SET LOCAL enable_hashjoin = off"))
    session.execute(text("SET LOCAL enable_mergejoin = off"))
    yield  # on an error the transaction rolls back, and these settings with it
    session.execute(text("SET LOCAL enable_hashjoin = on"))
    session.execute(text("SET LOCAL enable_mergejoin = on"))
