"""Partial indexes, declared apart from their tables because of what their predicate costs.

A predicate is a dialect option (``postgresql_where``, ``sqlite_where``), and SQLAlchemy checks
one by importing that dialect's whole package: every command would load both dialects with the
models, whichever database it reads. Only DDL needs the predicates, so the migration environment
(and the schema test that compares the migrated database with the models) adds them to the
metadata with :func:`add_partial_indexes`; queries use the tables without them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Index, MetaData, text


@dataclass(frozen=True)
class PartialIndex:
    name: str
    table: str
    columns: tuple[str, ...]
    where: str  # the same SQL on both databases


PARTIAL_INDEXES = (
    # Only the few pending records are looked up by status: imports store almost all of
    # them already processed, so a full status index cost every insert for nothing.
    PartialIndex("ix_raw_records_pending", "raw_records", ("id",), "status = 'pending'"),
    # The callback worker claims open callbacks only; handled ones pile up.
    PartialIndex(
        "ix_wecom_callbacks_open", "wecom_callbacks", ("id",), "status IN ('pending', 'claimed')"
    ),
)


def add_partial_indexes(metadata: MetaData) -> None:
    """Put the partial indexes on their tables in ``metadata`` (once; again is a no-op)."""
    for spec in PARTIAL_INDEXES:
        table = metadata.tables[spec.table]
        if any(index.name == spec.name for index in table.indexes):
            continue
        Index(
            spec.name,
            *(table.c[column] for column in spec.columns),
            postgresql_where=text(spec.where),
            sqlite_where=text(spec.where),
        )
