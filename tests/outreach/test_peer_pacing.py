"""Friend requests to harvested members are spaced by the account's friend_add pacing interval,
from its latest planned or done one, within its local day; also with two planners at once."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, select

from crm.core.db import transaction
from crm.core.vocabulary import PeerTaskState, Platform
from crm.intake.peer_link import ingest_peer_list
from crm.models import CapUsage, PeerTask
from crm.outreach.accounts import add_account
from crm.outreach.ledger import account_subject
from crm.outreach.limits import paced_slots
from crm.outreach.peer_plan import task_list
from crm.outreach.peer_requests import plan_friend_requests, record_request
from crm.outreach.peers import add_peer, mark_joined
from tests.helpers.followups import settings_for

EVENING = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 22:00 on 2 March in Shanghai
SH_MIDNIGHT = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 00:00 on 3 March in Shanghai
DAY = date(2026, 3, 2)


def _harvest(engine: Engine, tmp_path, members: int, **limits: int) -> int:
    acct = add_account(engine, "op-sh", Platform.WECHAT, timezone="Asia/Shanghai",
                       limits=limits, today=date(2026, 3, 1)).id  # fmt: skip
    add_peer(engine, "宝妈交流群", community="某社区")
    mark_joined(engine, "宝妈交流群", settings=settings_for(tmp_path), account="op-sh",
                now=EVENING - timedelta(days=1))  # fmt: skip
    rows = "".join(f"成员{i},wx_member{i:03d}\n" for i in range(members))
    path = tmp_path / "members.csv"
    path.write_text("群昵称,微信号\n" + rows, encoding="utf-8")
    ingest_peer_list(engine, path, "宝妈交流群", now=EVENING - timedelta(days=1))
    return acct


def _due(engine: Engine) -> list[datetime]:
    with transaction(engine) as s:
        return sorted(
            t.due_at for t in s.scalars(select(PeerTask).where(PeerTask.kind == "friend_request"))
        )


def _used(engine: Engine, acct: int, day: date) -> int:
    with transaction(engine) as s:
        row = s.get(CapUsage, (account_subject(acct), "friend_add", day))
        return row.used if row else 0


def test_paced_slots_start_after_the_last_one_and_stop_at_the_days_end() -> None:
    now, end = EVENING, SH_MIDNIGHT
    assert paced_slots(now, None, 1800, 9, end) == [now + timedelta(minutes=m)
                                                   for m in (0, 30, 60, 90)]  # fmt: skip
    late = now + timedelta(minutes=100)
    assert paced_slots(now, late, 600, 2, end) == [late + timedelta(minutes=10)]  # 00:00 is out
    assert paced_slots(now, None, 0, 3, end) == [now] * 3  # no pacing
    assert paced_slots(end, None, 60, 3, end) == []


def test_friend_requests_are_spaced_by_the_interval_within_the_local_day(
    engine: Engine, tmp_path
) -> None:
    st = settings_for(tmp_path)
    acct = _harvest(engine, tmp_path, members=8, friend_add=6, **{"pacing:friend_add": 1800})
    # 22:00 in Shanghai, a request every 30 minutes: 22:00, 22:30, 23:00, 23:30 fit today.
    assert plan_friend_requests(engine, settings=st, now=EVENING) == 4
    assert _due(engine) == [EVENING + timedelta(minutes=m) for m in (0, 30, 60, 90)]
    assert _used(engine, acct, DAY) == 4  # the two that did not fit gave their units back
    assert plan_friend_requests(engine, settings=st, now=EVENING + timedelta(minutes=5)) == 0

    with transaction(engine) as s:
        listed = task_list(s, settings=st, now=EVENING + timedelta(minutes=35))
    assert [t.due_at for t in listed] == _due(engine)  # by due time, in the account's zone
    assert listed[0].due_at is not None and listed[0].due_at.hour == 22
    assert listed[0].zone == "Asia/Shanghai"
    assert [t.due_now for t in listed] == [True, True, False, False]
    record_request(engine, listed[3].id, PeerTaskState.DONE, now=EVENING + timedelta(minutes=36))

    # After local midnight: the next one is due 30 minutes after 23:30, the day's last one.
    assert plan_friend_requests(engine, settings=st, now=SH_MIDNIGHT - timedelta(minutes=1)) == 0
    assert plan_friend_requests(engine, settings=st, now=SH_MIDNIGHT) == 4
    assert _due(engine)[4:] == [SH_MIDNIGHT + timedelta(minutes=m) for m in (0, 30, 60, 90)]


def test_two_planners_at_once_plan_distinct_paced_slots_within_the_cap(
    engine: Engine, tmp_path
) -> None:
    st = settings_for(tmp_path)
    acct = _harvest(engine, tmp_path, members=30, friend_add=5, **{"pacing:friend_add": 300})
    start = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def planner() -> None:
        try:
            start.wait()
            results.append(plan_friend_requests(engine, settings=st, now=EVENING))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=planner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(results) == 5 and _used(engine, acct, DAY) == 5
    due = _due(engine)
    assert all(b - a >= timedelta(seconds=300) for a, b in itertools.pairwise(due))
    # A later plan for more headroom starts after the last slot, not at the planner's clock.
    add_account(engine, "op-sh", Platform.WECHAT, limits={"friend_add": 7}, today=DAY)
    assert plan_friend_requests(engine, settings=st, now=EVENING) == 2
    assert _due(engine)[5:] == [due[-1] + timedelta(seconds=300 * k) for k in (1, 2)]
