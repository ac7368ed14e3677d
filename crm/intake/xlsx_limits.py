"""What an XLSX workbook may hold before we read it: the zip bomb guard.

An XLSX file is a zip of XML parts; a few hundred kilobytes can expand to gigabytes of cells
or shared strings, which the XML reader would hold in memory. The zip's directory is checked
first (member count, sizes, compression ratios), then the worksheets and shared strings are
scanned as bytes, a chunk at a time, for rows, cells per row, column reach and text length.
What is beyond a limit refuses the file with one :class:`crm.core.errors.InputError`.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from crm.core.errors import InputError

# A workbook is a handful of parts (workbook, sheets, styles, theme, rels); a thousand is far
# beyond any export, and each directory entry costs memory before anything is read.
MAX_MEMBERS = 1_000
# 500,000 rows × 30 columns of text is about 450 MB of sheet XML: the largest member lists
# (some hundred thousand rows) stay well inside.
MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
# Shared strings are loaded whole into memory: a million distinct cell texts is ~50 MB.
MAX_SHARED_STRINGS_BYTES = 96 * 1024 * 1024
# Parts other than sheets and shared strings (styles, theme, workbook) are kilobytes.
MAX_OTHER_PART_BYTES = 16 * 1024 * 1024
# Sheet XML compresses 5-30×, very repetitive sheets up to ~100×; bombs compress 1000×.
MAX_RATIO = 200
_RATIO_FROM_BYTES = 1024 * 1024  # small parts (an empty sheet) may compress better, harmlessly
# Rows: Excel itself stops at 1,048,576; a member list is some hundred thousand rows.
MAX_ROWS = 1_000_000
# Cells in one row, and how far right a cell may sit (ZZ, column 702): exports have a few
# dozen columns; the XML reader builds every cell of a row before handing the row over.
MAX_COLUMNS = 702
# Longest text between two tags (one cell's text): a field past MAX_FIELD_CHARS (2,000
# characters, at most ~12 KB of escaped UTF-8) is quarantined with its row; a megabyte is no
# cell of an export.
MAX_CELL_BYTES = 1024 * 1024

_CHUNK = 1024 * 1024
_ROW = re.compile(rb"<(?:\w+:)?row[\s>/]")
_CELL = re.compile(rb"<(?:\w+:)?c[\s>/]")
_FAR_COLUMN = re.compile(rb'\br="[A-Z]{3}[0-9]')  # three letters: past column ZZ (702)
_EOCD = b"PK\x05\x06"


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):,.0f} MB"


def _member_count(path: Path) -> int:
    """The number of members the zip's end record announces (read before the directory)."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 65_557))  # the end record plus the longest zip comment
        tail = fh.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        raise InputError("error.intake.xlsx_no_zip", name=path.name)
    return int.from_bytes(tail[at + 10 : at + 12], "little")


def check_workbook(path: Path) -> None:
    """Refuse a workbook whose parts are beyond the limits above (InputError naming the limit)."""
    name = path.name
    if _member_count(path) > MAX_MEMBERS:
        raise InputError("error.intake.xlsx_parts", name=name, limit=MAX_MEMBERS)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            _check_directory(name, infos)
            for info in infos:
                if _is_sheet(info.filename) or _is_shared_strings(info.filename):
                    _scan_part(name, zf, info)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise InputError("error.intake.xlsx_unreadable", name=name, detail=str(exc)) from exc


def _is_sheet(member: str) -> bool:
    return member.startswith("xl/worksheets/") and member.endswith(".xml")


def _is_shared_strings(member: str) -> bool:
    return member.lower() == "xl/sharedstrings.xml"


def _check_directory(name: str, infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_MEMBERS:
        raise InputError("error.intake.xlsx_parts", name=name, limit=MAX_MEMBERS)
    total = sum(i.file_size for i in infos)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise InputError(
            "error.intake.xlsx_expands",
            name=name,
            size=_mib(total),
            limit=_mib(MAX_UNCOMPRESSED_BYTES),
        )
    for info in infos:
        if info.file_size > _RATIO_FROM_BYTES:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > MAX_RATIO:
                raise InputError(
                    "error.intake.xlsx_ratio",
                    name=name,
                    part=info.filename,
                    ratio=ratio,
                    limit=MAX_RATIO,
                )
        if _is_shared_strings(info.filename):
            limit = MAX_SHARED_STRINGS_BYTES
        elif _is_sheet(info.filename):
            continue
        elif info.filename.endswith((".xml", ".rels")):
            limit = MAX_OTHER_PART_BYTES
        else:
            continue  # images and the like: openpyxl's read-only mode does not load them
        if info.file_size > limit:
            raise InputError(
                "error.intake.xlsx_part_size",
                name=name,
                part=info.filename,
                size=_mib(info.file_size),
                limit=_mib(limit),
            )


def _scan_part(name: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Rows, cells per row, column reach and text runs of one part, in bounded memory."""
    sheet = _is_sheet(info.filename)
    rows = cells = 0
    carry = b""
    with zf.open(info) as fh:
        while True:
            chunk = fh.read(_CHUNK)
            data = carry + chunk
            cut = data.rfind(b"<") if chunk else len(data)
            if cut <= 0:
                carry = data
                if len(carry) > MAX_CELL_BYTES:
                    _too_long(name, info.filename)
                if not chunk:
                    return
                continue
            segment, carry = data[:cut], data[cut:]
            if max(map(len, segment.split(b"<"))) > MAX_CELL_BYTES:
                _too_long(name, info.filename)
            if sheet:
                rows, cells = _count(name, segment, rows, cells)
            if not chunk:
                return


def _count(name: str, segment: bytes, rows: int, cells: int) -> tuple[int, int]:
    """Rows so far and cells in the current row, after one segment of sheet XML."""
    if _FAR_COLUMN.search(segment):
        raise InputError("error.intake.xlsx_far_column", name=name, limit=MAX_COLUMNS)
    parts = _ROW.split(segment)
    for n, part in enumerate(parts):
        if n:
            rows += 1
            cells = 0
        cells += len(_CELL.findall(part))
        if cells > MAX_COLUMNS:
            raise InputError("error.intake.xlsx_wide_row", name=name, limit=MAX_COLUMNS)
    if rows > MAX_ROWS:
        raise InputError("error.intake.too_many_rows", name=name, limit=MAX_ROWS)
    return rows, cells


def _too_long(name: str, member: str) -> None:
    raise InputError(
        "error.intake.xlsx_long_cell", name=name, part=member, limit=_mib(MAX_CELL_BYTES)
    )
