"""Bulk writes inside the caller's transaction: COPY on PostgreSQL, executemany on SQLite.

Values are passed as plain Python tuples; datetimes must be aware (stored as UTC), dicts and
lists are written as JSON. Staging tables are per-connection temporary tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from crm.db import is_postgres


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def _pg_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return _json(value)
    return value


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # SQLAlchemy's storage format for DateTime on SQLite (naive UTC), so ORM reads agree.
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dict | list):
        return _json(value)
    return value


def _driver(session: Session) -> Any:
    return session.connection().connection.driver_connection


def bulk_insert(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Append rows to a table (no conflict handling): COPY or executemany."""
    cols = ", ".join(columns)
    if is_postgres(session):
        with _driver(session).cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row([_pg_value(v) for v in row])
        return
    marks = ", ".join("?" for _ in columns)
    _driver(session).executemany(
        f"INSERT INTO {table} ({cols}) VALUES ({marks})",
        [[_sqlite_value(v) for v in row] for row in rows],
    )


def stage(
    session: Session,
    name: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[Any]],
) -> None:
    """Fill a temporary staging table (emptied first) for a set-based statement to read."""
    ddl = ", ".join(f"{col} {typ}" for col, typ in columns)
    if is_postgres(session):
        session.execute(
            text(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({ddl}) ON COMMIT DELETE ROWS")
        )
        session.execute(text(f"TRUNCATE {name}"))
    else:
        session.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({ddl})"))
        session.execute(text(f"DELETE FROM {name}"))
    bulk_insert(session, name, [c for c, _ in columns], rows)
    if is_postgres(session):
        # Temp tables have no statistics: without them the planner nests loops over both sides.
        session.execute(text(f"ANALYZE {name}"))


def allocate_ids(session: Session, table: str, count: int) -> list[int]:
    """Reserve ``count`` primary keys for rows we insert ourselves (so we know them up front).

    PostgreSQL draws them from the table's sequence; SQLite continues after the highest id,
    which is safe because writers there hold the database lock (BEGIN IMMEDIATE).
    """
    if count <= 0:
        return []
    if is_postgres(session):
        result = session.execute(
            text(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
                "FROM generate_series(1, :n)"
            ),
            {"n": count},
        )
        return sorted(int(r[0]) for r in result)
    top = session.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + count))
