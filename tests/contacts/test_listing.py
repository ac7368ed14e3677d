"""The contacts list: one page read without the ORM, as the models define the tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm.contacts.listing import CONTACT_TAGS, CONTACTS, IDENTITIES, list_contacts
from crm.core.db import read_only, transaction
from crm.models import Base, Contact, ContactTag, Identity, UTCDateTime


def test_the_lists_tables_are_the_models_tables() -> None:
    for light in (CONTACTS, IDENTITIES, CONTACT_TAGS):
        model = Base.metadata.tables[light.name]
        for col in light.columns:
            assert col.name in model.columns, f"{light.name}.{col.name}"
            # moments are read as the models store them (aware UTC, see listing._utc)
            stored_as_moment = isinstance(model.columns[col.name].type, UTCDateTime)
            assert stored_as_moment == col.name.endswith("_at"), f"{light.name}.{col.name}"


def _people(engine) -> list[int]:
    seen = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    rows = [  # name, tier, score, status
        ("甲", "prospect", 40, "active"),
        (None, "active", 70, "active"),
        ("丙", "active", 40, "active"),
        ("丁", "prospect", 90, "merged"),
    ]
    with transaction(engine) as s:
        people = [
            Contact(
                display_name=name,
                tier=tier,
                score=score,
                status=status,
                first_seen_at=seen + timedelta(hours=i),
            )
            for i, (name, tier, score, status) in enumerate(rows)
        ]
        s.add_all(people)
        s.flush()
        a, b, c, _ = (p.id for p in people)
        s.add_all(
            [
                Identity(contact_id=b, kind="platform_handle", value="douyin:zzz"),
                Identity(contact_id=b, kind="phone", value="+8613800000001"),
                Identity(contact_id=b, kind="phone", value="+8613800000002"),
                Identity(contact_id=a, kind="wechat_id", value="wx_a"),
                ContactTag(contact_id=c, tag="宝妈", added_at=seen),
                ContactTag(contact_id=c, tag="VIP", added_at=seen),
                ContactTag(contact_id=a, tag="宝妈", added_at=seen),
            ]
        )
        return [a, b, c]


def test_a_page_highest_score_first_with_identities_tags_and_total(engine) -> None:
    a, b, c = _people(engine)
    with read_only(engine) as conn:
        page = list_contacts(conn)
        assert [i["id"] for i in page["items"]] == [b, a, c]  # equal scores: lower id first
        assert page["total"] == 3  # the merged contact is not listed
        first = page["items"][0]
        # no name: the handle; the first phone it got; no WeChat id
        assert (first["name"], first["label"]) == (None, "douyin:zzz")
        assert (first["phone"], first["wechat_id"]) == ("+8613800000001", None)
        assert page["items"][1]["wechat_id"] == "wx_a"
        assert page["items"][2]["tags"] == ["VIP", "宝妈"]
        moment = page["items"][0]["first_seen_at"]
        assert moment == datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
        assert moment.utcoffset() == timedelta(0)
        assert page["items"][0]["last_active_at"] is None

        filtered = list_contacts(conn, tier="active", tag="宝妈")
        assert [i["id"] for i in filtered["items"]] == [c] and filtered["total"] == 1
        second = list_contacts(conn, limit=1, offset=1)
        assert [i["id"] for i in second["items"]] == [a] and second["total"] == 3
