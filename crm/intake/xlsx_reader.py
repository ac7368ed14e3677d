"""XLSX workbooks (the first sheet), streamed with openpyxl's read-only mode.

The workbook has passed :func:`crm.intake.xlsx_limits.check_workbook` (sizes, ratios, rows,
cells per row, text length) before this reads it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zipfile import BadZipFile

from crm.contacts.normalize import canonical_header
from crm.core.errors import InputError
from crm.intake.columns import HeaderSeen, Row, checked_row, map_header
from crm.intake.records import RejectedRow
from crm.intake.xlsx_limits import MAX_ROWS


def xlsx_rows(path: Path, header_seen: HeaderSeen) -> Iterator[Row | RejectedRow]:
    """Rows of the first sheet after its first non-blank row (the header)."""
    from openpyxl import load_workbook

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # style warnings from other tools' exports
            book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise InputError("error.intake.xlsx_unreadable", name=path.name, detail=str(exc)) from exc
    try:
        sheet = book.worksheets[0]
        # The dimension a file claims (A1:XFD1048576) would pad every row to its width.
        sheet.reset_dimensions()
        yield from _sheet_rows(path, sheet.iter_rows(values_only=True), header_seen)
    except (ValueError, TypeError, KeyError, OSError, SyntaxError, EOFError, BadZipFile) as exc:
        raise InputError("error.intake.xlsx_unreadable", name=path.name, detail=str(exc)) from exc
    finally:
        book.close()


def _sheet_rows(
    path: Path, values: Iterator[tuple[Any, ...]], header_seen: HeaderSeen
) -> Iterator[Row | RejectedRow]:
    header: list[str] | None = None
    for n, row in enumerate(values, start=1):
        if n > MAX_ROWS:
            raise InputError("error.intake.too_many_rows", name=path.name, limit=MAX_ROWS)
        cells = list(row)
        if cells.count(None) + cells.count("") == len(cells):
            continue
        if header is None:
            header = map_header(cells)
            header_seen.seen = True
            header_seen.columns = header
            if not any(canonical_header(v) for v in cells if v is not None):
                raise InputError("error.intake.no_known_columns", name=path.name)
            continue
        raw = "\t".join("" if v is None else str(v) for v in cells)
        yield from checked_row(n, header, cells, raw)
