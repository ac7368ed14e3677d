"""A member list imported for a peer group links its contacts to the join; friend requests to
them are planned under friend_add with the purpose stated; the yield report follows them."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from crm.core.db import transaction
from crm.models import Contact, PeerGroup, SourceInstance, TierChange, Touch

MEMBERS = """群昵称,微信号,手机,入群时间
小雨,wx_xiaoyu01,13800000001,2026-03-01 09:00
阿杰,wx_ajie02,13800000002,2026-03-01 09:05
木木,wx_mumu03,13800000003,2026-03-01 09:10
"""


def test_harvest_requests_and_yield(engine: Engine, cli_env, tmp_path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [".venv/bin/qunflow", *args], env=cli_env, capture_output=True, text=True
        )
        return proc

    assert run("db", "upgrade").returncode == 0
    assert run("accounts", "add", "op1", "--platform", "wechat", "--limit",
               "friend_add=2").returncode == 0  # fmt: skip
    assert run("peers", "add", "宝妈交流群3群", "--community", "某母婴社区").returncode == 0
    assert run("peers", "add", "冷门群").returncode == 0
    members = tmp_path / "members.csv"
    members.write_text(MEMBERS, encoding="utf-8")
    early = run("ingest", "peer-group", str(members), "--peer", "宝妈交流群3群")
    assert early.returncode == 2 and "none of our accounts has joined it yet" in early.stderr
    assert run("peers", "joined", "宝妈交流群3群", "--account", "op1").returncode == 0
    got = run("ingest", "peer-group", str(members), "--peer", "宝妈交流群3群", "--json")
    assert json.loads(got.stdout)["new_contacts"] == 3, got.stderr
    with transaction(engine) as s:
        peer = s.scalars(select(PeerGroup).where(PeerGroup.name == "宝妈交流群3群")).one()
        src = s.get(SourceInstance, peer.source_instance_id)
        assert src is not None and src.operator_account_id == peer.account_id
        harvested = s.scalars(
            select(Touch.contact_id).where(Touch.source_instance_id == src.id)
        ).all()
    assert len(set(harvested)) == 3

    tasks = json.loads(run("peers", "plan", "--purpose", "亲子阅读营", "--json").stdout)
    requests = [t for t in tasks if t["kind"] == "friend_request"]
    assert len(requests) == 2  # friend_add=2 a day
    assert all("宝妈交流群3群" in t["text"] and "亲子阅读营" in t["text"] for t in requests)
    assert "op1" in requests[0]["text"]
    assert json.loads(run("peers", "plan", "--json").stdout) == tasks  # nothing more today
    ok = run("peers", "request", str(requests[0]["id"]), "--outcome", "accepted")
    assert ok.returncode == 0, ok.stderr
    assert run("peers", "request", str(requests[1]["id"]), "--outcome", "ignored").returncode == 0

    # The funnel moves two of them on (as `route` does): one to active, one to paid.
    now = datetime.now(UTC)
    with transaction(engine) as s:
        ids = sorted(s.scalars(select(Contact.id).where(Contact.id.in_(harvested))))
        s.add(TierChange(contact_id=ids[0], from_tier="open", to_tier="active", reason="t",
                         changed_at=now))  # fmt: skip
        s.add(TierChange(contact_id=ids[1], from_tier="open", to_tier="paid", reason="t",
                         changed_at=now))  # fmt: skip
    report = json.loads(run("peers", "yield", "--json").stdout)
    assert report[0] == {
        "peer_group": "宝妈交流群3群",
        "account": "op1",
        "joined_at": report[0]["joined_at"],
        "harvested": 3,
        "requests": 2,
        "accepted": 1,
        "active": 2,
        "prospect": 1,
        "paid": 1,
    }
    assert report[1]["peer_group"] == "冷门群" and report[1]["harvested"] == 0


def test_a_peer_list_quarantines_rows_naming_another_group(engine: Engine, tmp_path) -> None:
    from crm.core.vocabulary import Platform
    from crm.intake.peer_link import ingest_peer_list
    from crm.models import QuarantinedRow
    from crm.outreach.accounts import add_account
    from crm.outreach.peers import add_peer, mark_joined
    from tests.helpers.followups import settings_for

    add_account(engine, "op1", Platform.WECHAT)
    add_peer(engine, "宝妈交流群3群")
    mark_joined(engine, "宝妈交流群3群", settings=settings_for(tmp_path), account="op1")
    members = tmp_path / "members.csv"
    members.write_text(
        "群名称,群昵称,微信号\n"
        "宝妈交流群3群,小雨,wx_xiaoyu01\n"
        ",阿杰,wx_ajie02\n"
        "考研互助群,木木,wx_mumu03\n",
        encoding="utf-8",
    )
    report = ingest_peer_list(engine, members, "宝妈交流群3群")
    assert (report.new_contacts, report.quarantined) == (2, 1)
    with transaction(engine) as s:
        peer = s.scalars(select(PeerGroup).where(PeerGroup.name == "宝妈交流群3群")).one()
        linked = s.scalars(
            select(Touch.contact_id).where(Touch.source_instance_id == peer.source_instance_id)
        ).all()
        kinds = s.scalars(select(SourceInstance.key)).all()
        reasons = s.scalars(select(QuarantinedRow.reason)).all()
    assert len(set(linked)) == 2 and "考研互助群" not in kinds
    assert reasons == [
        "group 考研互助群 is not the peer group 宝妈交流群3群 (--peer): the list mixes groups"
    ]
