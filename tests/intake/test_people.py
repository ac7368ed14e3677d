"""Grouping records into people and the rows that follow: pure rules, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm.intake.batch import (
    Batch,
    PendingRow,
    Record,
    SourceInfo,
    contact_updates,
    new_contacts,
    new_identities,
)
from crm.intake.people import Member, group_people
from crm.intake.prepare import prepare

PHONE_A = ("phone", "+8613800000001")
PHONE_B = ("phone", "+8613800000002")
WX_A = ("wechat_id", "wx_alice")
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_records_sharing_an_identity_are_one_new_person():
    people = group_people([Member((PHONE_A,)), Member((PHONE_A, WX_A)), Member((PHONE_B,))], {})
    assert people.contact_ids == (None, None)
    assert people.person_of == (0, 0, 1)
    assert people.new_count == 2 and people.merges == ()


def test_a_record_joining_two_existing_contacts_merges_them_into_the_oldest():
    people = group_people([Member((PHONE_A, WX_A))], {PHONE_A: 9, WX_A: 4})
    assert people.contact_ids == (4,)
    assert people.person_of == (0,)
    assert people.merges == ((9, 4),)


def test_known_identities_not_in_the_batch_are_ignored():
    people = group_people([Member((PHONE_B,))], {PHONE_A: 3})
    assert people.contact_ids == (None,) and people.merges == ()


def test_the_inviter_is_a_person_of_its_own_or_the_source_referrer():
    people = group_people(
        [Member((PHONE_A,), ref_keys=(PHONE_B,)), Member((WX_A,), source_referrer=7)], {}
    )
    # The source's referrer is an existing person; the record's inviter a new one.
    assert people.contact_ids == (7, None, None, None)
    assert people.person_of == (1, 3)
    assert people.referrer_of == (2, 0)


def test_inviting_oneself_names_no_referrer():
    people = group_people([Member((PHONE_A,), ref_keys=(PHONE_A,))], {})
    assert people.person_of == (0,) and people.referrer_of == (None,)


def _batch(*payloads: dict[str, object]) -> Batch:
    records = []
    for n, payload in enumerate(payloads, start=1):
        prep = prepare(payload, platform=None)
        assert prep.rejection is None
        records.append(Record(PendingRow(n, 1, payload), prep, prep.occurred_at or T0))
    return Batch({1: SourceInfo("peer_group", None, None)}, records, [])


def test_new_contacts_take_the_earliest_name_and_widest_range():
    later = (T0 + timedelta(days=2)).isoformat()
    batch = _batch(
        {"phone": "13800000001", "occurred_at": later},
        {"phone": "13800000001", "name": "小明", "occurred_at": T0.isoformat()},
        {"phone": "13800000002", "name": "老王"},
    )
    batch.place(group_people(batch.members(), {}), [100, 101])
    rows = new_contacts(batch)
    assert [(c.id, c.name) for c in rows] == [(100, "小明"), (101, "老王")]
    assert rows[0].first_seen == T0 and rows[0].last_seen == T0 + timedelta(days=2)
    assert (batch.report.new_contacts, batch.report.matched) == (2, 1)
    assert contact_updates(batch) == []
    assert {i.key for i in new_identities(batch)} == {PHONE_A, PHONE_B}


def test_records_of_existing_contacts_become_updates_not_rows():
    batch = _batch({"phone": "13800000001", "name": "小明"})
    batch.known = {PHONE_A: 5}
    batch.place(group_people(batch.members(), batch.known), [])
    assert new_contacts(batch) == [] and batch.report.matched == 1
    (update,) = contact_updates(batch)
    assert (update.id, update.name, update.first_seen) == (5, "小明", T0)
    assert new_identities(batch) == []
