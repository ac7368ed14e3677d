"""Ingestion service on SQLite and PostgreSQL: dedupe, merges, idempotency, honest counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select

from crm.core.db import transaction
from crm.core.errors import InputError
from crm.core.vocabulary import SourceKind
from crm.intake.pending import process_pending, replay
from crm.intake.pipeline import ingest_items, ingest_path
from crm.intake.reasons import Reason, why
from crm.intake.records import RawItem, RejectedRow, SourceSpec
from crm.models import (
    AuditEntry,
    Consent,
    Contact,
    Event,
    Identity,
    QuarantinedRow,
    RawRecord,
    SourceInstance,
    Touch,
)
from crm.sample.data import SAMPLE_AS_OF, write_sample

NOW = datetime(2024, 6, 1, 4, 0, tzinfo=UTC)
GROUP = SourceSpec(kind=SourceKind.PEER_GROUP, key="宝妈群", name="宝妈群", operator_handle="op1")
POST = SourceSpec(
    kind=SourceKind.SELF_MEDIA, key="xiaohongshu:n1", name="n1", platform="xiaohongshu", post="n1"
)


def _count(engine: Engine, model: type) -> int:
    with transaction(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _item(key: str, **payload: object) -> RawItem:
    return RawItem(record_key=key, payload=dict(payload))


def test_dedupe_across_sources_and_touches(engine: Engine) -> None:
    r1 = ingest_items(
        engine,
        GROUP,
        [_item("a", name="小美🌸", phone="+86 138-0013-8000"), _item("b", wechat_id="Li_Lei_88")],
        origin="t",
        now=NOW,
    )
    r2 = ingest_items(
        engine,
        POST,
        [
            _item(
                "x",
                handle="cat",
                platform="xiaohongshu",
                phone="0086 13800138000",
                message="多少钱",
            ),
            _item("y", handle="dog", platform="xiaohongshu", wechat_id="LI_LEI_88"),
        ],
        origin="t",
        now=NOW,
    )
    assert (r1.new_contacts, r1.matched) == (2, 0)
    assert (r2.new_contacts, r2.matched) == (0, 2)
    assert _count(engine, Contact) == 2
    assert _count(engine, Touch) == 4
    with transaction(engine) as s:
        mei = s.scalar(select(Contact).where(Contact.display_name == "小美🌸"))
        assert mei is not None
        kinds = set(s.scalars(select(Identity.kind).where(Identity.contact_id == mei.id)))
        assert kinds == {"phone", "platform_handle"}
        (ev,) = s.scalars(select(Event).where(Event.contact_id == mei.id)).all()
        assert ev.kind == "message" and ev.payload["message"] == "多少钱"
        group = s.scalar(select(SourceInstance).where(SourceInstance.key == "宝妈群"))
        assert group is not None and group.operator_account_id is not None


def test_linking_record_merges_two_contacts(engine: Engine) -> None:
    ingest_items(engine, GROUP, [_item("a", name="老A", phone="13800138000")], origin="t", now=NOW)
    ingest_items(engine, POST, [_item("b", name="B", wechat_id="bee_bee_1")], origin="t", now=NOW)
    with transaction(engine) as s:
        older = s.scalar(select(Contact.id).where(Contact.display_name == "老A"))
        newer = s.scalar(select(Contact.id).where(Contact.display_name == "B"))
    report = ingest_items(
        engine,
        POST,
        [_item("c", phone="138 0013 8000", wechat_id="BEE_BEE_1", event="share")],
        origin="t",
        now=NOW,
    )
    assert (report.merged, report.matched, report.new_contacts) == (1, 1, 0)
    with transaction(engine) as s:
        loser = s.get(Contact, newer)
        assert loser is not None and loser.status == "merged" and loser.merged_into_id == older
        assert set(s.scalars(select(Identity.contact_id))) == {older}
        assert set(s.scalars(select(Touch.contact_id))) == {older}
        assert s.scalar(select(func.count()).select_from(Touch)) == 3
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.object_id == str(older))) == (
            "contact.merge"
        )


def test_reimport_adds_nothing_and_counts_hold(engine: Engine, tmp_path: Path) -> None:
    paths = write_sample(tmp_path, contacts=60, seed=3)
    first = ingest_path(engine, "peer-group", paths["peer-group"], now=SAMPLE_AS_OF)
    totals = {m: _count(engine, m) for m in (Contact, Identity, Touch, RawRecord, QuarantinedRow)}
    again = ingest_path(engine, "peer-group", paths["peer-group"], now=SAMPLE_AS_OF)
    assert {m: _count(engine, m) for m in totals} == totals
    for rep in (first, again):
        assert rep.read == rep.new_contacts + rep.matched + rep.quarantined
    assert again.new_contacts == 0 and again.quarantined == first.quarantined == 2
    # Every row read again is either matched as already imported or already quarantined.
    assert again.skipped_duplicates == again.matched == again.read - again.quarantined
    assert again.reasons == {"already_quarantined": 2}


def test_messy_sample_every_row_accounted_for(engine: Engine, tmp_path: Path) -> None:
    paths = write_sample(tmp_path, contacts=80, seed=5)
    kinds = {
        "peer-group": "peer-group",
        "peer-group-bom": "peer-group",
        "self-media": "self-media",
        "qr-signups": "qr-signups",
        "events": "events",
    }
    total_read = 0
    for name, kind in kinds.items():
        rep = ingest_path(engine, kind, paths[name], now=SAMPLE_AS_OF, batch_size=37)
        assert rep.read == rep.new_contacts + rep.matched + rep.quarantined, name
        assert rep.quarantined >= 1, name
        total_read += rep.read
    with transaction(engine) as s:
        processed = s.scalar(select(func.count()).select_from(RawRecord)) or 0
        quarantined = s.scalar(select(func.count()).select_from(QuarantinedRow)) or 0
        pending = s.scalar(select(func.count()).where(RawRecord.status == "pending"))
        referred = s.scalar(select(func.count()).where(Contact.referred_by_id.is_not(None)))
        opt_outs = s.scalar(select(func.count()).where(Consent.kind == "opt_out"))
        consents = s.scalar(select(func.count()).where(Consent.kind == "consent"))
    assert pending == 0
    assert referred and opt_outs and consents
    # Raw records + rows rejected before becoming raw records = everything read (no dupes here).
    assert processed + quarantined >= total_read - quarantined


def test_rejected_rows_quarantined_once(engine: Engine) -> None:
    bad = why(Reason.UNDECODABLE, encoding="gbk")
    items = [RejectedRow(3, "a,b,\x00", bad), _item("z", phone="12")]
    for _ in range(2):
        rep = ingest_items(engine, GROUP, items, origin="f.csv", now=NOW)
        assert rep.quarantined == 2 and rep.read == 2
    assert _count(engine, QuarantinedRow) == 2


def test_a_time_that_cannot_be_read_is_quarantined_not_dated_today(engine: Engine) -> None:
    items = [
        _item("a", phone="13800138000", event="purchase", occurred_at="上周三"),
        _item("b", phone="13800138001", event="purchase", occurred_at=45418),
        _item("c", phone="13800138002", event="purchase", occurred_at="2024-05-06 09:00"),
        _item("d", phone="13800138003", event="purchase"),  # no time given: the import's
    ]
    rep = ingest_items(engine, GROUP, items, origin="events.csv", now=NOW)
    assert (rep.read, rep.new_contacts, rep.quarantined) == (4, 2, 2)
    with transaction(engine) as s:
        reasons = sorted(s.scalars(select(QuarantinedRow.reason)))
        times = sorted(s.scalars(select(Event.occurred_at)))
    assert reasons == ["unreadable time: '45418'", "unreadable time: '上周三'"]
    assert times == [datetime(2024, 5, 6, 1, 0, tzinfo=UTC), NOW]


def test_process_pending_replays_the_raw_log(engine: Engine) -> None:
    with transaction(engine) as s:
        src = SourceInstance(kind="qr_signup", key="qr:x", name="x", extra={})
        s.add(src)
        s.flush()
        s.add(
            RawRecord(
                source_instance_id=src.id,
                record_key="k1",
                payload={"name": "王", "phone": "13900001111", "consent": True},
            )
        )
    rep = process_pending(engine, now=NOW)
    assert (rep.read, rep.new_contacts) == (1, 1)
    assert process_pending(engine, now=NOW).read == 0
    assert _count(engine, Consent) == 1


def test_raw_log_keeps_each_record_once_with_its_outcome(engine: Engine) -> None:
    items = [
        _item("a", name="王\x00芳", phone="139 0000 2222", note="x\x00y\\u0000"),
        _item("a", name="王芳", phone="139 0000 2222"),  # same key twice in the batch
        _item("b", name="no id", phone="12"),
        _item("c", wechat_id="Wang_Fang1", phone="+86 13900002222"),
    ]
    rep = ingest_items(engine, GROUP, items, origin="f.csv", now=NOW)
    assert (rep.read, rep.new_contacts, rep.matched, rep.quarantined) == (4, 1, 2, 1)
    with transaction(engine) as s:
        raws = {r.record_key: r for r in s.scalars(select(RawRecord))}
        contact_id = s.scalar(select(Identity.contact_id).where(Identity.value == "+8613900002222"))
        q = s.scalars(select(QuarantinedRow)).one()
        assert set(raws) == {"a", "b", "c"}
        assert raws["a"].status == raws["c"].status == "processed"
        assert raws["a"].contact_id == raws["c"].contact_id == contact_id
        assert raws["a"].payload == {"name": "王芳", "phone": "139 0000 2222", "note": "xy\\u0000"}
        assert s.get(Contact, contact_id).display_name == "王芳"
        assert raws["a"].processed_at is not None and raws["a"].id < raws["c"].id
        assert raws["b"].status == "quarantined" and raws["b"].contact_id is None
        assert q.raw_record_id == raws["b"].id and "no usable identity" in q.reason
        touched = set(s.scalars(select(Touch.raw_record_id)))
        assert touched == {raws["a"].id, raws["c"].id}
    again = ingest_items(engine, GROUP, items, origin="f.csv", now=NOW)
    assert (again.new_contacts, again.matched, again.quarantined) == (0, 3, 1)
    assert _count(engine, RawRecord) == 3 and _count(engine, Touch) == 2


def test_raw_ids_follow_records_stored_by_others(engine: Engine) -> None:
    with transaction(engine) as s:
        src = SourceInstance(kind="qr_signup", key="qr:y", name="y", extra={})
        s.add(src)
        s.flush()
        payload = {"phone": "13900003333"}
        s.add(RawRecord(source_instance_id=src.id, record_key="k", payload=payload))
    rep = ingest_items(engine, GROUP, [_item("n", phone="13900004444")], origin="f", now=NOW)
    assert rep.new_contacts == 1
    assert process_pending(engine, now=NOW).new_contacts == 1
    assert _count(engine, RawRecord) == 2 and _count(engine, Touch) == 2


def test_a_failing_reader_stops_the_import_after_the_committed_batches(engine: Engine) -> None:
    def items() -> Iterator[RawItem]:
        yield _item("1", phone="13900005551")
        yield _item("2", phone="13900005552")
        yield _item("3", phone="13900005553")
        raise InputError("f.csv: the file changed while it was read")

    with pytest.raises(InputError, match="changed"):
        ingest_items(engine, GROUP, items(), origin="f.csv", now=NOW, batch_size=2)
    assert _count(engine, RawRecord) == 2 and _count(engine, Contact) == 2


def test_names_and_payloads_with_tabs_newlines_and_backslashes_round_trip(engine: Engine) -> None:
    name = "王\t芳\\n\n🌸\r乙"
    payload = {"name": name, "phone": "13900006666", "note": 'a\\"b\tc', "n": None}
    rep = ingest_items(engine, GROUP, [RawItem("k", payload)], origin="f", now=NOW)
    assert rep.new_contacts == 1
    with transaction(engine) as s:
        assert s.scalars(select(Contact.display_name)).one() == name
        assert s.scalars(select(RawRecord.payload)).one() == payload


def test_long_identities_match_as_stored_and_flagged_ones_are_kept_once(engine: Engine) -> None:
    # Identities are stored cut to 200 characters: a longer one matches its stored form, and
    # a flagged (invalid) identity seen again is neither stored twice nor an error.
    long_handle = "h" * 230
    first = ingest_items(
        engine,
        POST,
        [_item("a", handle=long_handle, phone="12345")],
        origin="t",
        now=NOW,
    )
    again = ingest_items(
        engine,
        POST,
        [_item("b", handle=long_handle + "-other-tail", phone="12345")],
        origin="t",
        now=NOW,
    )
    assert (first.new_contacts, again.new_contacts, again.matched) == (1, 0, 1)
    assert _count(engine, Contact) == 1
    with transaction(engine) as s:
        kinds = sorted(s.scalars(select(Identity.kind)))
    assert kinds == ["phone", "platform_handle"]


def test_keys_with_control_characters_stay_idempotent(engine: Engine) -> None:
    # Batch lookups send each column's values joined by a control character on PostgreSQL;
    # a value that contains it takes the staging-table path, with the same result.
    items = [
        _item("id:\x1fa\x1f", wechat_id="wx_control_1", handle="a\x1fb"),
        _item("id:b", wechat_id="wx_control_2"),
    ]
    first = ingest_items(engine, POST, items, origin="t", now=NOW)
    again = ingest_items(engine, POST, items, origin="t", now=NOW)
    assert first.new_contacts == 2
    assert (again.skipped_duplicates, again.new_contacts) == (2, 0)
    assert _count(engine, RawRecord) == 2


def test_handles_are_scoped_by_the_stored_sources_platform(engine: Engine) -> None:
    # Records are normalized ahead for their spec's platform; when the stored source instance
    # says otherwise, resolution normalizes them again for the stored one.
    first = SourceSpec(kind=SourceKind.SELF_MEDIA, key="post-1", name="p", platform="douyin")
    ingest_items(engine, first, [_item("a", handle="@Cat")], origin="t", now=NOW)
    again = SourceSpec(kind=SourceKind.SELF_MEDIA, key="post-1", name="p", platform="zhihu")
    report = ingest_items(engine, again, [_item("b", handle="cat")], origin="t", now=NOW)
    assert (report.new_contacts, report.matched) == (0, 1)
    with transaction(engine) as s:
        assert list(s.scalars(select(Identity.value))) == ["douyin:cat"]


def test_an_empty_record_key_is_still_looked_up(engine: Engine) -> None:
    # A lone empty value cannot travel as joined text (it splits into no element at all).
    items = [_item("", wechat_id="wx_empty_key")]
    assert ingest_items(engine, POST, items, origin="t", now=NOW).new_contacts == 1
    again = ingest_items(engine, POST, items, origin="t", now=NOW)
    assert (again.skipped_duplicates, again.new_contacts) == (1, 0)
    assert _count(engine, RawRecord) == 1


def test_replay_derives_again_what_a_record_lost(engine: Engine) -> None:
    items = [_item("a", wechat_id="wx_replay_1"), _item("b", wechat_id="wx_replay_2")]
    ingest_items(engine, GROUP, items, origin="t", now=NOW)
    assert replay(engine) == 0  # nothing lost: nothing to do
    with transaction(engine) as s:
        lost = s.scalar(select(RawRecord.id).where(RawRecord.record_key == "a"))
        s.execute(delete(Event).where(Event.raw_record_id == lost))
        s.execute(delete(Touch).where(Touch.raw_record_id == lost))
    assert replay(engine) == 1
    report = process_pending(engine, NOW)
    assert (report.read, report.matched, report.new_contacts) == (1, 1, 0)
    assert _count(engine, Touch) == 2 and _count(engine, Contact) == 2
    assert replay(engine) == 0
