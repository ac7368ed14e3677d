"""Any file content ends in rows and rejected rows, or in one clear error; never another exception.

Property-based (Hypothesis) over the CSV, JSON Lines and XLSX readers, and over whole imports:
whatever the input, the counts add up (read == new + matched + quarantined).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from crm.core.errors import InputError, QunflowError
from crm.intake.file_reader import FileReader
from crm.intake.pipeline import ingest_path
from crm.intake.records import RejectedRow
from tests.helpers.xlsx_bombs import row_xml, sheet, write_workbook

_FAST = settings(max_examples=120, deadline=None, database=None)
_SLOW = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

_HEADERS = st.sampled_from(["手机号", "phone", "昵称", "name", "微信号", "email", "note", "x"])
_CELL = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["13800138000", "+86 139 0013 9000", "wxid_abcdef", "a@b.cn", "NaN", ""]),
)
_JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_JSON_LINE = st.one_of(
    st.dictionaries(_HEADERS, _CELL, max_size=5).map(lambda d: json.dumps(d, ensure_ascii=False)),
    st.dictionaries(st.text(max_size=8), _JSON_VALUE, max_size=4).map(json.dumps),  # NaN too
    st.text(max_size=60),
    st.sampled_from(["[" * 50 + "]" * 50, '{"phone": 1' + "0" * 5000 + "}", "{", "null"]),
)


def _read_all(path: Path) -> list[object]:
    """Every item the reader gives, or InputError (the one clear error for a file)."""
    reader = FileReader(path)
    reader.check()
    items = list(reader.rows())
    for item in items:
        assert isinstance(item, RejectedRow) or (isinstance(item, tuple) and len(item) == 2)
    return items


def _outcome(path: Path) -> None:
    try:
        _read_all(path)
    except InputError as exc:
        assert path.name in str(exc) or str(path) in str(exc)
        assert "\n" not in str(exc)


@_FAST
@given(st.binary(max_size=400), st.sampled_from([".csv", ".jsonl", ".xlsx"]))
def test_any_bytes_are_rows_or_one_clear_error(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{suffix}"
        path.write_bytes(data)
        _outcome(path)


@_FAST
@given(
    st.lists(_HEADERS, min_size=1, max_size=4),
    st.lists(st.lists(_CELL, max_size=5), max_size=8),
    st.sampled_from([",", "\t", ";"]),
    st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
)
def test_any_csv_is_rows_or_one_clear_error(
    header: list[str], rows: list[list[str]], sep: str, encoding: str
) -> None:
    text = "\n".join(sep.join(r) for r in [header, *rows])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.csv"
        path.write_bytes(text.encode(encoding, errors="replace"))
        _outcome(path)


@_FAST
@given(st.lists(_JSON_LINE, max_size=10))
def test_any_jsonl_is_rows_or_one_clear_error(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.jsonl"
        path.write_text("\n".join(lines), encoding="utf-8")
        _outcome(path)


@settings(max_examples=40, deadline=None, database=None)
@given(
    st.lists(_HEADERS, min_size=1, max_size=4), st.lists(st.lists(_CELL, max_size=5), max_size=6)
)
def test_any_xlsx_is_rows_or_one_clear_error(header: list[str], rows: list[list[str]]) -> None:
    # XML cannot carry most control characters: writers drop them, so do we here.
    def xml_safe(v: str) -> str:
        return "".join(ch for ch in v if ch >= " " or ch in "\t\n\r")[:30]

    body = [row_xml(n + 1, [xml_safe(v) for v in r]) for n, r in enumerate([header, *rows])]
    with tempfile.TemporaryDirectory() as tmp:
        path = write_workbook(Path(tmp) / "f.xlsx", sheet(body))
        _outcome(path)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@_SLOW
@given(st.lists(_JSON_LINE, min_size=1, max_size=12), st.sampled_from(["peer-group", "events"]))
def test_any_jsonl_import_counts_add_up(engine: Engine, lines: list[str], kind: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.jsonl"
        # A good first line: the file passes the checks on open and the rest is imported.
        path.write_text("\n".join(['{"phone": "13800138000"}', *lines]), encoding="utf-8")
        try:
            report = ingest_path(engine, kind, path)
        except QunflowError as exc:
            assert "\n" not in str(exc)
            return
    assert report.read == report.new_contacts + report.matched + report.quarantined
    assert report.corrected <= report.new_contacts + report.matched


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@_SLOW
@given(st.lists(st.lists(_CELL, min_size=2, max_size=3), min_size=1, max_size=10))
def test_any_csv_import_counts_add_up(engine: Engine, rows: list[list[str]]) -> None:
    text = "\n".join(",".join(json.dumps(v, ensure_ascii=False) for v in r) for r in rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.csv"
        path.write_text("手机号,昵称,备注\n" + text, encoding="utf-8")
        try:
            report = ingest_path(engine, "peer-group", path)
        except QunflowError as exc:
            assert "\n" not in str(exc)
            return
    assert report.read == report.new_contacts + report.matched + report.quarantined
