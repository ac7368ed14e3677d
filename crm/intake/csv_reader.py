"""CSV exports (comma, tab, semicolon or pipe separated) read one row at a time."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from crm.contacts.normalize import MAX_FIELD_CHARS, canonical_header, clean_text
from crm.core.errors import InputError
from crm.intake.columns import RAW_KEEP, HeaderSeen, Row, canonical_row, checked_row, map_header
from crm.intake.reasons import Reason, why
from crm.intake.records import RejectedRow

csv.field_size_limit(16 * 1024 * 1024)  # our own rule (MAX_FIELD_CHARS) refuses long cells


def csv_rows(path: Path, encoding: str, header_seen: HeaderSeen) -> Iterator[Row | RejectedRow]:
    """Rows after the first non-blank line (the header); bad lines become rejected rows."""
    with path.open("r", encoding=encoding, errors="replace", newline="") as fh:
        first = fh.readline()
        delimiter = max(",\t;|", key=first.count)
        fh.seek(0)
        reader = csv.reader(fh, delimiter=delimiter)
        header: list[str] | None = None
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RejectedRow(reader.line_num, "", why(Reason.UNREADABLE_CSV, detail=str(exc)))
                continue
            if header is None:
                if not any(v.strip() for v in values):
                    continue
                header = map_header(values)
                header_seen.seen = True
                header_seen.columns = header
                if not any(canonical_header(v) for v in values):
                    raise InputError(
                        "error.intake.no_known_columns_seen",
                        name=path.name,
                        seen=", ".join(clean_text(v) for v in values[:6])[:120],
                    )
                continue
            if not "".join(values).strip():
                continue
            raw = delimiter.join(values)
            if "\ufffd" in raw:
                reason = why(Reason.UNDECODABLE, encoding=encoding)
                yield RejectedRow(reader.line_num, raw[:RAW_KEEP], reason)
                continue
            if len(raw) <= MAX_FIELD_CHARS or max(map(len, values)) <= MAX_FIELD_CHARS:
                yield reader.line_num, canonical_row(header, values)
            else:
                yield from checked_row(reader.line_num, header, values, raw)
