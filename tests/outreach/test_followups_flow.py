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
