"""Opening an export file: which format and text encoding it is, and whether it is one at all.

CSV (UTF-8, UTF-8 with BOM, GBK/GB18030 — detected from the bytes), XLSX and JSON Lines. A
file that is not what it claims raises :class:`crm.core.errors.InputError` before anything
is stored.
"""

from __future__ import annotations

import codecs
import stat
from collections.abc import Iterator
from pathlib import Path

from crm.core.errors import InputError, os_problem
from crm.intake.columns import IDENTITY_COLUMNS, HeaderSeen, Row
from crm.intake.csv_reader import csv_rows
from crm.intake.jsonl_reader import jsonl_rows
from crm.intake.records import RejectedRow
from crm.intake.xlsx_limits import check_workbook
from crm.intake.xlsx_reader import xlsx_rows

_SNIFF_BYTES = 64 * 1024
_CHECK_ROWS = 50  # rows read on open, at most, to find an identity column


def detect_encoding(sample: bytes, name: str) -> str:
    """The text encoding of a file's first bytes: UTF-8 (with or without BOM) or GB18030."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        raise InputError("error.intake.file_binary", name=name)
    for encoding in ("utf-8", "gb18030"):
        try:
            sample.decode(encoding)
            return encoding
        except UnicodeDecodeError as exc:
            # The sample may end in the middle of a character; only earlier errors count.
            if exc.start >= len(sample) - 4 and len(sample) >= _SNIFF_BYTES:
                return encoding
    raise InputError("error.intake.file_encoding", name=name)


class FileReader:
    """Streams a file as (row number, canonical dict) or RejectedRow; checks the file on open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.header = HeaderSeen()
        try:
            info = path.stat()
        except FileNotFoundError:
            raise InputError("error.intake.file_missing", path=str(path)) from None
        except OSError as exc:
            raise InputError(
                "error.intake.file_unreadable", path=str(path), detail=os_problem(exc)
            ) from exc
        if stat.S_ISDIR(info.st_mode):
            raise InputError("error.intake.file_is_dir", path=str(path))
        if not stat.S_ISREG(info.st_mode):
            raise InputError("error.intake.file_not_regular", path=str(path))
        if info.st_size == 0:
            raise InputError("error.intake.file_empty", name=self.name)
        suffix = path.suffix.lower()
        if suffix in (".xlsx", ".xlsm"):
            self.format = "xlsx"
        elif suffix in (".jsonl", ".ndjson", ".json"):
            self.format = "jsonl"
        else:
            self.format = "csv"
        try:
            with path.open("rb") as fh:
                head = fh.read(_SNIFF_BYTES)
        except OSError as exc:
            raise InputError(
                "error.intake.file_unreadable", path=str(path), detail=os_problem(exc)
            ) from exc
        if self.format == "xlsx":
            if not head.startswith(b"PK\x03\x04"):
                raise InputError("error.intake.file_not_xlsx", name=self.name)
            check_workbook(path)
            self.encoding = "binary"
        else:
            self.encoding = detect_encoding(head, self.name)

    def check(self, require_identity: bool = True) -> None:
        """Read ahead until the header and a first row prove the file is what it claims."""
        columns: set[str] = set()
        seen_row = rejected = False
        for n, item in enumerate(self.rows()):
            if isinstance(item, RejectedRow):
                rejected = True
                if n >= _CHECK_ROWS:
                    break
                continue
            seen_row = True
            columns |= set(item[1])
            if n >= _CHECK_ROWS or (columns & IDENTITY_COLUMNS):
                break
        if not seen_row:
            if rejected:
                return  # every row so far is bad: they will be quarantined one by one
            if self.header.seen:
                raise InputError("error.intake.file_header_only", name=self.name)
            raise InputError("error.intake.file_no_rows", name=self.name, format=self.format)
        if require_identity and not (columns & IDENTITY_COLUMNS):
            # A column name is input: shown on one line, whatever characters it holds.
            known = [" ".join(str(c).split()) for c in sorted(self.header.columns or columns)[:8]]
            if not known:
                raise InputError("error.intake.file_no_columns", name=self.name)
            raise InputError(
                "error.intake.file_no_identity", name=self.name, found=", ".join(known)
            )

    def rows(self) -> Iterator[Row | RejectedRow]:
        """Every row of the file, streamed (call again to re-read)."""
        if self.format == "xlsx":
            return xlsx_rows(self.path, self.header)
        if self.format == "jsonl":
            return jsonl_rows(self.path, self.encoding, self.header)
        return csv_rows(self.path, self.encoding, self.header)
