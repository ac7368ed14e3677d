"""Files that never break an import: bombs, poisoned lines, unreadable paths, bad inbox files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from crm.core.db import make_engine, transaction
from crm.core.errors import InputError
from crm.intake.file_reader import FileReader
from crm.intake.jsonl_reader import MAX_DEPTH, MAX_LINE_CHARS
from crm.intake.pipeline import ingest_path
from crm.intake.xlsx_limits import MAX_CELL_BYTES, MAX_COLUMNS, MAX_RATIO
from crm.models import Contact, RawRecord
from crm.models.sources import QuarantinedRow
from tests.helpers.xlsx_bombs import member_list, row_xml, sheet, write_workbook

GOOD = [f'{{"phone": "1380013{n:04d}", "name": "成员{n}"}}' for n in range(6)]
POISON = {
    "deep": "[" * 100_000 + "]" * 100_000,
    "deep-object": '{"phone": "13700137000", "a": '
    + "[" * (MAX_DEPTH + 1)
    + "]" * (MAX_DEPTH + 1)
    + "}",
    "bigint": '{"phone": "13700137001", "n": ' + "9" * 5000 + "}",
    "nan": '{"phone": "13700137002", "amount": NaN}',
    "infinity": '{"phone": "13700137003", "amount": -Infinity}',
    "overflow": '{"phone": "13700137004", "amount": 1e999}',
    "overlong": '{"phone": "13700137005", "note": "' + "x" * (MAX_LINE_CHARS + 10) + '"}',
    "broken": '{"phone": "13700137006", ',
}


def _count(eng: Engine, model: type) -> int:
    with transaction(eng) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_poisoned_jsonl_lines_are_quarantined_and_every_good_line_imported(
    engine: Engine, tmp_path: Path
) -> None:
    lines = [GOOD[0], GOOD[1], *POISON.values(), *GOOD[2:]]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest_path(engine, "peer-group", path)
    assert report.read == len(lines)
    assert report.new_contacts == len(GOOD)
    assert report.quarantined == len(POISON)
    assert report.read == report.new_contacts + report.matched + report.quarantined
    assert _count(engine, Contact) == len(GOOD)
    assert _count(engine, RawRecord) == len(GOOD)
    with transaction(engine) as s:
        q = s.execute(select(QuarantinedRow.row_number, QuarantinedRow.reason)).tuples()
        rows = {n: reason for n, reason in q}
    # Line numbers in the file, each with its own reason.
    assert sorted(rows) == list(range(3, 3 + len(POISON)))
    reasons = list(rows.values())
    assert "nested deeper than 32 levels" in reasons
    assert "number longer than 100 digits" in reasons
    assert "non-standard JSON number: NaN" in reasons
    assert "non-standard JSON number: -Infinity" in reasons
    assert "number out of range (Infinity)" in reasons
    assert f"line longer than {MAX_LINE_CHARS} characters" in reasons
    assert any(r.startswith("invalid JSON") for r in reasons)


def test_nan_from_any_reader_never_reaches_a_json_column(engine: Engine, tmp_path: Path) -> None:
    # An XLSX number cell of 1e999 is Infinity to the reader: the row is quarantined.
    body = [row_xml(1, ["手机号", "金额"]), row_xml(2, ["13800138000", "1"])]
    body.append(b'<row r="3"><c r="A3" t="inlineStr"><is><t>13800138001</t></is></c>')
    body.append(b'<c r="B3"><v>1e999</v></c></row>')
    path = write_workbook(tmp_path / "amounts.xlsx", sheet(body))
    report = ingest_path(engine, "peer-group", path)
    assert (report.new_contacts, report.quarantined) == (1, 1)
    assert report.reasons == {"nan": 1}


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from flows.cli import main; main()", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_workbook_bomb_is_refused_in_one_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    row = row_xml(2, ["13800138000", "x" * 40])
    bomb = write_workbook(
        tmp_path / "bomb.xlsx", sheet([row_xml(1, ["手机号", "昵称"]), row * 200_000])
    )
    proc = _cli(["ingest", "peer-group", str(bomb)], cli_env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "bomb.xlsx" in proc.stderr and f"limit of {MAX_RATIO}:1" in proc.stderr


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # Cells need no reference (r=): each follows the one before.
        (
            [b"<row>" + b"<c><v>1</v></c>" * (MAX_COLUMNS + 1) + b"</row>"],
            f"more than {MAX_COLUMNS} cells",
        ),
        ([b'<row r="2"><c r="ABC2"><v>1</v></c></row>'], "beyond column ZZ"),
        (
            [row_xml(2, ["13800138000", os.urandom(MAX_CELL_BYTES).hex()])],
            "more than 1 MB of text",
        ),
    ],
)
def test_workbook_beyond_the_read_limits_is_refused(
    tmp_path: Path, rows: list[bytes], expected: str
) -> None:
    path = write_workbook(tmp_path / "wide.xlsx", sheet([row_xml(1, ["手机号", "昵称"]), *rows]))
    with pytest.raises(InputError, match=expected):
        FileReader(path)


def test_long_workbook_cell_quarantines_its_row_only(engine: Engine, tmp_path: Path) -> None:
    body = [row_xml(1, ["手机号", "昵称"]), row_xml(2, ["13800138000", "甲"])]
    body += [row_xml(3, ["13800138001", "乙" * 5000]), row_xml(4, ["13800138002", "丙"])]
    path = write_workbook(tmp_path / "long.xlsx", sheet(body))
    report = ingest_path(engine, "peer-group", path)
    assert (report.read, report.new_contacts, report.quarantined) == (3, 2, 1)
    assert list(report.reasons) == ["oversized_field"]


def test_normal_workbook_passes_the_limits(engine: Engine, tmp_path: Path) -> None:
    path = member_list(tmp_path / "members.xlsx", 300)
    assert ingest_path(engine, "peer-group", path).new_contacts == 300


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", ["directory", "name too long", "fifo"])
def test_unreadable_path_is_one_line(cli_env: dict[str, str], tmp_path: Path, kind: str) -> None:
    if kind == "directory":
        path = tmp_path
    elif kind == "name too long":
        path = tmp_path / ("a" * 300 + ".csv")
    else:
        path = tmp_path / "pipe.csv"
        os.mkfifo(path)
    proc = _cli(["ingest", "peer-group", str(path)], cli_env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("qunflow: "), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def team_reads_chinese(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Workers whose settings say zh-CN (the flows read settings once per process)."""
    from flows import runtime

    monkeypatch.setenv("QUNFLOW_LANG", "zh-CN")
    runtime.settings.cache_clear()
    yield
    runtime.settings.cache_clear()


@pytest.mark.usefixtures("prefect_harness", "team_reads_chinese")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_inbox_moves_a_bad_file_aside_and_imports_the_next(db_url: str, tmp_path: Path) -> None:
    """The bad file's reason is written for the team (in Chinese); the run's result in English."""
    from flows.ingest import ingest_folder_flow

    inbox = tmp_path / "inbox"
    folder = inbox / "peer-group"
    folder.mkdir(parents=True)
    row = row_xml(2, ["13800138000", "x" * 40])
    write_workbook(folder / "a_bomb.xlsx", sheet([row_xml(1, ["手机号"]), row * 200_000]))
    (folder / "b_members.jsonl").write_text("\n".join(GOOD) + "\n", encoding="utf-8")
    results = ingest_folder_flow(folder=str(inbox), database_url=db_url)
    assert "zip bomb" in results["peer-group/a_bomb.xlsx"]["error"]
    assert results["peer-group/b_members.jsonl"]["new_contacts"] == len(GOOD)
    reason = (folder / "failed" / "a_bomb.xlsx.reason.txt").read_text(encoding="utf-8")
    assert "a_bomb.xlsx" in reason and f"{MAX_RATIO}:1" in reason and "压缩炸弹" in reason
    # The run's result (and its artifact) says it in the same words.
    assert results["peer-group/a_bomb.xlsx"]["error_said"] == reason.strip()
    assert (folder / "failed" / "a_bomb.xlsx").exists()
    assert (folder / "done" / "b_members.jsonl").exists()
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == []
    eng = make_engine(db_url)
    assert _count(eng, Contact) == len(GOOD)
    eng.dispose()
    # The next run has nothing left to fail on.
    assert set(ingest_folder_flow(folder=str(inbox), database_url=db_url)) == {"pending"}
