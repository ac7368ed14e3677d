"""The follow-up flows under a Prefect test server: plan then dispatch, artifacts published."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm.outreach.campaign_file import load_campaigns
from tests.helpers.followups import make_contacts

CAMPAIGN = """
[[campaign]]
name = "welcome-new"
anchor = "tier_entered"
audience = { tiers = ["open"] }
max_late = "3650d"
steps = [{ name = "hi", offset = "0m", channel = "file", template = "welcome" }]
"""


def test_run_form_offers_the_defined_campaigns(tmp_path, monkeypatch) -> None:
    (tmp_path / "c.toml").write_text(CAMPAIGN, "utf-8")
    from deployments.serve import build_deployments

    bundled = next(d for d in build_deployments() if d.name == "plan-campaign")
    field = bundled._parameter_openapi_schema.properties["campaign"]
    assert field["enum"] == sorted(load_campaigns())
    # An operator's own campaigns file is what the form offers once it is configured.
    monkeypatch.setenv("QUNFLOW_CAMPAIGNS_PATH", str(tmp_path / "c.toml"))
    own = next(d for d in build_deployments() if d.name == "plan-campaign")
    assert own._parameter_openapi_schema.properties["campaign"]["enum"] == ["welcome-new"]


def test_plan_and_dispatch_flows(prefect_harness, engine, db_url, tmp_path, monkeypatch) -> None:
    (tmp_path / "c.toml").write_text(CAMPAIGN, "utf-8")
    monkeypatch.setenv("QUNFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("QUNFLOW_CAMPAIGNS_PATH", str(tmp_path / "c.toml"))
    monkeypatch.setenv("QUNFLOW_DATA_DIR", str(tmp_path / "data"))
    from flows import followups, runtime

    runtime.settings.cache_clear()
    make_contacts(engine, 3, entered=datetime.now(UTC) - timedelta(minutes=5))
    report = followups.plan_campaign_flow(campaign="welcome-new")
    assert report["planned"] == 3
    result = followups.dispatch_flow(limit=2)
    assert result["sent"] == 3
    assert (tmp_path / "data" / "outbox.jsonl").read_text().count("idempotency_key") == 3
    runtime.settings.cache_clear()


WECOM_CAMPAIGN = """
[[campaign]]
name = "wecom-hello"
anchor = "tier_entered"
audience = { tiers = ["open"] }
max_late = "3650d"

[[campaign.steps]]
name = "hi"
offset = "0m"
channel = "wecom"
template = "welcome"
account = "zhangsan"
"""


def test_dispatch_flow_reads_confirmations_and_defers_status_3_by_the_limit_set(
    prefect_harness, engine, db_url, tmp_path, monkeypatch
) -> None:
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from crm.core.db import transaction
    from crm.models import OutboxMessage
    from crm.outreach.wecom_limits import next_window
    from tests.fakes.wecom_msg_server import wecom_msg_server
    from tests.helpers.followups import make_account

    (tmp_path / "c.toml").write_text(WECOM_CAMPAIGN, "utf-8")
    with wecom_msg_server() as (base, state):
        for key, value in {
            "QUNFLOW_DATABASE_URL": db_url,
            "QUNFLOW_CAMPAIGNS_PATH": str(tmp_path / "c.toml"),
            "QUNFLOW_DATA_DIR": str(tmp_path / "data"),
            "QUNFLOW_WECOM_CORP_ID": state.corp_id,
            "QUNFLOW_WECOM_SECRET": state.secret,
            "QUNFLOW_WECOM_BASE_URL": base,
            "QUNFLOW_WECOM_MASS_PER": "week",
        }.items():
            monkeypatch.setenv(key, value)
        from flows import followups, runtime

        runtime.settings.cache_clear()
        ids = make_contacts(engine, 2, entered=datetime.now(UTC) - timedelta(minutes=5))
        make_account(engine, "zhangsan", "wecom")
        assert followups.plan_campaign_flow(campaign="wecom-hello")["planned"] == 2
        first = followups.dispatch_flow(limit=10)
        assert first["awaiting_confirmation"] == 2 and first["confirmations"] == {}
        state.limit_reached.add(f"wm{ids[0]}")  # already got this week's mass message
        for task in list(state.tasks.values()):
            state.confirm(task["msgid"])
        second = followups.dispatch_flow(limit=10)
        runtime.settings.cache_clear()
    assert second["confirmations"] == {"sent": 1, "deferred": 1}
    assert second["awaiting_confirmation"] == 0  # the deferred row waits for next week
    with transaction(engine) as s:
        by = {r.contact_id: r for r in s.scalars(select(OutboxMessage))}
    assert by[ids[1]].state == "sent"
    deferred = by[ids[0]]
    assert deferred.state == "deferred"
    assert deferred.reason.startswith("wecom_mass_limit: wecom.contact.mass_message.week")
    week = next_window(datetime.now(UTC), ZoneInfo("Asia/Shanghai"), "week")
    assert deferred.due_at == week
