"""Group placement: the live code fills groups in order, skips full and expiring ones, and
keeps contacts pending (with an alert) when no group has room."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import Engine, func, select

from crm.core.clock import parse_expiry
from crm.core.db import transaction
from crm.core.vocabulary import Tier
from crm.models import Alert, Community, Consent, Contact, Membership, OutboxMessage
from crm.routing.group_choice import (
    GroupRoom,
    assign,
    no_room_message,
    reaches,
    room_left,
    takes_members,
)
from crm.routing.groups import rotate_qr
from crm.routing.placement import pending_placements, place_contacts
from crm.routing.rules import load_rules
from tests.helpers.route_fixtures import NOW, add_contact, add_group

RULES = load_rules()


def test_assign_fills_groups_in_order() -> None:
    groups = [
        GroupRoom(1, "a", None, "wechat", "u", room=2),
        GroupRoom(2, "b", None, "wechat", "u", room=0),
        GroupRoom(3, "c", None, "wechat", "u", room=1),
    ]
    chosen = assign([10, 11, 12, 13], groups)
    assert chosen.placed == {10: 1, 11: 1, 12: 3}
    assert chosen.left == [13] and chosen.unreachable == []


def test_assign_skips_groups_a_contact_cannot_be_reached_in() -> None:
    groups = [
        GroupRoom(1, "wx", None, "wechat", "u", room=1),
        GroupRoom(2, "wc", None, "wecom", "u", room=1),
    ]
    kinds = {10: {"wecom_external_userid"}, 11: {"phone"}, 12: {"email"}, 13: {"wechat_id"}}
    chosen = assign([10, 11, 12, 13], groups, lambda c, g: reaches(kinds[c], g.platform))
    # 10 only reaches the WeCom group; 11 no group at all; 12 by email the first with room.
    assert chosen.placed == {10: 2, 12: 1}
    assert chosen.unreachable == [11] and chosen.left == [13]


def test_parse_expiry() -> None:
    assert parse_expiry("7d") == timedelta(days=7)
    assert parse_expiry("36h") == timedelta(hours=36)


def members(engine: Engine) -> dict[str, list[int]]:
    with transaction(engine) as s:
        rows = s.execute(
            select(Community.name, Membership.contact_id)
            .join(Community, Community.id == Membership.community_id)
            .where(Membership.left_at.is_(None))
            .order_by(Membership.contact_id)
        ).all()
    out: dict[str, list[int]] = {}
    for name, cid in rows:
        out.setdefault(name, []).append(cid)
    return out


def test_full_and_expiring_groups_roll_over(engine: Engine) -> None:
    add_group(engine, "open-1", "open", limit=2, position=0)
    add_group(engine, "open-expired", "open", position=1, expires=NOW - timedelta(hours=1))
    # Valid now, but inside the 24 h margin: handing it out would fail on the phone.
    add_group(engine, "open-expiring", "open", position=2, expires=NOW + timedelta(hours=5))
    add_group(engine, "open-2", "open", limit=200, position=3)
    ids = [add_contact(engine, f"c{i}") for i in range(5)]
    with transaction(engine) as s:
        result = place_contacts(s, {Tier.OPEN: ids}, RULES, now=NOW)
    assert result.placed == 5
    assert members(engine) == {"open-1": ids[:2], "open-2": ids[2:]}
    with transaction(engine) as s:
        invite = s.scalars(select(OutboxMessage).where(OutboxMessage.contact_id == ids[0])).one()
        counts = dict(s.execute(select(Community.name, Community.member_count)).all())
    assert invite.campaign == "tier-invite" and invite.step == "open"
    assert invite.action == "group_invite" and invite.template == "tier_invitation"
    assert invite.idempotency_key == f"tier-invite:open:{ids[0]}"
    assert invite.channel == "wechat" and invite.account_id is not None
    assert invite.due_at == NOW and invite.state == "planned"
    assert invite.context["qr_code_url"] == "https://qr.example/open-1"
    assert counts["open-1"] == 2 and counts["open-2"] == 3


def test_no_room_alerts_and_keeps_contacts_pending(engine: Engine) -> None:
    add_group(engine, "active-1", "active", limit=1)
    ids = [add_contact(engine, f"c{i}") for i in range(3)]
    with transaction(engine) as s:
        for cid in ids:
            s.get_one(Contact, cid).tier = "active"
    with transaction(engine) as s:
        pending = pending_placements(s, RULES)
        assert pending == {"active": ids}
        result = place_contacts(s, pending, RULES, now=NOW)
    assert result.placed == 1 and result.pending == {"active": 2}
    with transaction(engine) as s:
        alert = s.scalars(select(Alert)).one()
        assert (alert.kind, alert.subject, alert.resolved_at) == ("no_group_room", "active", None)
        assert "2 contact(s) wait for a active group" in alert.message
        # Not lost: still pending on the next run, and one alert, not two.
        pending = pending_placements(s, RULES)
        assert pending == {"active": ids[1:]}
        place_contacts(s, pending, RULES, now=NOW)
        assert s.scalar(select(func.count()).select_from(Alert)) == 1

    add_group(engine, "active-2", "active", limit=200, position=1)
    with transaction(engine) as s:
        result = place_contacts(s, pending_placements(s, RULES), RULES, now=NOW)
        assert result.placed == 2 and result.pending == {}
        assert s.scalars(select(Alert)).one().resolved_at == NOW
    assert members(engine) == {"active-1": ids[:1], "active-2": ids[1:]}


def test_rotating_the_qr_code_reopens_a_group(engine: Engine) -> None:
    add_group(engine, "prospect-1", "prospect", expires=NOW + timedelta(hours=2))
    cid = add_contact(engine, "p")
    with transaction(engine) as s:
        assert place_contacts(s, {Tier.PROSPECT: [cid]}, RULES, now=NOW).pending == {"prospect": 1}
    rotate_qr(
        engine, "prospect-1", url="https://qr.example/new", expires=timedelta(days=7), now=NOW
    )
    with transaction(engine) as s:
        assert place_contacts(s, {Tier.PROSPECT: [cid]}, RULES, now=NOW).placed == 1
        invite = s.scalars(select(OutboxMessage)).one()
    assert invite.context["qr_code_url"] == "https://qr.example/new"


def test_theme_and_opt_out(engine: Engine) -> None:
    add_group(engine, "paid-discussion", "paid", theme="discussion")
    add_group(engine, "paid-paid", "paid", theme="paid", position=1)
    keen, gone = add_contact(engine, "keen"), add_contact(engine, "gone")
    with transaction(engine) as s:
        s.add(Consent(contact_id=gone, kind="opt_out", source="reply 退订", recorded_at=NOW))
    with transaction(engine) as s:
        result = place_contacts(s, {Tier.PAID: [keen, gone]}, RULES, now=NOW)
    assert result.placed == 1
    assert members(engine) == {"paid-paid": [keen]}  # rules: paid groups have the paid theme


def test_room_and_whether_a_group_takes_members() -> None:
    assert room_left(200, 500, 150) == 50
    assert room_left(200, 120, 100) == 20  # never beyond the capacity
    assert room_left(200, 500, 230) == 0
    open_now = {
        "qr_code_url": "https://qr/1",
        "qr_expires_at": NOW + timedelta(hours=1),
        "members": 199,
        "qr_join_limit": 200,
        "capacity": 500,
        "archived": False,
        "now": NOW,
    }
    assert takes_members(**open_now)  # type: ignore[arg-type]
    for change in (
        {"qr_code_url": None},
        {"qr_expires_at": NOW},
        {"members": 200},
        {"capacity": 199},
        {"archived": True},
    ):
        assert not takes_members(**{**open_now, **change}), change  # type: ignore[arg-type]


def test_no_room_message_names_tier_and_theme() -> None:
    assert no_room_message(Tier.ACTIVE, 2, None).startswith("2 contact(s) wait for a active group")
    assert "(theme paid)" in no_room_message(Tier.PAID, 1, "paid")


def test_an_invitation_reaches_someone_or_is_not_made(engine: Engine, tmp_path) -> None:
    # One contact on WeChat, one with only an email (the fallback), one known only by phone.
    from crm.models import Identity
    from crm.outreach.channels.local import FileChannel
    from crm.outreach.dispatch import dispatch
    from tests.helpers.followups import settings_for

    add_group(engine, "open-1", "open")
    ids = [add_contact(engine, f"c{i}", wechat=False) for i in range(3)]
    with transaction(engine) as s:
        s.add(Identity(contact_id=ids[0], kind="wechat_id", value="wx_c0"))
        s.add(Identity(contact_id=ids[1], kind="email", value="c1@example.com"))
        s.add(Identity(contact_id=ids[2], kind="phone", value="+8613800000000"))
    with transaction(engine) as s:
        result = place_contacts(s, {Tier.OPEN: ids}, RULES, now=NOW)
    # The phone-only contact is not invited: it waits for an address, holding no slot.
    assert result.placed == 2 and result.no_address == {Tier.OPEN: 1} and result.pending == {}
    assert members(engine) == {"open-1": ids[:2]}
    sendlist, mails = tmp_path / "wechat.jsonl", tmp_path / "mail.jsonl"
    channels = {"wechat": FileChannel(sendlist), "email": FileChannel(mails)}
    result = dispatch(engine, now=NOW, channels=channels, settings=settings_for(tmp_path))
    assert result.sent == 2 and result.skipped == 0
    with transaction(engine) as s:
        got = {
            r.contact_id: (r.channel, r.state, r.reason) for r in s.scalars(select(OutboxMessage))
        }
    assert got[ids[0]][:2] == ("wechat", "sent") and got[ids[1]][:2] == ("email", "sent")
    assert ids[2] not in got
    assert [json.loads(line)["address"] for line in sendlist.read_text().splitlines()] == ["wx_c0"]
    assert "c1@example.com" in mails.read_text()
