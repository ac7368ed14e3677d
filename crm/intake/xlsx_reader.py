"""XLSX workbooks (the first sheet), streamed with openpyxl's read-only mode."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

from crm.contacts.normalize import canonical_header
from crm.core.errors import InputError
from crm.intake.columns import HeaderSeen, Row, checked_row, map_header
from crm.intake.records import RejectedRow


def xlsx_rows(path: Path, header_seen: HeaderSeen) -> Iterator[Row | RejectedRow]:
    """Rows of the first sheet after its first non-blank row (the header)."""
    from openpyxl import load_workbook

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # style warnings from other tools' exports
            book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise InputError(f"{path.name}: not a readable XLSX workbook ({exc})") from exc
    try:
        sheet = book.worksheets[0]
        header: list[str] | None = None
        for n, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = list(values)
            if not any(v not in (None, "") for v in cells):
                continue
            if header is None:
                header = map_header(cells)
                header_seen.seen = True
                header_seen.columns = header
                if not any(canonical_header(v) for v in cells if v is not None):
                    raise InputError(f"{path.name}: no recognizable columns in the header")
                continue
            raw = "\t".join("" if v is None else str(v) for v in cells)
            yield from checked_row(n, header, cells, raw)
    finally:
        book.close()
