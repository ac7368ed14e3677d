"""The CLI as a user meets it: help, configuration errors, the schema commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

QUNFLOW = str(Path(sys.executable).with_name("qunflow"))


def run(args, env, check=True):
    proc = subprocess.run([QUNFLOW, *args], env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"qunflow {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def test_bad_database_url_is_one_line_exit_2(tmp_path):
    env = dict(os.environ, QUNFLOW_DATABASE_URL="nonsense", QUNFLOW_DATA_DIR=str(tmp_path))
    proc = run(["demo"], env, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "QUNFLOW_DATABASE_URL" in lines[0]
    assert "Traceback" not in proc.stderr


def test_unreachable_database_is_one_line(tmp_path):
    env = dict(
        os.environ,
        QUNFLOW_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:9/none",
        QUNFLOW_DATA_DIR=str(tmp_path),
    )
    proc = run(["db", "status"], env, check=False)
    assert proc.returncode == 2
    assert "QUNFLOW_DATABASE_URL" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_db_upgrade_then_status(cli_env):
    run(["db", "upgrade"], cli_env)
    status = json.loads(run(["db", "status", "--json"], cli_env).stdout)
    assert status["current"] == status["head"] is not None


def test_version(tmp_path):
    from importlib import metadata

    env = dict(os.environ, QUNFLOW_DATA_DIR=str(tmp_path))
    proc = run(["--version"], env)
    assert proc.stdout.strip() == f"qunflow {metadata.version('qunflow')}"


def test_crm_never_imports_prefect():
    code = (
        "import sys, importlib, pkgutil, crm\n"
        "for m in pkgutil.walk_packages(crm.__path__, 'crm.'):\n"
        "    if '.migrations' not in m.name: importlib.import_module(m.name)\n"
        "print('prefect' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_usage_errors_are_short_and_exit_2(tmp_path):
    env = dict(os.environ, QUNFLOW_DATA_DIR=str(tmp_path))
    for args in (["contacts", "list", "--tier", "vip"], ["contacts", "show"], ["nosuch"]):
        proc = run(args, env, check=False)
        assert proc.returncode == 2, args
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("qunflow"), proc.stderr
        assert "(see `qunflow" in lines[0] and lines[0].endswith(" --help`)"), lines[0]


def test_contact_export_and_erase_on_request(engine, cli_env, tmp_path):
    from sqlalchemy import select

    from crm.core.db import transaction
    from crm.models import AuditEntry, Contact, Identity

    with transaction(engine) as s:
        c = Contact(display_name="王小明", tier="open")
        s.add(c)
        s.flush()
        s.add(Identity(contact_id=c.id, kind="phone", value="+8613800138000"))
        cid = c.id
    out = tmp_path / "export.json"
    assert "wrote" in run(["contacts", "export", str(cid), "--out", str(out)], cli_env).stdout
    doc = json.loads(out.read_text("utf-8"))
    assert doc["contact"]["name"] == "王小明"
    assert [i["value"] for i in doc["contact"]["identities"]] == ["+8613800138000"]
    with transaction(engine) as s:
        exported = s.execute(
            select(AuditEntry.actor, AuditEntry.object_id).where(
                AuditEntry.action == "contact.export"
            )
        ).all()
    assert [e.object_id for e in exported] == [str(cid)] and exported[0].actor  # the login name

    refused = run(["contacts", "erase", str(cid)], cli_env, check=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert "Traceback" not in refused.stderr

    done = json.loads(run(["contacts", "erase", str(cid), "--yes", "--json"], cli_env).stdout)
    assert done["contact_id"] == cid and done["identities"] == 1
    shown = json.loads(run(["contacts", "show", str(cid), "--json"], cli_env).stdout)
    assert shown["name"] is None and shown["identities"] == []

    again = run(["contacts", "erase", str(cid), "--yes"], cli_env, check=False)
    assert again.returncode != 0 and "already erased" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_demo_says_when_the_local_prefect_server_does_not_start(tmp_path):
    # Prefect's temporary API server needs several seconds to start; one is not enough.
    env = dict(
        os.environ,
        QUNFLOW_DATA_DIR=str(tmp_path / "data"),
        QUNFLOW_DATABASE_URL=f"sqlite:///{tmp_path / 'q.db'}",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1",
    )
    env.pop("PREFECT_API_URL", None)
    proc = run(["demo"], env, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("qunflow: Timed out")
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_commands_on_a_database_without_the_schema_say_what_to_run(tmp_path):
    from sqlalchemy import text

    from crm.core.db import make_engine

    url = f"sqlite:///{tmp_path / 'new.db'}"
    env = dict(os.environ, QUNFLOW_DATABASE_URL=url, QUNFLOW_DATA_DIR=str(tmp_path))
    for args in (["contacts", "list"], ["caps"], ["dispatch", "--json"]):
        proc = run(args, env, check=False)
        assert proc.returncode == 2, args
        assert proc.stderr.strip().splitlines() == [
            f"qunflow: {url} has no Qunflow schema yet: run `qunflow db upgrade`"
        ]
    run(["db", "upgrade"], env)
    assert json.loads(run(["contacts", "list", "--json"], env).stdout)["total"] == 0

    # A database a newer Qunflow migrated: no guessing at its tables.
    eng = make_engine(url)
    with eng.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe'"))
    eng.dispose()
    proc = run(["contacts", "list"], env, check=False)
    assert proc.returncode == 2
    assert "schema revision f00dcafe, which this Qunflow does not know" in proc.stderr
    assert "Traceback" not in proc.stderr
    status = json.loads(run(["db", "status", "--json"], env).stdout)  # db commands still answer
    assert status["current"] == "f00dcafe" != status["head"]


def test_typos_are_refused_before_anything_changes(engine, cli_env, tmp_path):
    from sqlalchemy import func, select

    from crm.core.db import transaction
    from crm.models import Consent, Contact, QrCode

    with transaction(engine) as s:
        c = Contact(display_name="李雷", tier="open")
        s.add(c)
        s.flush()
        cid = c.id
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", "utf-8")
    cases = {
        # a misspelt channel would leave the intended one sending
        ("optout", str(cid), "--channel", "wecon"): "--channel 'wecon': unknown channel",
        # an unknown or unconfigured channel would defer every row meant for it
        ("dispatch", "--channel", "emial"): "--channel 'emial': unknown channel",
        ("dispatch", "--channel", "email"): "--channel email: not configured (set QUNFLOW_SMTP",
        ("contacts", "tag", str(cid), "--tags", "、,"): "--tags: no tag given",
        (
            "qr", "create", "--promoter", "p", "--location", "l", "--campaign", "c",
            "--out", str(blocked / "qr"),
        ): f"{blocked / 'qr'}: cannot write the QR code files",
    }  # fmt: skip
    for args, message in cases.items():
        proc = run(list(args), dict(cli_env, QUNFLOW_SMTP_HOST=""), check=False)
        assert proc.returncode == 2, args
        assert proc.stderr.startswith(f"qunflow: {message}"), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(Consent)) == 0
        assert s.scalar(select(func.count()).select_from(QrCode)) == 0


def test_qr_create_warns_when_its_links_point_at_this_machine(cli_env, tmp_path):
    args = ["qr", "create", "--promoter", "小张", "--location", "徐家汇", "--campaign", "spring"]
    args += ["--out", str(tmp_path / "qr")]
    local = run(args, dict(cli_env, QUNFLOW_PUBLIC_BASE_URL="http://127.0.0.1:8000"))
    assert "QUNFLOW_PUBLIC_BASE_URL" in local.stderr and "phones cannot open" in local.stderr
    public = run(args, dict(cli_env, QUNFLOW_PUBLIC_BASE_URL="https://crm.example.com"))
    assert "QUNFLOW_PUBLIC_BASE_URL" not in public.stderr


def test_help_shows_no_bool_metavar_and_keeps_choices_whole(tmp_path):
    env = dict(os.environ, QUNFLOW_DATA_DIR=str(tmp_path), COLUMNS="80")
    for args in (["groups", "add", "--help"], ["contacts", "list", "--help"], ["--help"]):
        out = run(args, env).stdout
        assert "<bool>" not in out and "--help" in out, args
    assert "<open|active|prospect|paid>" in run(["groups", "add", "--help"], env).stdout


def test_contacts_known_by_a_handle_show_it_and_the_breakdown_lines_up(engine, cli_env):
    from rich.cells import cell_len

    from crm.core.db import transaction
    from crm.models import Contact, Identity

    breakdown = [
        {"signal": "source:self_media+intent", "points": 30, "events": [3, 1]},
        {"signal": "engagement", "points": 5, "events": []},
    ]
    with transaction(engine) as s:
        known = Contact(tier="active", display_name="王小明", score=35, score_breakdown=breakdown)
        handle_only = Contact(tier="open")
        s.add_all([known, handle_only])
        s.flush()
        s.add(Identity(contact_id=handle_only.id, kind="platform_handle", value="xiaohongshu:小鹿"))
        ids = known.id, handle_only.id
    listed = run(["contacts", "list"], cli_env).stdout
    assert "xiaohongshu:小鹿" in listed
    shown = run(["contacts", "show", str(ids[1])], cli_env).stdout
    assert shown.splitlines()[0].startswith(f"#{ids[1]} xiaohongshu:小鹿  tier: Open")
    lines = run(["contacts", "show", str(ids[0])], cli_env).stdout.splitlines()
    at = lines.index("Why this score:")
    header, rows = lines[at + 1], lines[at + 3 : at + 5]
    assert {cell_len(r[: r.rindex("+")]) for r in rows} == {header.index("Points")}


def test_tier_history_says_system_moves_in_words_and_typed_reasons_as_typed(engine, cli_env):
    from crm.core.db import transaction
    from crm.models import Contact, TierChange

    with transaction(engine) as s:
        contact = Contact(display_name="林晓雨")
        s.add(contact)
        s.flush()
        cid = contact.id
    run(["route"], cli_env)  # a new contact enters the funnel: a system move
    with transaction(engine) as s:
        s.add(
            TierChange(
                contact_id=cid,
                from_tier="open",
                to_tier="active",
                reason="老板说先升上来",
                actor="manager:wang",
            )
        )
    zh = run(["contacts", "show", str(cid)], dict(cli_env, QUNFLOW_LANG="zh")).stdout
    assert "进入漏斗" in zh and "老板说先升上来" in zh and "entered the funnel" not in zh
    en = run(["contacts", "show", str(cid)], dict(cli_env, QUNFLOW_LANG="en")).stdout
    assert "entered the funnel" in en and "老板说先升上来" in en
    shown = json.loads(run(["contacts", "show", str(cid), "--json"], cli_env).stdout)
    keys = [(h["reason_key"], h["reason_params"]) for h in shown["tier_history"]]
    assert keys == [("tier.why.entered", {}), (None, None)]
