"""The prospect queue on both databases: leases, caps, outcomes, assignment; races on PostgreSQL."""

from __future__ import annotations

import importlib.util
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from crm.core.db import make_engine, transaction
from crm.core.errors import Conflict, Forbidden, InputError
from crm.core.vocabulary import QueueStatus
from crm.models import AuditEntry, Contact, QueueAction, QueueItem, SourceInstance, TierChange
from crm.routing.rules import load_rules
from crm.sales.assign import assign, assign_pool
from crm.sales.claim_usage import claim_limit_status, set_claim_limits
from crm.sales.claims import claim_item, claim_next, release
from crm.sales.leases import expire_leases
from crm.sales.listing import QueueFilters, list_queue
from crm.sales.outcomes import record_attempt, record_outcome
from crm.sales.users import add_user
from crm.sales.vocabulary import DEFAULT_LEASE
from tests.helpers import queue_seed as seed
from tests.helpers.queue_seed import T0, ZONE

RULES = load_rules()

HAS_TIERS = importlib.util.find_spec("crm.routing.tiers") is not None


@pytest.fixture
def staff(engine):
    return seed.users(engine)


def test_claim_next_takes_the_earliest_sla_and_leases_it(engine, staff):
    items = seed.prospects(engine, 3)
    got = claim_next(engine, staff["alice"], T0, zone=ZONE)
    assert got.item_id == items[0]["item_id"]
    assert got.lease_expires_at == T0 + DEFAULT_LEASE
    second = claim_next(engine, staff["bob"], T0, zone=ZONE)
    assert second.item_id == items[1]["item_id"]
    with transaction(engine) as s:
        actions = s.scalars(select(QueueAction.action).order_by(QueueAction.id)).all()
        audited = s.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "queue.claim")
        )
    assert actions == ["claim", "claim"]
    assert audited == 2


def test_empty_pool_returns_none(engine, staff):
    assert claim_next(engine, staff["alice"], T0, zone=ZONE) is None


def test_claiming_a_held_item_is_a_conflict_naming_the_holder(engine, staff):
    items = seed.prospects(engine, 1)
    claim_item(engine, items[0]["item_id"], staff["alice"], T0, zone=ZONE)
    with pytest.raises(Conflict, match="already claimed by alice"):
        claim_item(engine, items[0]["item_id"], staff["bob"], T0, zone=ZONE)


def test_expired_lease_returns_to_pool_and_late_outcome_is_refused(engine, staff):
    items = seed.prospects(engine, 1)
    item = items[0]["item_id"]
    claim_item(engine, item, staff["alice"], T0, zone=ZONE)
    later = T0 + DEFAULT_LEASE + timedelta(minutes=1)
    with pytest.raises(Conflict, match=r"lease .* expired"):
        record_outcome(engine, item, staff["alice"], "contacted", rules=RULES, now=later)
    # Someone else may take it now (lazy expiry in the claim).
    got = claim_next(engine, staff["bob"], later, zone=ZONE)
    assert got.item_id == item
    with pytest.raises(Forbidden, match="not yours"):
        record_outcome(engine, item, staff["alice"], "contacted", rules=RULES, now=later)


def test_a_refused_late_outcome_returns_the_item_to_the_pool(engine, staff):
    item = seed.prospects(engine, 1)[0]["item_id"]
    claim_item(engine, item, staff["alice"], T0, zone=ZONE)
    later = T0 + DEFAULT_LEASE + timedelta(minutes=1)
    for late in (
        lambda: record_outcome(engine, item, staff["alice"], "contacted", rules=RULES, now=later),
        lambda: record_attempt(engine, item, staff["alice"], "called", now=later),
        lambda: release(engine, item, staff["alice"], later),
    ):
        with transaction(engine) as s:
            s.execute(
                update(QueueItem)
                .where(QueueItem.id == item)
                .values(status="claimed", assignee_id=staff["alice"], lease_expires_at=T0)
            )
        with pytest.raises(Conflict, match=r"lease .* expired .* claim it again"):
            late()
        with transaction(engine) as s:
            row = s.get(QueueItem, item)
            assert (row.status, row.assignee_id, row.lease_expires_at) == ("pool", None, None)
    with transaction(engine) as s:
        acts = s.scalars(select(QueueAction.action).order_by(QueueAction.id)).all()
        audited = s.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "queue.expired")
        )
    assert acts == ["claim", "expired", "expired", "expired"] and audited == 3


def test_listing_treats_a_run_out_lease_as_available_without_writing(engine, staff):
    items = seed.prospects(engine, 3)
    claim_item(engine, items[1]["item_id"], staff["alice"], T0, zone=ZONE)
    later = T0 + DEFAULT_LEASE + timedelta(minutes=1)
    with transaction(engine) as s:
        held = list_queue(s, view="mine", user_id=staff["alice"], now=T0)
        pool = list_queue(s, view="pool", now=later)
        mine = list_queue(s, view="mine", user_id=staff["alice"], now=later)
        team = list_queue(s, view="team", now=later)
        first = list_queue(s, view="pool", limit=1, now=later)
        second = list_queue(s, view="pool", limit=1, offset=1, now=later)
    assert [i.item_id for i in pool.items] == [i["item_id"] for i in items]  # SLA order
    run_out = pool.items[1]
    assert (run_out.status, run_out.assignee, run_out.lease_expires_at) == (
        QueueStatus.POOL,
        None,
        None,
    )
    assert [i.item_id for i in held.items] == [items[1]["item_id"]]
    assert mine.items == [] and team.items == []
    assert first.has_next and [i.item_id for i in second.items] == [items[1]["item_id"]]
    with transaction(engine) as s:
        assert s.get(QueueItem, items[1]["item_id"]).status == "claimed"
        assert s.scalars(select(QueueAction.action)).all() == ["claim"]


def test_holding_counts_only_live_leases(engine, staff):
    seed.prospects(engine, 3)
    set_claim_limits(engine, "alice", holding=1)
    claim_next(engine, staff["alice"], T0, zone=ZONE)
    with pytest.raises(Forbidden, match="holding cap 1"):
        claim_next(engine, staff["alice"], T0, zone=ZONE)
    later = T0 + DEFAULT_LEASE + timedelta(minutes=1)
    with transaction(engine) as s:
        assert claim_limit_status(s, staff["alice"], later, zone=ZONE).holding == 0
    assert claim_next(engine, staff["alice"], later, zone=ZONE) is not None


def test_expire_leases_sweep(engine, staff):
    items = seed.prospects(engine, 2)
    for it in items:
        claim_item(engine, it["item_id"], staff["alice"], T0, zone=ZONE)
    assert expire_leases(engine, T0 + timedelta(hours=1)) == 0
    assert expire_leases(engine, T0 + timedelta(hours=5)) == 2
    with transaction(engine) as s:
        assert set(s.scalars(select(QueueItem.status))) == {"pool"}
        assert (
            s.scalar(
                select(func.count()).select_from(QueueAction).where(QueueAction.action == "expired")
            )
            == 2
        )


def test_caps_holding_and_daily(engine, staff):
    seed.prospects(engine, 5)
    set_claim_limits(engine, "alice", claims=3, holding=2)
    claim_next(engine, staff["alice"], T0, zone=ZONE)
    first = claim_next(engine, staff["alice"], T0, zone=ZONE)
    with pytest.raises(Forbidden, match="holding cap 2"):
        claim_next(engine, staff["alice"], T0, zone=ZONE)
    release(engine, first.item_id, staff["alice"], T0)
    third = claim_next(engine, staff["alice"], T0, zone=ZONE)  # third claim today
    release(engine, third.item_id, staff["alice"], T0)
    with pytest.raises(Forbidden, match="claim cap"):
        claim_next(engine, staff["alice"], T0, zone=ZONE)
    # The day is counted in Shanghai time: 16:00 UTC is already tomorrow there.
    tomorrow = T0.replace(hour=16, minute=30)
    assert claim_next(engine, staff["alice"], tomorrow, zone=ZONE) is not None
    with transaction(engine) as s:
        caps = claim_limit_status(s, staff["alice"], tomorrow, zone=ZONE)
    assert caps.claimed_today == 1 and caps.claims_left == 2


def test_outcomes_contacted_qualified_snoozed_lost(engine, staff):
    items = seed.prospects(engine, 1)
    item = items[0]["item_id"]
    claim_item(engine, item, staff["alice"], T0, zone=ZONE)
    record_attempt(engine, item, staff["alice"], "called, no answer", now=T0)
    r = record_outcome(engine, item, staff["alice"], "contacted", rules=RULES, now=T0)
    assert r.status == "contacted"
    record_outcome(engine, item, staff["alice"], "qualified", rules=RULES, now=T0)
    with pytest.raises(InputError, match="future"):
        record_outcome(engine, item, staff["alice"], "snoozed", until=T0, rules=RULES, now=T0)
    until = T0 + timedelta(days=2)
    r = record_outcome(engine, item, staff["alice"], "snoozed", until=until, rules=RULES, now=T0)
    assert r.lease_expires_at == until + DEFAULT_LEASE
    with pytest.raises(InputError, match="reason"):
        record_outcome(engine, item, staff["alice"], "lost", rules=RULES, now=T0)
    record_outcome(engine, item, staff["alice"], "lost", reason="budget", rules=RULES, now=T0)
    with transaction(engine) as s:
        row = s.get(QueueItem, item)
        assert (row.status, row.open_key, row.outcome_reason) == ("lost", None, "budget")
        acts = s.scalars(select(QueueAction.action).order_by(QueueAction.id)).all()
    assert acts == ["claim", "attempt", "contacted", "qualified", "snoozed", "lost"]
    with pytest.raises(Conflict, match="lost"):
        claim_item(engine, item, staff["bob"], T0, zone=ZONE)


def test_sales_cannot_act_on_someone_elses_item(engine, staff):
    items = seed.prospects(engine, 1)
    claim_item(engine, items[0]["item_id"], staff["alice"], T0, zone=ZONE)
    with pytest.raises(Forbidden):
        release(engine, items[0]["item_id"], staff["bob"], T0)
    with pytest.raises(Forbidden):
        assign(engine, items[0]["item_id"], staff["bob"], staff["alice"], T0)
    # A manager may release anyone's item.
    release(engine, items[0]["item_id"], staff["mia"], T0)


@pytest.mark.skipif(not HAS_TIERS, reason="crm.routing.tiers (mark_paid) not installed yet")
def test_won_marks_the_contact_paid(engine, staff):
    items = seed.prospects(engine, 1)
    claim_item(engine, items[0]["item_id"], staff["alice"], T0, zone=ZONE)
    record_outcome(
        engine, items[0]["item_id"], staff["alice"], "won", reason="签了年卡", rules=RULES, now=T0
    )
    with transaction(engine) as s:
        assert s.get(Contact, items[0]["contact_id"]).tier == "paid"
        assert s.get(QueueItem, items[0]["item_id"]).status == "won"
        move = s.scalars(select(TierChange).where(TierChange.to_tier == "paid")).one()
        # The salesperson's note is a parameter of the catalog's sentence, not the sentence.
        assert (move.reason, move.reason_key, move.reason_params) == (
            "sales won: 签了年卡",
            "tier.why.won_note",
            {"note": "签了年卡"},
        )


def test_assign_and_reassign(engine, staff):
    items = seed.prospects(engine, 1)
    item = items[0]["item_id"]
    assign(engine, item, staff["alice"], staff["mia"], T0)
    record_outcome(engine, item, staff["alice"], "contacted", rules=RULES, now=T0)
    r = assign(engine, item, staff["bob"], staff["mia"], T0)
    assert r.from_user_id == staff["alice"]
    with transaction(engine) as s:
        row = s.get(QueueItem, item)
        assert (row.assignee_id, row.status) == (staff["bob"], "contacted")
        caps = claim_limit_status(s, staff["bob"], T0, zone=ZONE)
    assert caps.claimed_today == 1  # assignments count against the daily cap
    with pytest.raises(Forbidden):
        record_outcome(engine, item, staff["alice"], "qualified", rules=RULES, now=T0)


def test_assign_pool_round_robin_load_and_owner(engine, staff):
    seed.prospects(engine, 6)
    r = assign_pool(engine, "round_robin", T0, zone=ZONE)
    assert r.assigned == 6 and r.by_user == {"alice": 3, "bob": 3}
    seed.prospects(engine, 4)
    set_claim_limits(engine, "bob", holding=4)
    r = assign_pool(engine, "load", T0, zone=ZONE)
    assert r.by_user == {"alice": 4, "bob": 1} or r.by_user == {"bob": 1, "alice": 3}
    # Owner: prospects from a promoter's QR code go to that promoter's account.
    with transaction(engine) as s:
        for src in s.scalars(select(SourceInstance).where(SourceInstance.kind == "qr_signup")):
            src.promoter = "bob"
    seed.prospects(engine, 4)
    set_claim_limits(engine, "bob", holding=20)
    r = assign_pool(engine, "owner", T0, zone=ZONE)
    assert r.by_user == {"bob": 2}  # the two self-media prospects stay in the pool


def test_list_queue_filters_and_sorts(engine, staff):
    seed.prospects(engine, 6)
    claim_next(engine, staff["alice"], T0, zone=ZONE)
    with transaction(engine) as s:
        mine = list_queue(s, view="mine", user_id=staff["alice"], now=T0)
        pool = list_queue(s, view="pool", sort="score", descending=True, now=T0)
        qr = list_queue(s, view="pool", filters=QueueFilters(source_kind="qr_signup"), now=T0)
        grp = list_queue(
            s, view="pool", filters=QueueFilters(group="意向群1", min_score=42), now=T0
        )
        paged = list_queue(s, view="pool", limit=2, offset=2, now=T0)
        with pytest.raises(InputError):
            list_queue(s, sort="score; DROP TABLE users")
    assert [i.name for i in mine.items] == ["客户0"]
    assert [i.score for i in pool.items] == [45, 44, 43, 42, 41]
    assert {i.source_kind for i in qr.items} == {"qr_signup"}
    assert [i.name for i in grp.items] == ["客户2", "客户4"]
    assert len(paged.items) == 2 and paged.has_next


def test_many_claimers_never_share_an_item(pg_url):
    eng = make_engine(pg_url, pool_size=20, max_overflow=0)
    try:
        seed.bulk_pool(eng, 300)
        ids = [add_user(eng, f"s{i}", role="sales", password=seed.PASSWORD).id for i in range(16)]
        for i in range(16):
            set_claim_limits(eng, f"s{i}", claims=1000, holding=1000)
        got: list[int] = []
        lock = threading.Lock()
        errors: list[BaseException] = []

        def worker(uid: int) -> None:
            try:
                while True:
                    r = claim_next(eng, uid, T0, zone=ZONE)
                    if r is None:
                        return
                    with lock:
                        got.append(r.item_id)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(u,)) for u in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        dupes = [i for i, n in Counter(got).items() if n > 1]
        assert dupes == [] and len(got) == 300
        with transaction(eng) as s:
            claims = s.scalar(
                select(func.count()).select_from(QueueAction).where(QueueAction.action == "claim")
            )
        assert claims == 300
    finally:
        eng.dispose()


def test_two_people_claiming_the_same_item_one_conflict(pg_url):
    eng = make_engine(pg_url, pool_size=10)
    try:
        seed.bulk_pool(eng, 5)
        users = [add_user(eng, f"u{i}", role="sales", password=seed.PASSWORD).id for i in range(8)]
        with transaction(eng) as s:
            target = s.scalar(select(QueueItem.id).order_by(QueueItem.id).limit(1))
        barrier = threading.Barrier(len(users))
        results: list[str] = []

        def worker(uid: int) -> None:
            barrier.wait()
            try:
                claim_item(eng, target, uid, T0, zone=ZONE)
                results.append("won")
            except Conflict as exc:
                assert "already claimed" in str(exc)
                results.append("conflict")

        threads = [threading.Thread(target=worker, args=(u,)) for u in users]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["conflict"] * 7 + ["won"]
    finally:
        eng.dispose()


def test_a_claim_sweeps_other_run_out_leases_on_its_way(engine, staff):
    # Items 0 and 1 were claimed and their leases ran out; 2 and 3 wait in the pool.
    items = [i["item_id"] for i in seed.prospects(engine, 4)]
    for item in items[:2]:
        claim_item(engine, item, staff["alice"], T0, zone=ZONE)
    later = T0 + DEFAULT_LEASE + timedelta(minutes=1)
    got = claim_next(engine, staff["bob"], later, zone=ZONE)
    assert got.item_id == items[0]  # the run-out item first in claim order
    with transaction(engine) as s:
        rows = s.execute(select(QueueItem.id, QueueItem.status, QueueItem.assignee_id)).all()
        acts = s.execute(
            select(QueueAction.item_id, QueueAction.action).order_by(QueueAction.id)
        ).all()
        audited = Counter(s.scalars(select(AuditEntry.action)).all())
    state = {i: (st, who) for i, st, who in rows}
    assert state[items[0]] == ("claimed", staff["bob"])
    assert state[items[1]] == ("pool", None)
    assert acts[2:] == [(items[0], "expired"), (items[1], "expired"), (items[0], "claim")]
    assert audited["queue.expired"] == 2 and audited["queue.claim"] == 3


def test_a_contact_known_only_by_a_handle_is_listed_by_its_handle(engine, staff):
    from crm.models import Identity

    items = seed.prospects(engine, 2)
    nameless = items[0]["contact_id"]
    with transaction(engine) as s:
        s.execute(update(Contact).where(Contact.id == nameless).values(display_name=None))
        s.add(Identity(contact_id=nameless, kind="platform_handle", value="xiaohongshu:yuedu"))
    with transaction(engine) as s:
        names = {i.contact_id: i.name for i in list_queue(s, view="pool", now=T0).items}
    assert names[nameless] == "xiaohongshu:yuedu"  # never its phone number
    assert names[items[1]["contact_id"]]  # a named contact keeps its name
