"""Quarantined rows: a corrected re-import gets in once, and rows can be dismissed.

Service tests run on SQLite and PostgreSQL; the CLI test goes through `qunflow` itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from crm.compliance.privacy import erase_contact
from crm.core.db import transaction
from crm.core.errors import InputError
from crm.intake.pipeline import ingest_path
from crm.intake.quarantine import dismiss, list_quarantine
from crm.models import AuditEntry, Event, QuarantinedRow, RawRecord

NOW = datetime(2026, 11, 20, 4, tzinfo=UTC)
QUNFLOW = str(Path(sys.executable).parent / "qunflow")


def _events(path: Path, *rows: dict[str, str]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _purchase(when: str) -> dict[str, str]:
    return {"event_id": "E1", "type": "purchase", "phone": "13800138000", "time": when}


def _state(engine: Engine) -> dict[str, object]:
    with transaction(engine) as s:
        entries = s.execute(
            select(QuarantinedRow.reason, QuarantinedRow.resolution).order_by(QuarantinedRow.id)
        ).all()
        return {
            "raw": s.scalar(select(func.count()).select_from(RawRecord)),
            "purchases": s.scalar(select(func.count()).where(Event.kind == "purchase")),
            "entries": [(reason.split(":")[0], res) for reason, res in entries],
            "open": len(list_quarantine(s)),
        }


def test_a_corrected_row_gets_in_once_and_closes_its_entries(engine: Engine, tmp_path: Path):
    ok = {"event_id": "E2", "type": "message", "phone": "13800138001", "time": "2026-11-19 10:00"}
    bad = _events(tmp_path / "bad.jsonl", _purchase("上周三"), ok)
    first = ingest_path(engine, "events", bad, now=NOW)
    assert (first.quarantined, first.events) == (1, 1)
    # The same file again: the bad row is still the bad row, nothing is added.
    again = ingest_path(engine, "events", bad, now=NOW)
    assert (again.quarantined, again.matched, again.corrected) == (1, 1, 0)
    assert _state(engine)["raw"] == 2

    # A correction that is still wrong replaces the open entry with its own.
    wrong = _events(tmp_path / "wrong.jsonl", _purchase("昨天"))
    assert ingest_path(engine, "events", wrong, now=NOW).quarantined == 1
    assert _state(engine) == {
        "raw": 3,
        "purchases": 0,
        "entries": [("unreadable time", "superseded"), ("unreadable time", None)],
        "open": 1,
    }

    # The right correction goes through once: one purchase, every entry of the record closed.
    fixed = _events(tmp_path / "fixed.jsonl", _purchase("2026-11-18 10:00"))
    report = ingest_path(engine, "events", fixed, now=NOW)
    assert (report.new_contacts, report.events, report.corrected, report.quarantined) == (
        1,
        1,
        1,
        0,
    )
    assert report.read == report.new_contacts + report.matched + report.quarantined
    assert _state(engine) == {
        "raw": 4,
        "purchases": 1,
        "entries": [("unreadable time", "superseded"), ("unreadable time", "corrected")],
        "open": 0,
    }
    with transaction(engine) as s:
        assert s.scalar(select(Event.occurred_at).where(Event.kind == "purchase")) == datetime(
            2026, 11, 18, 2, tzinfo=UTC
        )
        note = s.scalar(
            select(QuarantinedRow.resolution_note).where(QuarantinedRow.resolution == "corrected")
        )
    assert note is not None and "row 1 of" in note and "fixed.jsonl" in note

    # Every file read again, and a later version of the record: nothing new.
    later = _events(tmp_path / "later.jsonl", _purchase("2026-11-17 09:00"))
    for path in (fixed, wrong, bad, later):
        rerun = ingest_path(engine, "events", path, now=NOW)
        assert rerun.new_contacts == rerun.events == rerun.corrected == 0
        assert rerun.read == rerun.matched + rerun.quarantined
    assert _state(engine)["raw"] == 4 and _state(engine)["purchases"] == 1

    # Erasing the contact reaches the quarantined versions too: they carry the same phone.
    with transaction(engine) as s:
        contact_id = s.scalar(select(Event.contact_id).where(Event.kind == "purchase"))
    erase_contact(engine, contact_id, actor="dpo", now=NOW)
    with transaction(engine) as s:
        payloads = [json.dumps(p) for p in s.scalars(select(RawRecord.payload))]
        contents = list(s.scalars(select(QuarantinedRow.raw_content)))
    assert [p for p in payloads if "13800138000" in p] == []
    assert contents == ["", ""]
    assert sum("13800138001" in p for p in payloads) == 1, "other contacts keep theirs"


def test_dismissing_rows_keeps_them_with_the_reason(engine: Engine, tmp_path: Path):
    rows = [
        {"event_id": f"T{i}", "type": "purchase", "phone": f"1380013800{i}", "time": "某天"}
        for i in range(3)
    ]
    ingest_path(engine, "events", _events(tmp_path / "a.jsonl", *rows[:2]), now=NOW)
    ingest_path(engine, "events", _events(tmp_path / "b.jsonl", rows[2]), now=NOW)
    with transaction(engine) as s:
        ids = [r.id for r in list_quarantine(s)]
        assert len(ids) == 3
        with pytest.raises(InputError, match="no quarantined row 999"):
            dismiss(s, [ids[0], 999], actor="ops", note="test rows")
        with pytest.raises(InputError, match="needs a note"):
            dismiss(s, [ids[0]], actor="ops", note="  ")
    with transaction(engine) as s:
        assert dismiss(s, origin="a.jsonl", actor="ops", note="test rows", now=NOW).count == 2
        assert dismiss(s, origin="a.jsonl", actor="ops", note="again", now=NOW).count == 0
    with transaction(engine) as s:
        left = list_quarantine(s)
        assert [r.origin.rsplit("/", 1)[-1] for r in left] == ["b.jsonl"]
        gone = [r for r in list_quarantine(s, include_resolved=True) if r.resolution]
        assert {r.resolution_note for r in gone} == {"ops: test rows"}
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "quarantine.dismiss")).one()
        assert entry.details["count"] == 2 and entry.actor == "ops"


def test_a_fix_for_a_dismissed_row_still_gets_in(engine: Engine, tmp_path: Path):
    ingest_path(engine, "events", _events(tmp_path / "bad.jsonl", _purchase("某天")), now=NOW)
    with transaction(engine) as s:
        assert dismiss(s, origin="bad.jsonl", actor="ops", note="no date known", now=NOW).count == 1
    fixed = _events(tmp_path / "fixed.jsonl", _purchase("2026-11-18 10:00"))
    assert ingest_path(engine, "events", fixed, now=NOW).corrected == 1
    state = _state(engine)
    assert state["purchases"] == 1 and state["entries"] == [("unreadable time", "corrected")]


def test_cli_lists_and_dismisses(cli_env: dict[str, str], tmp_path: Path) -> None:
    def qunflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [QUNFLOW, *args], env=cli_env, capture_output=True, text=True, timeout=120
        )

    path = _events(tmp_path / "bad.jsonl", _purchase("上周三"))
    assert qunflow("ingest", "events", str(path)).returncode == 0
    listed = json.loads(qunflow("quarantine", "list", "--json").stdout)
    assert listed["count"] == 1 and listed["items"][0]["reason"] == "unreadable time: '上周三'"
    qid = str(listed["items"][0]["id"])

    missing = qunflow("quarantine", "dismiss", "999", "--note", "x")
    assert missing.returncode == 2 and "no quarantined row 999" in missing.stderr
    assert "Traceback" not in missing.stderr

    done = qunflow("quarantine", "dismiss", qid, "--note", "test sign-up", "--actor", "ops")
    assert done.returncode == 0 and "dismissed 1" in done.stdout
    assert json.loads(qunflow("quarantine", "list", "--json").stdout)["count"] == 0
    table = qunflow("quarantine", "list", "--all").stdout
    assert "Dismissed" in table and "bad.jsonl" in table
