"""The column mapping of file exports: headers to canonical keys, cells to clean values.

Headers are mapped through :data:`crm.contacts.normalize.HEADER_ALIASES`; a cell longer than
:data:`crm.contacts.normalize.MAX_FIELD_CHARS` makes its row a :class:`RejectedRow`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from crm.contacts.normalize import (
    IDENTITY_FIELDS,
    MAX_FIELD_CHARS,
    canonical_header,
    clean_name,
    clean_text,
)
from crm.intake.reasons import Reason, why
from crm.intake.records import RejectedRow

RAW_KEEP = 10_000  # quarantined raw content is kept up to this many characters
IDENTITY_COLUMNS = frozenset(IDENTITY_FIELDS) | {f"referrer_{f}" for f in IDENTITY_FIELDS}
_VERBATIM = frozenset({"name", "message", "note"})

Row = tuple[int, dict[str, Any]]  # (row number, canonical dict)


@dataclass(slots=True)
class HeaderSeen:
    """What a format reader saw of the header, for the checks on open."""

    seen: bool = False
    columns: list[str] | None = None


def map_header(raw: list[Any]) -> list[str]:
    """Each header cell's canonical key (or the cleaned header text when unknown)."""
    return [canonical_header(col) or clean_text(col) for col in raw]


def cell(value: Any) -> Any:
    """A cell as text (XLSX numbers and dates become strings); JSON values stay as they are."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # phones typed as numbers in a spreadsheet
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def canonical_row(header: list[str], values: list[Any]) -> dict[str, Any]:
    """A row as a dict of canonical keys to cleaned, non-empty values (first column wins)."""
    row: dict[str, Any] = {}
    for key, value in zip(header, values, strict=False):
        if value is None or value == "" or not key:
            continue
        if isinstance(value, str):
            if value.isascii() and value.isprintable():
                value = value.strip()  # what clean_text/clean_name do to such text, cheaper
            else:
                value = clean_name(value) if key in _VERBATIM else clean_text(value)
            if value == "":
                continue
        else:
            value = cell(value)
            if isinstance(value, str):
                value = value.strip()
                if value == "":
                    continue
        if key not in row:
            row[key] = value
    return row


def checked_row(
    n: int, header: list[str], values: list[Any], raw: str
) -> Iterator[Row | RejectedRow]:
    """The row, or a rejection naming its first oversized field."""
    if not any(isinstance(v, str) and len(v) > MAX_FIELD_CHARS for v in values):
        yield n, canonical_row(header, values)
        return
    for key, value in zip(header, values, strict=False):
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            yield RejectedRow(
                n,
                raw[:RAW_KEEP],
                why(Reason.OVERSIZED_FIELD, field=key, size=len(value), limit=MAX_FIELD_CHARS),
            )
            return
    yield n, canonical_row(header, values)
