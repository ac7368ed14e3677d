"""PostgreSQL: many workers against small caps, and workers killed with SIGKILL mid-run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from crm.core.db import make_engine, transaction
from crm.models import CapUsage, OutboxAttempt, OutboxMessage
from crm.outreach.channels.webhook import WebhookChannel
from crm.outreach.dispatch import dispatch
from crm.outreach.planning import plan_campaign
from tests.fakes.webhook_receiver import webhook_receiver
from tests.helpers.followups import make_account, make_contacts, settings_for

CAMPAIGN = """
[[campaign]]
name = "hello"
anchor = "tier_entered"
audience = { tiers = ["open"] }
max_late = "3650d"
steps = [{ name = "hi", offset = "0m", channel = "webhook", template = "welcome" }]
"""


def test_many_workers_never_exceed_caps_or_send_twice(pg_url, tmp_path) -> None:
    engine = make_engine(pg_url, pool_size=20)
    st = settings_for(tmp_path, CAMPAIGN)
    accounts = [make_account(engine, f"hook{i}", "webhook", message=4) for i in range(12)]
    make_contacts(engine, 240)
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    assert plan_campaign(engine, "hello", now=now, settings=st).planned == 240
    with webhook_receiver() as (url, got):
        results = []

        def run() -> None:
            ch = WebhookChannel(url, st.webhook_secret, client=httpx.Client())
            results.append(
                dispatch(engine, workers=4, now=now, channels={"webhook": ch}, settings=st, batch=7)
            )

        threads = [threading.Thread(target=run) for _ in range(3)]  # 12 workers in all
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with transaction(engine) as s:
        sent = s.execute(
            select(OutboxMessage.account_id, func.count())
            .where(OutboxMessage.state == "sent")
            .group_by(OutboxMessage.account_id)
        ).all()
        usage = list(s.scalars(select(CapUsage)))
        states = dict(
            s.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all()
        )
    assert {a for a, _ in sent} == set(accounts)
    assert all(n == 4 for _, n in sent)  # each account used its cap, never more
    assert all(u.used <= u.cap for u in usage)
    assert states == {"sent": 48, "deferred": 192}
    assert max(got.posts.values()) == 1 and len(got.accepted) == 48
    assert sum(r.sent for r in results) == 48
    engine.dispose()


def test_killed_workers_never_send_twice(pg_url, tmp_path) -> None:
    engine = make_engine(pg_url)
    st = settings_for(tmp_path, CAMPAIGN)
    make_contacts(engine, 150, entered=datetime(2026, 3, 2, 3, 0, tzinfo=UTC))
    assert plan_campaign(engine, "hello", now=datetime(2026, 3, 2, 3, 0, tzinfo=UTC),
                         settings=st).planned == 150  # fmt: skip
    rng = random.Random(7)
    with webhook_receiver() as (url, got):
        env = dict(os.environ, QUNFLOW_DATABASE_URL=pg_url, QUNFLOW_OUTBOUND_WEBHOOK_URL=url)
        env["QUNFLOW_DATA_DIR"] = str(tmp_path / "data")
        cmd = [".venv/bin/python", "-c", "from flows.cli import main; main()", "dispatch",
               "--until-idle", "--workers", "2", "--batch", "4", "--lease", "5",
               "--channel", "webhook"]  # fmt: skip
        kills = 0
        for _ in range(5):
            procs = [
                subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
                for _ in range(2)
            ]
            # Kill at a random point of progress, not after a fixed time: how fast workers
            # start and send depends on the machine.
            with got.lock:
                target = sum(got.posts.values()) + rng.randint(1, 12)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(p.poll() is None for p in procs):
                with got.lock:
                    if sum(got.posts.values()) >= target:
                        break
                time.sleep(0.005)
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    kills += 1
                p.wait()
        # after the leases run out, one clean run to idle picks up whatever was left
        ch = WebhookChannel(url, st.webhook_secret, client=httpx.Client())
        later = datetime.now(UTC) + timedelta(minutes=10)
        dispatch(engine, now=later, channels={"webhook": ch}, settings=st, workers=2)
    with transaction(engine) as s:
        final = s.execute(select(OutboxMessage.idempotency_key, OutboxMessage.state,
                                 OutboxMessage.reason)).all()  # fmt: skip
        attempts = s.scalar(select(func.count()).select_from(OutboxAttempt))
    sent = {k for k, state, _ in final if state == "sent"}
    assert kills > 0 and attempts >= 150
    assert all(state in ("sent", "failed", "skipped") for _, state, _ in final)
    assert all(reason for _, state, reason in final if state != "sent")
    assert sent == set(got.accepted)  # everything marked sent arrived, nothing else did
    assert max(got.posts.values()) == 1  # and no message was delivered twice
    engine.dispose()


def test_every_attempt_names_an_outbox_row_it_was_made_for(pg_url, tmp_path) -> None:
    # The attempt log has no foreign key: the mark writes attempts only for rows it claimed.
    engine = make_engine(pg_url, pool_size=12)
    st = settings_for(tmp_path, CAMPAIGN)
    for i in range(4):
        make_account(engine, f"hook{i}", "webhook", message=10)
    make_contacts(engine, 60)
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    assert plan_campaign(engine, "hello", now=now, settings=st).planned == 60
    with webhook_receiver() as (url, got):
        ch = WebhookChannel(url, st.webhook_secret, client=httpx.Client())
        report = dispatch(
            engine, workers=4, now=now, channels={"webhook": ch}, settings=st, batch=5
        )
    with transaction(engine) as s:
        orphans = s.scalar(
            select(func.count())
            .select_from(OutboxAttempt)
            .outerjoin(OutboxMessage, OutboxMessage.id == OutboxAttempt.outbox_id)
            .where(OutboxMessage.id.is_(None))
        )
        logged = s.execute(
            select(OutboxMessage.state, OutboxAttempt.outcome, func.count())
            .join(OutboxMessage, OutboxMessage.id == OutboxAttempt.outbox_id)
            .group_by(OutboxMessage.state, OutboxAttempt.outcome)
        ).all()
    assert report.sent == 40 and len(got.accepted) == 40
    assert orphans == 0
    assert logged == [("sent", "sent", 40)]  # one attempt per send; cap deferrals made none
    engine.dispose()
