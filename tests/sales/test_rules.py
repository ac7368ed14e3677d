"""Pure sales rules (no database): assignment strategies, claim limits, outcomes, access."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crm.core.errors import Forbidden, InputError
from crm.core.vocabulary import QueueStatus
from crm.sales.assignment import PoolItem, by_load, by_owner, items_to_consider, round_robin
from crm.sales.claim_limits import (
    ClaimLimits,
    check_limit_values,
    check_may_claim,
    check_may_receive,
    local_day_start,
)
from crm.sales.disclosure import mask_identity, may_see_contact_details
from crm.sales.rules import (
    MAX_CAMPAIGN_BATCH,
    MAX_SNOOZE,
    check_campaign_batch,
    check_may_act_on,
    check_outcome,
    parse_outcome,
)
from crm.sales.vocabulary import AssignStrategy

ITEMS = [PoolItem(item_id=i, contact_id=100 + i) for i in range(1, 7)]
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def test_round_robin_deals_in_id_order_after_the_last_receiver():
    assert round_robin(ITEMS, {1: 3, 2: 3}, last=None) == {1: [1, 3, 5], 2: [2, 4, 6]}
    assert round_robin(ITEMS[:3], {1: 3, 2: 3}, last=1) == {2: [1, 3], 1: [2]}
    # Someone without room is skipped; when nobody has room the rest stay in the pool.
    assert round_robin(ITEMS, {1: 1, 2: 2, 3: 0}, last=None) == {1: [1], 2: [2, 3]}
    assert round_robin(ITEMS, {}, last=None) == {}


def test_by_owner_gives_items_only_to_their_owner_within_room():
    owners = {101: 7, 102: 8, 103: 7, 104: 7}
    assert by_owner(ITEMS, {7: 2, 8: 5}, owners) == {7: [1, 3], 8: [2]}


def test_by_load_fills_whoever_holds_least_ties_by_id():
    assert by_load(ITEMS[:5], {1: 4, 2: 1}, {1: 3, 2: 3}) == {1: [1, 3, 4, 5], 2: [2]}
    assert by_load(ITEMS[:3], {1: 5, 2: 5}, {1: 2}) == {2: [1, 2], 1: [3]}


def test_owners_look_further_into_the_pool():
    assert items_to_consider(AssignStrategy.OWNER, 5) == 100
    assert items_to_consider(AssignStrategy.LOAD, 5) == 5


def test_claim_limits_arithmetic_and_refusals():
    limits = ClaimLimits(daily_claim_limit=3, claimed_today=1, holding_limit=2, holding=2)
    assert (limits.claims_left, limits.holding_left, limits.room) == (2, 0, 0)
    with pytest.raises(Forbidden, match=r"holding cap 2\): close or release"):
        check_may_claim("alice", limits)
    tired = ClaimLimits(daily_claim_limit=3, claimed_today=3, holding_limit=5, holding=0)
    with pytest.raises(Forbidden, match="claim cap"):
        check_may_claim("alice", tired)
    check_may_claim("alice", ClaimLimits(3, 2, 5, 4))
    with pytest.raises(Forbidden, match="holding cap 1"):
        check_may_receive("bob", 1, 1)
    with pytest.raises(InputError, match="between 0 and 10000"):
        check_limit_values(claims=-1, holding=None)
    check_limit_values(claims=None, holding=10_000)


def test_the_claim_day_starts_at_local_midnight():
    shanghai = ZoneInfo("Asia/Shanghai")
    assert local_day_start(NOW, shanghai) == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    assert local_day_start(NOW.replace(hour=16, minute=30), shanghai) == datetime(
        2026, 3, 2, 16, 0, tzinfo=UTC
    )


def test_outcomes_need_what_they_need():
    assert parse_outcome("won") is QueueStatus.WON
    with pytest.raises(InputError, match="unknown outcome"):
        parse_outcome("pool")
    assert check_outcome(QueueStatus.LOST, "  budget ", None, NOW) == "budget"
    with pytest.raises(InputError, match="needs a reason"):
        check_outcome(QueueStatus.LOST, "  ", None, NOW)
    with pytest.raises(InputError, match="too long"):
        check_outcome(QueueStatus.CONTACTED, "x" * 501, None, NOW)
    with pytest.raises(InputError, match="future"):
        check_outcome(QueueStatus.SNOOZED, None, NOW, NOW)
    with pytest.raises(InputError, match="time zone"):
        check_outcome(QueueStatus.SNOOZED, None, datetime(2026, 3, 5), NOW)
    assert check_outcome(QueueStatus.SNOOZED, None, NOW + timedelta(days=1), NOW) is None
    assert check_outcome(QueueStatus.SNOOZED, None, NOW + MAX_SNOOZE, NOW) is None
    with pytest.raises(InputError, match="within 90 days"):
        check_outcome(QueueStatus.SNOOZED, None, NOW + MAX_SNOOZE + timedelta(seconds=1), NOW)


def test_salespeople_act_only_on_contacts_they_hold_managers_on_any():
    check_may_act_on(False, [1, 2], {1, 2, 3})
    with pytest.raises(Forbidden, match="contact 4 is not in your queue"):
        check_may_act_on(False, [1, 4], {1})
    check_may_act_on(True, [1, 4], set())


def test_a_campaign_trigger_takes_one_to_500_prospects():
    with pytest.raises(InputError, match="at least one"):
        check_campaign_batch([])
    with pytest.raises(InputError, match="at most 500 prospects at once"):
        check_campaign_batch(list(range(MAX_CAMPAIGN_BATCH + 1)))
    check_campaign_batch(list(range(MAX_CAMPAIGN_BATCH)))


def test_contact_details_are_masked_without_a_need_to_know():
    assert may_see_contact_details(is_manager=True, holds=False, claimable=False)
    assert may_see_contact_details(is_manager=False, holds=True, claimable=False)
    assert may_see_contact_details(is_manager=False, holds=False, claimable=True)
    assert not may_see_contact_details(is_manager=False, holds=False, claimable=False)
    assert mask_identity("phone", "13800138000") == "138****8000"
    assert mask_identity("phone", "+8613800138000") == "+86138****8000"
    assert mask_identity("phone", "12345") == "***45"
    assert mask_identity("wechat_id", "wx_zhang_san") == "wx_***"
    assert mask_identity("wechat_id", "ab") == "***"
    assert mask_identity("email", "zhang.san@example.com") == "z***@example.com"
    assert mask_identity("wecom_external_userid", "wmABCDEFG") == "wmA***"
