"""XLSX workbooks written part by part, for tests and benches of the workbook limits.

The sheet XML (and shared strings) come from iterables of byte chunks, streamed into the zip,
so a workbook expanding to a gigabyte is written in constant memory.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_SML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels"'
    ' ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_SML}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_SML}.worksheet+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_SML}.sharedStrings+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook {_NS} xmlns:r="{_REL}">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;")


def row_xml(n: int, values: list[str]) -> bytes:
    """One row of inline-string cells."""
    cells = "".join(
        f'<c r="{_column(i)}{n}" t="inlineStr"><is><t>{_text(v)}</t></is></c>'
        for i, v in enumerate(values)
    )
    return f'<row r="{n}">{cells}</row>'.encode()


def _column(i: int) -> str:
    letters = ""
    i += 1
    while i:
        i, rest = divmod(i - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def sheet(rows: Iterable[bytes]) -> Iterator[bytes]:
    """A worksheet part around rows of XML."""
    yield f'<?xml version="1.0" encoding="UTF-8"?><worksheet {_NS}><sheetData>'.encode()
    yield from rows
    yield b"</sheetData></worksheet>"


def shared_strings(strings: Iterable[bytes], count: int) -> Iterator[bytes]:
    """A shared-strings part around ``<si>`` items."""
    yield (
        f'<?xml version="1.0" encoding="UTF-8"?><sst {_NS} count="{count}" uniqueCount="{count}">'
    ).encode()
    yield from strings
    yield b"</sst>"


def write_workbook(
    path: Path,
    sheet_xml: Iterable[bytes],
    strings_xml: Iterable[bytes] | None = None,
) -> Path:
    """A workbook with one sheet (and shared strings), parts streamed into the zip."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _ROOT_RELS)
        zf.writestr("xl/workbook.xml", _WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            for chunk in sheet_xml:
                fh.write(chunk)
        strings = strings_xml if strings_xml is not None else shared_strings([], 0)
        with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
            for chunk in strings:
                fh.write(chunk)
    return path


def member_list(path: Path, rows: int) -> Path:
    """A small normal member list (phone, nickname), the baseline of the limits bench."""
    body = [row_xml(1, ["手机号", "昵称"])]
    body += [row_xml(n + 2, [f"1380013{n % 10_000:04d}", f"成员{n}"]) for n in range(rows)]
    return write_workbook(path, sheet(body))


def cells_bomb(path: Path, uncompressed: int) -> Path:
    """A header, then rows of the same cells repeated until the sheet XML is this large."""
    row = row_xml(2, ["13800138000", "x" * 40] * 10)

    def rows() -> Iterator[bytes]:
        yield row_xml(1, ["手机号", "昵称"] * 10)
        block = row * max(1, (1024 * 1024) // len(row))
        written = 0
        while written < uncompressed:
            yield block
            written += len(block)

    return write_workbook(path, sheet(rows()))


def strings_bomb(path: Path, uncompressed: int) -> Path:
    """A tiny sheet referring to shared strings that expand to this many bytes."""
    item = b"<si><t>" + b"A" * 1000 + b"</t></si>"
    count = max(1, uncompressed // len(item))

    def strings() -> Iterator[bytes]:
        block = item * 1000
        for _ in range(count // 1000):
            yield block
        yield item * (count % 1000)

    header = b'<row r="1"><c r="A1" t="inlineStr"><is><t>phone</t></is></c></row>'
    cell = b'<row r="2"><c r="A2" t="s"><v>0</v></c></row>'
    return write_workbook(path, sheet([header, cell]), shared_strings(strings(), count))
