"""A contact no group invitation could reach holds no slot of the group: placement leaves it
waiting for an address, and an invitation skipped at dispatch as "no address" ends its
membership, so the next contact takes the slot; given an address, it is invited again."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, delete, select

from crm.core.db import transaction
from crm.core.vocabulary import Tier
from crm.models import Community, Identity, Membership, OutboxMessage
from crm.outreach.channels.local import FileChannel
from crm.outreach.dispatch import DispatchReport, dispatch
from crm.routing.placement import PlacementResult, pending_placements, place_contacts
from crm.routing.rules import load_rules
from tests.helpers.followups import settings_for
from tests.helpers.route_fixtures import NOW, add_contact, add_group

RULES = load_rules()


def route_once(engine: Engine) -> PlacementResult:
    """The placement step of a route run: everyone waiting for a group of their tier."""
    with transaction(engine) as s:
        return place_contacts(s, pending_placements(s, RULES), RULES, now=NOW)


def open_tier(engine: Engine, *ids: int) -> None:
    from crm.models import Contact

    with transaction(engine) as s:
        for cid in ids:
            s.get_one(Contact, cid).tier = Tier.OPEN.value


def slots(engine: Engine) -> tuple[list[int], int]:
    """Current members of open-1, and its stored member count."""
    with transaction(engine) as s:
        current = s.scalars(
            select(Membership.contact_id)
            .where(Membership.left_at.is_(None))
            .order_by(Membership.contact_id)
        ).all()
        count = s.scalars(select(Community.member_count)).one()
    return list(current), count


def send(engine: Engine, tmp_path: Path) -> tuple[DispatchReport, list[str | None]]:
    out = tmp_path / "wechat.jsonl"
    channels = {"wechat": FileChannel(out)}
    result = dispatch(engine, now=NOW, channels=channels, settings=settings_for(tmp_path))
    lines = out.read_text().splitlines() if out.exists() else []
    return result, [json.loads(line)["address"] for line in lines]


def test_a_phone_only_contact_leaves_the_last_slot_to_one_with_a_wechat_id(
    engine: Engine,
) -> None:
    add_group(engine, "open-1", "open", limit=2)
    first = add_contact(engine, "first")
    phone_only = add_contact(engine, "phone", wechat=False)
    with transaction(engine) as s:
        s.add(Identity(contact_id=phone_only, kind="phone", value="+8613800000001"))
    reachable = add_contact(engine, "wx")
    open_tier(engine, first, phone_only, reachable)
    with transaction(engine) as s:
        place_contacts(s, {Tier.OPEN: [first]}, RULES, now=NOW)  # one slot left
    result = route_once(engine)
    assert result.placed == 1 and result.no_address == {Tier.OPEN: 1}
    assert result.pending == {}  # waiting for an address, not for room: no room alert
    assert slots(engine) == ([first, reachable], 2)
    with transaction(engine) as s:
        invited = s.scalars(select(OutboxMessage.contact_id).order_by(OutboxMessage.id)).all()
    assert invited == [first, reachable]


def test_a_skip_at_dispatch_frees_the_slot_until_the_contact_has_an_address(
    engine: Engine, tmp_path: Path
) -> None:
    add_group(engine, "open-1", "open", limit=1)
    cid = add_contact(engine, "c")
    open_tier(engine, cid)
    assert route_once(engine).placed == 1
    with transaction(engine) as s:  # the WeChat id turned out wrong and was removed
        s.execute(delete(Identity).where(Identity.contact_id == cid))
    result, addresses = send(engine, tmp_path)
    assert (result.sent, result.skipped, addresses) == (0, 1, [])
    assert slots(engine) == ([], 0)
    with transaction(engine) as s:
        ended = s.scalars(select(Membership)).one()
        assert (ended.left_reason, ended.left_at) == ("no address", NOW)

    again = route_once(engine)
    assert again.placed == 0 and again.no_address == {Tier.OPEN: 1}
    assert slots(engine) == ([], 0)

    with transaction(engine) as s:
        s.add(Identity(contact_id=cid, kind="wechat_id", value="wx_found"))
    assert route_once(engine).placed == 1
    assert slots(engine) == ([cid], 1)
    with transaction(engine) as s:
        row = s.scalars(select(OutboxMessage)).one()  # the skipped invitation, planned again
        assert (row.state, row.reason, row.channel) == ("planned", None, "wechat")
    result, addresses = send(engine, tmp_path)
    assert (result.sent, addresses) == (1, ["wx_found"])
