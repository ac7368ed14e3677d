"""What the system writes into the queue keeps a catalog key beside its English, on both
databases; what a salesperson types stays as typed. Read in zh and en, the CLI included."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import timedelta
from string import Formatter

from sqlalchemy import select

from crm.compliance.privacy import erase_contact
from crm.core.db import transaction
from crm.core.queue_notes import SENTENCES, NoteKey
from crm.intake.merge import merge_contacts
from crm.models import QueueAction, QueueItem
from crm.routing.rules import load_rules
from crm.sales.assign import assign, assign_pool
from crm.sales.claims import claim_item, claim_next
from crm.sales.history import item_actions
from crm.sales.leases import expire_leases
from crm.sales.outcomes import record_attempt, record_outcome
from crm.sales.vocabulary import DEFAULT_LEASE
from flows.i18n import keyed_text, translator
from tests.helpers import queue_seed as seed
from tests.helpers.queue_seed import T0, ZONE

RULES = load_rules()
LATER = T0 + DEFAULT_LEASE + timedelta(minutes=1)
LATIN = re.compile(r"[A-Za-z]")


def _notes(engine, action: str) -> list[tuple[str | None, str | None, dict | None]]:
    with transaction(engine) as s:
        rows = s.execute(
            select(QueueAction.note, QueueAction.note_key, QueueAction.note_params)
            .where(QueueAction.action == action)
            .order_by(QueueAction.id)
        ).all()
    return [tuple(r) for r in rows]


def _said(engine, item_id: int, lang: str) -> list[str]:
    t = translator(lang)
    with transaction(engine) as s:
        entries = item_actions(s, [item_id])
    return [keyed_text(t, a.note_key, a.note_params, a.note) for a in entries]


def test_a_sweep_writes_the_lease_note_with_its_key(engine):
    staff = seed.users(engine)
    items = [i["item_id"] for i in seed.prospects(engine, 3)]
    for item in items:
        claim_item(engine, item, staff["alice"], T0, zone=ZONE)
    # The claim's own sweep (one statement on PostgreSQL), then `queue expire`.
    claim_next(engine, staff["bob"], LATER, zone=ZONE)
    assert expire_leases(engine, LATER) == 0
    ran_out = ("lease ran out", "queue.note.lease_ran_out", None)
    assert _notes(engine, "expired") == [ran_out] * 3
    assert _said(engine, items[1], "zh")[0] == "租约到期，退回公海池"
    assert _said(engine, items[1], "en")[0] == "lease ran out"


def test_the_expire_command_writes_the_same_note(engine):
    staff = seed.users(engine)
    item = seed.prospects(engine, 1)[0]["item_id"]
    claim_item(engine, item, staff["alice"], T0, zone=ZONE)
    assert expire_leases(engine, LATER) == 1
    assert _notes(engine, "expired") == [("lease ran out", "queue.note.lease_ran_out", None)]


def test_a_manager_assignment_names_the_manager_in_words(engine):
    staff = seed.users(engine)
    item = seed.prospects(engine, 1)[0]["item_id"]
    assign(engine, item, staff["alice"], staff["mia"], T0)
    assert _notes(engine, "assigned") == [("by mia", "queue.note.by_manager", {"user": "mia"})]
    assert _said(engine, item, "zh")[0] == "由 mia 分配"
    assert _said(engine, item, "en")[0] == "by mia"


def test_handing_out_the_pool_says_the_strategy_in_words(engine):
    seed.users(engine)
    seed.prospects(engine, 2)
    assign_pool(engine, "round_robin", T0, zone=ZONE)
    assert _notes(engine, "assigned") == [("by round_robin", "queue.note.by_round_robin", None)] * 2
    # The next round starts after the person who received the last item: the key says so.
    seed.prospects(engine, 1)
    first = assign_pool(engine, "round_robin", T0, zone=ZONE)
    seed.prospects(engine, 1)
    second = assign_pool(engine, "round_robin", T0, zone=ZONE)
    assert set(first.by_user) | set(second.by_user) == {"alice", "bob"}
    seed.prospects(engine, 2)
    assign_pool(engine, "load", T0, zone=ZONE)
    keys = [k for _, k, _ in _notes(engine, "assigned")]
    assert keys[-2:] == ["queue.note.by_load"] * 2
    with transaction(engine) as s:
        item = s.scalars(select(QueueAction.item_id).order_by(QueueAction.id.desc())).first()
    assert _said(engine, item, "zh")[0] == "自动分配（按当前负载）"
    assert _said(engine, item, "en")[0] == "auto-assigned (current load)"


def test_typed_notes_and_a_typed_lost_reason_stay_as_typed(engine):
    staff = seed.users(engine)
    item = seed.prospects(engine, 1)[0]["item_id"]
    claim_item(engine, item, staff["alice"], T0, zone=ZONE)
    record_attempt(engine, item, staff["alice"], "by phone, lease ran out?", now=T0)
    record_outcome(engine, item, staff["alice"], "lost", reason="没预算", rules=RULES, now=T0)
    assert _notes(engine, "attempt") == [("by phone, lease ran out?", None, None)]
    assert _notes(engine, "lost") == [("没预算", None, None)]
    with transaction(engine) as s:
        row = s.get(QueueItem, item)
        assert (row.outcome_reason, row.outcome_key) == ("没预算", None)
    for lang in ("zh", "en"):
        assert _said(engine, item, lang)[:2] == ["没预算", "by phone, lease ran out?"]


def test_the_system_closing_an_item_as_lost_writes_its_reason_key(engine):
    seed.users(engine)
    loser, winner, erased = seed.prospects(engine, 3)
    with transaction(engine) as s:
        merge_contacts(s, [(loser["contact_id"], winner["contact_id"])], now=T0, actor="system")
    erase_contact(engine, erased["contact_id"], actor="root", now=T0)
    with transaction(engine) as s:
        closed = {
            i.id: (i.status, i.outcome_reason, i.outcome_key)
            for i in s.scalars(select(QueueItem).where(QueueItem.open_key.is_(None)))
        }
    assert closed == {
        loser["item_id"]: ("lost", "contact merged", "queue.closed.merged"),
        erased["item_id"]: ("lost", "erased on request", "queue.closed.erased"),
    }
    zh, en = translator("zh"), translator("en")
    assert keyed_text(zh, "queue.closed.erased", None, "erased on request") == (
        "应本人要求已删除个人数据"
    )
    assert keyed_text(en, "queue.closed.merged", None, "contact merged") == "contact merged"


def test_every_system_note_has_words_in_both_languages():
    for key, sentence in SENTENCES.items():
        params = {name: "mia" for _, name, _, _ in Formatter().parse(sentence) if name}
        zh = keyed_text(translator("zh"), key, params, sentence)
        en = keyed_text(translator("en"), key, params, sentence)
        assert not LATIN.search(zh.replace("mia", "")), (key, zh)
        assert en != key and "{" not in en and "=" not in en, (key, en)
    assert set(SENTENCES) == set(NoteKey)
    assert keyed_text(translator("zh"), None, None, None) == ""


def _cli(env, lang: str, *args: str) -> str:
    proc = subprocess.run(
        [".venv/bin/qunflow", "--lang", lang, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_cli_history_says_system_notes_in_the_readers_language(cli_env, engine):
    staff = seed.users(engine)
    items = seed.prospects(engine, 2)
    item = items[0]["item_id"]
    claim_item(engine, item, staff["alice"], T0, zone=ZONE)
    expire_leases(engine, LATER)
    assign(engine, item, staff["alice"], staff["mia"], LATER)
    record_attempt(engine, item, staff["alice"], "called twice", now=LATER)
    erase_contact(engine, items[1]["contact_id"], actor="root", now=LATER)
    zh = _cli(cli_env, "zh", "queue", "history", str(item))
    assert "租约到期，退回公海池" in zh and "由 mia 分配" in zh and "called twice" in zh
    assert "lease ran out" not in zh and "by mia" not in zh
    en = _cli(cli_env, "en", "queue", "history", str(item))
    assert "lease ran out" in en and "by mia" in en and "called twice" in en
    # --json keeps what is stored: the English sentence and the key beside it.
    data = json.loads(_cli(cli_env, "zh", "queue", "history", str(item), "--json"))
    stored = {(a["action"], a["note"], a["note_key"]) for a in data["actions"]}
    assert ("assigned", "by mia", "queue.note.by_manager") in stored
    assert ("attempt", "called twice", None) in stored
    gone = _cli(cli_env, "zh", "queue", "history", str(items[1]["item_id"]))
    assert "原因：应本人要求已删除个人数据" in gone and "erased" not in gone
