"""Follow-ups: cadence times, planning, windows, opt-outs, templates, caps and real channels."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from crm.compliance.optout import apply_reply, apply_unsubscribe, is_stop_reply, unsubscribe_token
from crm.core.clock import fit_window, parse_duration
from crm.core.db import transaction
from crm.core.vocabulary import OutboxState
from crm.models import CapUsage, Community, OutboxAttempt, OutboxMessage
from crm.outreach.campaign_file import load_campaigns
from crm.outreach.channels.base import OutgoingMessage, SendResult
from crm.outreach.channels.local import FileChannel
from crm.outreach.channels.wecom import WecomChannel
from crm.outreach.confirmations import poll_confirmations
from crm.outreach.dispatch import dispatch
from crm.outreach.ledger import Ask, reserve, reserve_many
from crm.outreach.outbox import Outcome, claim, counts, mark
from crm.outreach.planning import plan_campaign
from crm.outreach.templates import TemplateError, render
from tests.fakes.wecom_msg_server import wecom_msg_server
from tests.helpers.followups import make_account, make_contacts, settings_for

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")

WEBHOOK_CAMPAIGN = """
[[campaign]]
name = "hello"
anchor = "tier_entered"
audience = { tiers = ["open"] }
max_late = "30d"
steps = [{ name = "hi", offset = "0m", channel = "%s", template = "%s" }]
"""


def rows(engine) -> list[OutboxMessage]:
    with transaction(engine) as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


# --- pure rules ----------------------------------------------------------------------------


def test_fit_window_crosses_midnight_in_the_contacts_zone() -> None:
    late = datetime(2026, 1, 1, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    got = fit_window(late, SH, window=(time(9), time(21, 30)))
    assert got.astimezone(SH) == datetime(2026, 1, 2, 9, 0, tzinfo=SH)
    quiet = fit_window(late, SH, quiet=(time(22, 30), time(7, 30)))
    assert quiet.astimezone(SH) == datetime(2026, 1, 2, 7, 30, tzinfo=SH)
    # the same instant is 10:00 in New York: inside the window, unchanged
    assert fit_window(late, NY, window=(time(9), time(21, 30))) == late
    assert parse_duration("-1d12h") == -timedelta(hours=36)


def test_stop_replies_and_bundled_templates_render() -> None:
    assert is_stop_reply(" 退订 ") and is_stop_reply("td") and not is_stop_reply("退订吗好的")
    ctx = {
        "contact": {"name": "小王"},
        "group": {"name": "AI交流群", "qr_code_url": "https://q/1"},
        "event": {"name": "直播", "local_time": "03-10 19:30", "location": None, "link": None},
        "params": {},
        "unsubscribe_url": None,
    }
    for name in ("welcome", "group_rules", "event_evening_before", "event_half_day_before",
                 "event_hour_before", "tier_invitation", "prospect_nudge", "paid_onboarding",
                 "reengagement", "optout_confirmation"):  # fmt: skip
        assert render(name, ctx).strip()
        assert render(name, ctx, locale="en").strip()
    assert "https://q/1" in render("tier_invitation", ctx)
    assert set(load_campaigns()) >= {"welcome-new", "group-rules", "event-notice"}


def test_template_error_names_template_and_line(tmp_path: Path) -> None:
    (tmp_path / "zh-CN").mkdir()
    (tmp_path / "zh-CN" / "broken.txt.j2").write_text("你好\n{{ contact.nmae }}\n", "utf-8")
    with pytest.raises(TemplateError) as err:
        render("broken", {"contact": {"name": "x"}}, operator_dir=tmp_path)
    assert err.value.template == "broken" and err.value.line == 2
    # the sandbox refuses to reach into Python internals
    (tmp_path / "zh-CN" / "evil.txt.j2").write_text("{{ ''.__class__.__mro__ }}", "utf-8")
    with pytest.raises(TemplateError):
        render("evil", {}, operator_dir=tmp_path)


# --- planning ------------------------------------------------------------------------------


def test_event_notices_land_at_local_times_across_zones(engine, tmp_path) -> None:
    st = settings_for(tmp_path)
    sh = make_contacts(engine, 1, tz="Asia/Shanghai")[0]
    ny = make_contacts(engine, 1, tz="America/New_York")[0]
    start = "2026-03-10T19:30:00+08:00"
    now = datetime(2026, 3, 5, tzinfo=UTC)
    params = {"event_start": start, "event_name": "直播课", "event_key": "live1"}
    report = plan_campaign(engine, "event-notice", now=now, params=params, settings=st)
    assert report.planned == 5 and report.excluded["too_late"] == 1
    due = {(r.contact_id, r.step.split("@")[0]): r.due_at for r in rows(engine)}
    assert due[(sh, "evening-before")].astimezone(SH) == datetime(2026, 3, 9, 20, 0, tzinfo=SH)
    assert due[(sh, "half-day-before")].astimezone(SH) == datetime(2026, 3, 10, 7, 30, tzinfo=SH)
    assert due[(sh, "hour-before")].astimezone(SH) == datetime(2026, 3, 10, 18, 30, tzinfo=SH)
    # 07:30 in New York (EDT): the evening before is 20:00 the previous local day
    assert due[(ny, "evening-before")].astimezone(NY) == datetime(2026, 3, 9, 20, 0, tzinfo=NY)
    assert due[(ny, "half-day-before")].astimezone(NY) == datetime(2026, 3, 9, 19, 30, tzinfo=NY)
    assert (ny, "hour-before") not in due  # 06:30 is in quiet hours; after them the event began
    again = plan_campaign(engine, "event-notice", now=now, params=params, settings=st)
    assert again.planned == 0 and again.already_planned == 5
    assert all(r.context["event"]["name"] == "直播课" for r in rows(engine))


def test_welcome_respects_send_window_and_dry_run(engine, tmp_path) -> None:
    st = settings_for(tmp_path)
    entered = datetime(2026, 3, 2, 13, 50, tzinfo=UTC)  # 21:50 in Shanghai
    make_contacts(engine, 3, entered=entered)
    now = entered + timedelta(minutes=1)
    dry = plan_campaign(engine, "welcome-new", now=now, dry_run=True, settings=st)
    assert dry.planned == 3 and rows(engine) == []
    plan_campaign(engine, "welcome-new", now=now, settings=st)
    assert {r.due_at.astimezone(SH) for r in rows(engine)} == {
        datetime(2026, 3, 3, 9, 0, tzinfo=SH)
    }


def test_no_channel_and_consent_are_not_planned(engine, tmp_path) -> None:
    st = settings_for(tmp_path)
    make_contacts(engine, 2, tier="prospect", wecom=False)
    make_contacts(engine, 2, tier="prospect", source_kind="qr_signup")
    ok = make_contacts(engine, 1, tier="prospect")
    now = datetime(2026, 3, 3, 4, 0, tzinfo=UTC)
    report = plan_campaign(engine, "prospect-nudge", now=now, settings=st)
    assert report.excluded["no_channel"] == 4 and report.excluded["no_consent"] == 4
    assert {r.contact_id for r in rows(engine)} == set(ok)


# --- dispatch ------------------------------------------------------------------------------


def _plan_hello(engine, tmp_path, channel="file", template="welcome", n=3, **kw):
    st = settings_for(tmp_path, WEBHOOK_CAMPAIGN % (channel, template), **kw)
    ids = make_contacts(engine, n)
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    plan_campaign(engine, "hello", now=now, settings=st)
    return st, ids, now


def test_opt_out_after_planning_stops_messages(engine, tmp_path) -> None:
    st, ids, now = _plan_hello(engine, tmp_path)
    assert apply_reply(engine, ids[0], "退订", channel="file", now=now)
    token = unsubscribe_token(ids[1], None, settings=st)
    assert apply_unsubscribe(engine, token, settings=st).skipped == 1
    out = tmp_path / "out.jsonl"
    result = dispatch(engine, now=now, channels={"file": FileChannel(out)}, settings=st)
    assert result.sent == 1
    by = {r.contact_id: r for r in rows(engine)}
    assert by[ids[0]].state == by[ids[1]].state == "skipped"
    assert by[ids[0]].reason == "opted_out"
    sent = [json.loads(line) for line in out.read_text().splitlines()]
    assert [m["contact_id"] for m in sent] == [ids[2]]
    # planning again does not bring them back
    plan_campaign(engine, "hello", now=now, settings=st)
    assert [r.state for r in rows(engine)].count("planned") == 0


def test_opt_out_is_rechecked_at_dispatch(engine, tmp_path) -> None:
    st, ids, now = _plan_hello(engine, tmp_path, n=1)
    from crm.models import Consent

    with transaction(engine) as s:  # an opt-out recorded by another path, rows untouched
        s.add(Consent(contact_id=ids[0], kind="opt_out", channel=None, source="import"))
    dispatch(engine, now=now, channels={"file": FileChannel(tmp_path / "o.jsonl")}, settings=st)
    assert rows(engine)[0].state == "skipped" and rows(engine)[0].reason == "opted_out"


def test_template_error_skips_with_reason(engine, tmp_path) -> None:
    tpl = tmp_path / "tpl" / "zh-CN"
    tpl.mkdir(parents=True)
    (tpl / "oops.txt.j2").write_text("hi\n{{ contact.nmae }}", "utf-8")
    st, _, now = _plan_hello(engine, tmp_path, template="oops", n=1, templates_dir=tpl.parent)
    out = tmp_path / "o.jsonl"
    dispatch(engine, now=now, channels={"file": FileChannel(out)}, settings=st)
    row = rows(engine)[0]
    assert row.state == "skipped" and "template oops:2" in (row.reason or "")
    assert not out.exists()


def test_send_window_defers_at_dispatch(engine, tmp_path) -> None:
    st = settings_for(tmp_path)
    entered = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    make_contacts(engine, 1, entered=entered)
    plan_campaign(engine, "welcome-new", now=entered, settings=st)
    late = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 23:00: outside 09:00-21:30
    d = dispatch(engine, now=late, channels={"wecom": FileChannel(tmp_path / "o")}, settings=st)
    row = rows(engine)[0]
    assert d.deferred == 1 and row.state == "deferred"
    assert row.due_at.astimezone(SH) == datetime(2026, 3, 3, 9, 0, tzinfo=SH)


def test_invitations_spend_the_contacts_joins_not_the_owners(engine, tmp_path) -> None:
    # The owner invites 15 contacts into 12 groups each (180 invitations in one day, default
    # limits): each contact scans at most 10 codes a day; the owner joins nothing.
    st = settings_for(tmp_path)
    acct = make_account(engine, "wx-op", "wechat")
    cids = make_contacts(engine, 15)
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    with transaction(engine) as s:
        groups = [Community(name=f"群{i}", tier="open", qr_code_url=f"https://qr/{i}")
                  for i in range(12)]  # fmt: skip
        s.add_all(groups)
        s.flush()
        for cid in cids:
            for g in groups:
                s.add(
                    OutboxMessage(
                        campaign="placement", step=f"join-{g.id}", contact_id=cid,
                        channel="file", template="tier_invitation", account_id=acct,
                        community_id=g.id, action="group_invite", due_at=now,
                        idempotency_key=f"join-{cid}-{g.id}", context={"tz": "Asia/Shanghai"},
                    )
                )  # fmt: skip
    out = tmp_path / "o.jsonl"
    result = dispatch(engine, now=now, channels={"file": FileChannel(out)}, settings=st, batch=7)
    assert result.sent == 150 and result.deferred == 30
    deferred = [r for r in rows(engine) if r.state == "deferred"]
    assert {r.due_at for r in deferred} == {datetime(2026, 3, 2, 16, 0, tzinfo=UTC)}
    assert "https://qr/0" in out.read_text()
    with transaction(engine) as s:
        usage = {(u.subject, u.action): u.used for u in s.scalars(select(CapUsage))}
    assert {usage[(f"contact:{cid}", "group_join")] for cid in cids} == {10}
    assert not [k for k in usage if k[0] == f"account:{acct}"]
    # the next local day they go
    nxt = dispatch(engine, now=datetime(2026, 3, 2, 16, 0, tzinfo=UTC),
                   channels={"file": FileChannel(out)}, settings=st)  # fmt: skip
    assert nxt.sent == 30


def test_an_invitation_limit_set_for_the_account_binds_as_its_own_action(engine, tmp_path) -> None:
    st = settings_for(tmp_path)
    acct = make_account(engine, "wx-op", "wechat", group_invite=3)
    cids = make_contacts(engine, 5)
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    with transaction(engine) as s:
        g = Community(name="群", tier="open", qr_code_url="https://qr/1")
        s.add(g)
        s.flush()
        for cid in cids:
            s.add(
                OutboxMessage(
                    campaign="placement", step="open", contact_id=cid, channel="file",
                    template="tier_invitation", account_id=acct, community_id=g.id,
                    action="group_invite", due_at=now, idempotency_key=f"join-{cid}",
                )
            )  # fmt: skip
    result = dispatch(engine, now=now, channels={"file": FileChannel(tmp_path / "o")}, settings=st)
    assert result.sent == 3 and result.deferred == 2
    with transaction(engine) as s:
        usage = {(u.subject, u.action): u.used for u in s.scalars(select(CapUsage))}
    assert usage[(f"account:{acct}", "group_invite")] == 3
    assert (f"account:{acct}", "group_join") not in usage


class _Killed(BaseException):
    """Stands for the process being killed in the middle of a batch."""


class _DiesOnSend(FileChannel):
    def send(self, message: OutgoingMessage) -> SendResult:
        raise _Killed


def test_rows_over_the_cap_are_settled_before_a_batch_can_die(engine, tmp_path) -> None:
    # A batch that dies after its claim committed leaves its rows claimed and marked as possibly
    # at the provider; rows the cap deferred must not be among them, or the next run would
    # look them up, not find them, and send them with no reservation.
    st = settings_for(tmp_path, WEBHOOK_CAMPAIGN % ("file", "welcome"))
    acct = make_account(engine, "op", "wechat", message=2)
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    with transaction(engine) as s:
        for i, cid in enumerate(make_contacts(engine, 5)):
            s.add(
                OutboxMessage(campaign="c", step="s", contact_id=cid, channel="file",
                              template="welcome", account_id=acct, due_at=now,
                              idempotency_key=f"k{i}", context={"tz": "Asia/Shanghai"})
            )  # fmt: skip
    out = tmp_path / "o.jsonl"
    with pytest.raises(_Killed):
        dispatch(engine, now=now, channels={"file": _DiesOnSend(out)}, settings=st, batch=10)
    after_lease = now + timedelta(minutes=10)
    result = dispatch(engine, now=after_lease, channels={"file": FileChannel(out)}, settings=st)
    assert result.sent == 2
    assert len(out.read_text().splitlines()) == 2
    assert {r.state for r in rows(engine)} == {"sent", "deferred"}
    with transaction(engine) as s:
        assert s.scalar(select(CapUsage.used).where(CapUsage.subject == f"account:{acct}")) == 2


def test_reserve_is_conditional(engine) -> None:
    day = date(2026, 3, 2)
    with transaction(engine) as s:
        got = [reserve(s, "account:1", "message", cap=3, day=day) for _ in range(5)]
        assert got == [True, True, True, False, False]
        many = reserve_many(s, [Ask("account:2", "message", day, 5, 4)])
        assert many[("account:2", "message", day)] == 4
        assert (
            reserve_many(s, [Ask("account:2", "message", day, 5, 4)])[("account:2", "message", day)]
            == 0
        )
        now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
        assert reserve(s, "account:3", "friend_add", cap=9, day=day, now=now, min_interval=60)
        assert not reserve(s, "account:3", "friend_add", cap=9, day=day, now=now, min_interval=60)
        later = now + timedelta(seconds=200)
        assert reserve(s, "account:3", "friend_add", cap=9, day=day, now=later, min_interval=60)


def test_reserve_many_grants_each_key_what_is_left(engine) -> None:
    day, next_day = date(2026, 3, 2), date(2026, 3, 3)
    with transaction(engine) as s:
        reserve_many(
            s, [Ask("account:7", "message", day, 3, 3), Ask("account:8", "message", day, 1, 5)]
        )
        got = reserve_many(
            s,
            [
                Ask("account:8", "message", day, 10, 5),  # 4 left
                Ask("account:7", "message", day, 2, 3),  # full
                Ask("account:9", "group_join", day, 2, 10),  # new key
                Ask("account:7", "message", next_day, 2, 3),  # another local day
                Ask("account:9", "message", day, 1, 0),  # no cap: nothing
            ],
        )
        assert got == {
            ("account:8", "message", day): 4,
            ("account:7", "message", day): 0,
            ("account:9", "group_join", day): 2,
            ("account:7", "message", next_day): 2,
            ("account:9", "message", day): 0,
        }
        used = {(u.subject, u.day): (u.used, u.cap) for u in s.scalars(select(CapUsage))}
    assert used[("account:8", day)] == (5, 5) and used[("account:7", day)] == (3, 3)


def test_mark_records_outcomes_and_attempt_details(engine) -> None:
    # PostgreSQL derives reasons and attempt details in SQL, SQLite in Python: the same rows.
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    later = now + timedelta(hours=2)
    contacts = make_contacts(engine, 6)
    with transaction(engine) as s:
        for i, cid in enumerate(contacts):
            s.add(
                OutboxMessage(campaign="c", step="s", contact_id=cid, channel="null",
                              template="welcome", due_at=now, idempotency_key=f"k{i}")
            )  # fmt: skip
    with transaction(engine, immediate=True) as s:
        claimed = claim(s, worker="w", limit=10, lease=timedelta(minutes=5), now=now)
    assert len(claimed) == 6 and all(c.uncertain is False for c in claimed)
    a, b, c, d, e, f = claimed
    long = "拒" * 1200
    outcomes = [
        Outcome(a.id, a.token, OutboxState.SENT, provider_id="p-a", sent_at=now,
                rendered="你好", attempt="sent"),
        Outcome(b.id, b.token, OutboxState.DEFERRED, reason="cap reached", due_at=later),
        Outcome(c.id, c.token, OutboxState.FAILED, reason=long, rendered="x", attempt="refused"),
        Outcome(d.id, d.token, OutboxState.FAILED, reason="", provider_id="p-d",
                attempt="unknown"),
        Outcome(e.id, e.token, OutboxState.DEFERRED, reason="retry: 502", due_at=later,
                attempt="transient", keep_sending=True),
        Outcome(f.id, "another-claim", OutboxState.SENT, provider_id="p-f", sent_at=now,
                attempt="sent"),  # not this claim's row any more: left alone
    ]  # fmt: skip
    with transaction(engine) as s:
        mark(s, outcomes, worker="w", now=now)
    with transaction(engine) as s:
        got = {
            m.id: (m.state, m.reason, m.provider_message_id, m.due_at, m.sent_at, m.rendered,
                   m.sending_at is not None, m.claimed_by is None)
            for m in s.scalars(select(OutboxMessage))
        }  # fmt: skip
        logged = {
            t.outbox_id: (t.worker, t.outcome, t.detail, t.at)
            for t in s.scalars(select(OutboxAttempt))
        }
    assert got == {
        a.id: ("sent", None, "p-a", now, now, "你好", False, True),
        b.id: ("deferred", "cap reached", None, later, None, None, False, True),
        c.id: ("failed", long[:500], None, now, None, "x", False, True),
        d.id: ("failed", None, "p-d", now, None, None, False, True),
        e.id: ("deferred", "retry: 502", None, later, None, None, True, True),
        f.id: ("claimed", None, None, now, None, None, True, False),
    }
    assert (
        logged
        == {  # every attempt is history, the stale claim's one too
            a.id: ("w", "sent", "p-a", now),
            c.id: ("w", "refused", long[:1000], now),
            d.id: ("w", "unknown", "p-d", now),
            e.id: ("w", "transient", "retry: 502", now),
            f.id: ("w", "sent", "p-f", now),
        }
    )


# --- real channels -------------------------------------------------------------------------


def test_smtp_server_receives_rendered_text(engine, tmp_path) -> None:
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.mails: list[tuple[list[str], bytes]] = []

        async def handle_DATA(self, server, session, envelope):
            self.mails.append((list(envelope.rcpt_tos), envelope.content))
            return "250 OK"

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = Inbox()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        st, ids, now = _plan_hello(
            engine, tmp_path, channel="email", n=2,
            smtp_host="127.0.0.1", smtp_port=port,
        )  # fmt: skip
        result = dispatch(engine, now=now, settings=st, channels=None)
    finally:
        ctl.stop()
    assert result.sent == 2
    rcpts = sorted(r for m in inbox.mails for r in m[0])
    assert rcpts == sorted(f"c{i}@example.com" for i in ids)
    from email import message_from_bytes, policy

    mail = message_from_bytes(inbox.mails[0][1], policy=policy.default)
    assert "欢迎加入我们的社群" in mail.get_body().get_content()
    assert mail["Message-ID"].startswith("<qf-")


def test_wecom_server_receives_message_task_and_confirmation(engine, tmp_path) -> None:
    with wecom_msg_server() as (base, state):
        st, ids, now = _plan_hello(engine, tmp_path, channel="wecom", n=2)
        make_account(engine, "zhangsan", "wecom")
        with transaction(engine) as s:  # planned before the account existed: assign it
            for r in s.scalars(select(OutboxMessage)):
                r.account_id = 1
        ch = WecomChannel(base, state.corp_id, SecretStr(state.secret), client=httpx.Client())
        result = dispatch(engine, now=now, channels={"wecom": ch}, settings=st)
        assert result.awaiting_confirmation == 2
        assert {r.state for r in rows(engine)} == {"awaiting_confirmation"}
        tasks = list(state.tasks.values())
        assert {t["external_userid"][0] for t in tasks} == {f"wm{i}" for i in ids}
        assert all(t["sender"] == "zhangsan" and t["chat_type"] == "single" for t in tasks)
        assert "欢迎加入我们的社群" in tasks[0]["text"]["content"]
        assert poll_confirmations(engine, ch, now=now) == {"pending": 2}
        state.confirm(tasks[0]["msgid"])
        assert poll_confirmations(engine, ch, now=now) == {"sent": 1, "pending": 1}
        assert ch.join_qr(["wrOgAAA"], state="tier-active").startswith("https://")
        ch.close()


def test_wecom_status_3_defers_to_the_next_mass_message_window(engine, tmp_path) -> None:
    from zoneinfo import ZoneInfo

    from crm.outreach.wecom_limits import next_window

    with wecom_msg_server() as (base, state):
        st, ids, now = _plan_hello(engine, tmp_path, channel="wecom", n=2)
        make_account(engine, "zhangsan", "wecom")
        with transaction(engine) as s:
            for r in s.scalars(select(OutboxMessage)):
                r.account_id = 1
        ch = WecomChannel(base, state.corp_id, SecretStr(state.secret), client=httpx.Client())
        dispatch(engine, now=now, channels={"wecom": ch}, settings=st)
        state.limit_reached.add(f"wm{ids[0]}")
        for task in list(state.tasks.values()):
            state.confirm(task["msgid"])
        zone = ZoneInfo("Asia/Shanghai")
        assert poll_confirmations(engine, ch, now=now, mass_per="week", zone=zone) == {
            "sent": 1,
            "deferred": 1,
        }
        by_state = {r.state: r for r in rows(engine)}
        deferred = by_state["deferred"]
        assert deferred.reason.startswith("wecom_mass_limit: wecom.contact.mass_message.week")
        assert deferred.due_at == next_window(now, zone, "week") and deferred.due_at > now
        assert deferred.provider_message_id is None
        ch.close()


# --- CLI -----------------------------------------------------------------------------------


def test_cli_plans_and_dispatches(engine, cli_env, tmp_path) -> None:
    make_contacts(engine, 2, entered=datetime.now(UTC) - timedelta(hours=1))
    env = dict(cli_env, QUNFLOW_CAMPAIGNS_PATH=str(tmp_path / "c.toml"))
    (tmp_path / "c.toml").write_text(WEBHOOK_CAMPAIGN % ("file", "welcome"), "utf-8")
    run = lambda *a: subprocess.run(  # noqa: E731
        [".venv/bin/qunflow", *a], env=env, capture_output=True, text=True, check=False
    )
    planned = run("campaign", "run", "hello", "--json")
    assert json.loads(planned.stdout)["planned"] == 2, planned.stderr
    sent = run("dispatch", "--until-idle", "--channel", "file", "--json")
    assert json.loads(sent.stdout)["sent"] == 2, sent.stderr
    assert (
        run("accounts", "add", "a1", "--platform", "wecom", "--limit", "message=7").returncode == 0
    )
    caps = json.loads(run("caps", "--json").stdout)
    assert {"handle": "a1", "action": "message", "cap": 7}.items() <= caps[-1].items()
    # A misspelt action or zone is refused, not stored as a limit nothing ever checks.
    typo = run("accounts", "add", "a2", "--platform", "wecom", "--limit", "mesage=7")
    assert typo.returncode == 2 and "unknown action 'mesage'" in typo.stderr
    zone = run("accounts", "add", "a2", "--platform", "wecom", "--timezone", "Asia/Shangai")
    assert zone.returncode == 2 and "'Asia/Shangai': not an IANA time zone" in zone.stderr
    assert "a2" not in run("accounts", "list").stdout
    bad = run("campaign", "run", "nope")
    assert bad.returncode == 2 and "no campaign 'nope'" in bad.stderr
    with transaction(engine) as s:
        assert counts(s) == {"sent": 2}


TWO_STEPS = """
[[campaign]]
name = "hello"
anchor = "tier_entered"
audience = { tiers = ["open"] }
max_late = "30d"
steps = [
  { name = "hi", offset = "0m", channel = "file", template = "welcome" },
  { name = "later", offset = "2d", channel = "file", template = "welcome" },
]
"""


def test_dispatch_says_what_is_still_coming(engine, cli_env, tmp_path) -> None:
    entered = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    make_contacts(engine, 2, entered=entered)
    env = dict(cli_env, QUNFLOW_CAMPAIGNS_PATH=str(tmp_path / "c.toml"))
    (tmp_path / "c.toml").write_text(TWO_STEPS, "utf-8")
    run = lambda *a: subprocess.run(  # noqa: E731
        [".venv/bin/qunflow", *a], env=env, capture_output=True, text=True, check=False
    )
    assert json.loads(run("campaign", "run", "hello", "--json").stdout)["planned"] == 4
    doc = json.loads(run("dispatch", "--until-idle", "--channel", "file", "--json").stdout)
    assert (doc["sent"], doc["not_due"]) == (2, 2)
    assert datetime.fromisoformat(doc["next_due_at"]) == entered + timedelta(days=2)
    text = run("--utc", "dispatch", "--until-idle", "--channel", "file").stdout.splitlines()
    assert text[-1] == f"not due yet 2, next at {entered + timedelta(days=2):%Y-%m-%d %H:%M} UTC"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{{ 'a' * 10**9 }}", "repeating"),
        ("{{ [1] * 10**8 }}", "repeating"),
        ("{{ 2 ** 100000 }}", "power"),
        ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", "loops"),
        ("{% for i in range(9000) %}{{ 'long line of text' }}{% endfor %}", "longer than"),
    ],
)
def test_runaway_templates_stop_at_their_limits(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "zh-CN").mkdir()
    (tmp_path / "zh-CN" / "runaway.txt.j2").write_text(text, "utf-8")
    with pytest.raises(TemplateError) as err:
        render("runaway", {}, operator_dir=tmp_path)
    assert needle in str(err.value) and err.value.template == "runaway"
    # An ordinary loop and repetition within the limits still render.
    (tmp_path / "zh-CN" / "fine.txt.j2").write_text(
        "{% for i in range(3) %}{{ i }}{% endfor %}{{ '-' * 5 }}", "utf-8"
    )
    assert render("fine", {}, operator_dir=tmp_path) == "012-----"
