"""Bulk writes inside the caller's transaction: COPY on PostgreSQL, executemany on SQLite.

Values are passed as plain Python tuples; datetimes must be aware (stored as UTC), dicts and
lists are written as JSON. Staging tables are per-connection temporary tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from crm.core.db import is_postgres


def json_text(value: Any) -> str:
    """A value as compact JSON text, the way bulk writes store dicts and lists."""
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


@lru_cache(maxsize=1 << 16)
def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's storage format for DateTime on SQLite (naive UTC), so ORM reads agree.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _sqlite_time(value)
    if isinstance(value, dict | list):
        return json_text(value)
    return value


def _converted(
    rows: Iterable[Sequence[Any]], needs: tuple[type, ...], convert: Callable[[Any], Any]
) -> list[Sequence[Any]]:
    """Rows with the values of the types in ``needs`` converted, column by column.

    Only the columns that hold such a value are touched, so plain columns cost nothing.
    """
    rows = list(rows)
    if not rows:
        return rows
    columns = list(zip(*rows, strict=True))
    touched = False
    for n, column in enumerate(columns):
        if any(issubclass(t, needs) for t in set(map(type, column))):
            columns[n] = tuple(map(convert, column))
            touched = True
    return list(zip(*columns, strict=True)) if touched else rows


# COPY's text format: a tab between columns, a newline after each row, \\N for NULL, and a
# backslash before a backslash, tab, newline or carriage return inside a value.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = ("\\", "\t", "\n", "\r")
_PLAIN = frozenset({int, float, bool, datetime})
_COPY_ROWS = 5000  # rows formatted per block: bounds the text held in memory at once


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, dict | list):
        return json_text(value).translate(_COPY_ESCAPES)
    return str(value)


@lru_cache(maxsize=1 << 16)
def _copy_time(value: datetime) -> str:
    # A batch repeats its clock and the export's (minute-resolution) times: format each once.
    return str(value)


def _copy_column(column: tuple[Any, ...]) -> Iterable[str]:
    types = set(map(type, column))
    if types == {datetime}:
        return map(_copy_time, column)  # aware datetimes
    if types <= _PLAIN:
        return map(str, column)  # numbers, booleans (True/False) and aware datetimes
    if types == {str}:
        joined = "\x00".join(column)
        if not any(c in joined for c in _COPY_SPECIAL):
            return column
        return [v.translate(_COPY_ESCAPES) for v in column]
    return map(_copy_value, column)


def _copy_text(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as one block of COPY text, formatted column by column (one pass per column)."""
    rows = list(rows)
    if not rows:
        return ""
    columns = [_copy_column(c) for c in zip(*rows, strict=True)]
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


def _driver(session: Session) -> Any:
    return session.connection().connection.driver_connection


def bulk_insert(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Append rows to a table (no conflict handling): COPY or executemany."""
    cols = ", ".join(columns)
    if is_postgres(session):
        data = rows if isinstance(rows, list) else list(rows)
        if not data:
            return
        with (
            _driver(session).cursor() as cur,
            cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp,
        ):
            for start in range(0, len(data), _COPY_ROWS):
                cp.write(_copy_text(data[start : start + _COPY_ROWS]))
        return
    data = _converted(rows, (datetime, dict, list), _sqlite_value)
    if not data:
        return
    marks = ", ".join("?" for _ in columns)
    _driver(session).executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", data)


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


_SEP = "\x1f"  # unit separator: joins a column's values into one text parameter


def rows_source(
    session: Session,
    name: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[Any]],
    *,
    alias: str = "s",
) -> tuple[str, dict[str, Any]]:
    """A FROM item over rows (as ``alias``) for one statement to read, and its parameters.

    On PostgreSQL each column travels as one text parameter, split and unnested by the
    server: one statement instead of creating, emptying, filling and analyzing a staging
    table, and no per-value work in the driver. Otherwise (SQLite, or values the joined text
    cannot carry: NULL, a lone empty string, the separator) the rows go to the staging table
    ``name``.
    """
    rows = list(rows)
    if is_postgres(session) and rows:
        params: dict[str, Any] = {}
        arrays = []
        for n, (column, (_, typ)) in enumerate(zip(zip(*rows, strict=True), columns, strict=True)):
            if None in column:
                break  # NULL has no spelling in the joined text
            joined = _SEP.join(map(str, column))
            if not joined or joined.count(_SEP) != len(column) - 1:
                break  # one empty value splits into no element; a separator into two
            params[f"{name}_{n}"] = joined
            arrays.append(f"CAST(string_to_array(:{name}_{n}, '{_SEP}') AS {typ}[])")
        else:
            cols = ", ".join(c for c, _ in columns)
            return f"unnest({', '.join(arrays)}) AS {alias} ({cols})", params
    stage(session, name, columns, rows)
    return f"{name} {alias}", {}


def allocate_ids(session: Session, table: str, count: int) -> list[int]:
    """Reserve ``count`` primary keys for rows we insert ourselves (so we know them up front).

    PostgreSQL draws them from the table's sequence; SQLite continues after the highest id,
    which is safe because writers there hold the database lock (BEGIN IMMEDIATE).
    """
    if count <= 0:
        return []
    if is_postgres(session):
        seq = session.execute(text(f"SELECT pg_get_serial_sequence('{table}', 'id')")).scalar_one()
        ids = session.execute(
            text("SELECT array_agg(nextval(CAST(:seq AS regclass))) FROM generate_series(1, :n)"),
            {"seq": seq, "n": count},
        ).scalar_one()
        return sorted(ids)
    top = session.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + count))
