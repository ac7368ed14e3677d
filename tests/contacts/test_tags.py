"""Contact tags: cleaning, idempotent tagging through the CLI, lists, campaigns and erasure."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.compliance.privacy import erase_contact
from crm.contacts.queries import contact_detail
from crm.contacts.tag_text import clean_tag, split_tags
from crm.contacts.tags import tag_contacts
from crm.core.db import transaction
from crm.core.errors import InputError
from crm.intake.merge import merge_contacts
from crm.models import Contact, ContactTag
from crm.outreach.planning import plan_campaign
from tests.helpers.followups import make_contacts, settings_for

QUNFLOW = str(Path(sys.executable).with_name("qunflow"))


def qf(env, *args: str) -> dict:
    proc = subprocess.run(
        [QUNFLOW, *args, "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_tags_are_cleaned_and_split() -> None:
    assert clean_tag("  ＶＩＰ\u200b ") == "VIP"  # full-width and invisible characters
    assert clean_tag("老  客户") == "老 客户"
    assert split_tags("高意向, 宝妈、VIP，高意向；") == ["高意向", "宝妈", "VIP"]
    with pytest.raises(InputError, match="longer than 40"):
        clean_tag("长" * 41)
    with pytest.raises(InputError, match="empty"):
        clean_tag(" \u3000 ")
    with pytest.raises(InputError, match="separator"):
        clean_tag("a,b")


def test_tagging_through_the_cli(engine, cli_env) -> None:
    a, b, c = make_contacts(engine, 3)
    done = qf(cli_env, "contacts", "tag", str(a), str(b), "--tags", "高意向、宝妈")
    assert done["added"] == 4 and done["tags"] == ["高意向", "宝妈"]
    assert qf(cli_env, "contacts", "tag", str(a), "--tags", "高意向")["added"] == 0
    listed = qf(cli_env, "contacts", "list", "--tag", "宝妈")
    assert {i["id"] for i in listed["items"]} == {a, b}
    assert qf(cli_env, "contacts", "show", str(a))["tags"] == ["宝妈", "高意向"]
    assert qf(cli_env, "contacts", "tags")["tags"] == [
        {"tag": "宝妈", "contacts": 2},
        {"tag": "高意向", "contacts": 2},
    ]
    # a merged contact's id reaches the survivor
    with transaction(engine) as s:
        s.get(Contact, c).merged_into_id = b
        s.get(Contact, c).status = "merged"
    qf(cli_env, "contacts", "tag", str(c), "--tags", "VIP")
    assert qf(cli_env, "contacts", "show", str(b))["tags"] == ["VIP", "宝妈", "高意向"]
    removed = qf(cli_env, "contacts", "tag", str(b), "--tags", "宝妈,VIP", "--remove")
    assert removed["removed"] == 2
    assert qf(cli_env, "contacts", "show", str(b))["tags"] == ["高意向"]

    bad = subprocess.run(
        [QUNFLOW, "contacts", "tag", str(a), "--tags", "长" * 41],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "longer than 40" in bad.stderr and "Traceback" not in bad.stderr


CAMPAIGN = """
[[campaign]]
name = "vip-hello"
anchor = "tier_entered"
audience = { tiers = ["open"], tags = ["ＶＩＰ"] }
max_late = "30d"
steps = [{ name = "hi", offset = "0m", channel = "file", template = "welcome" }]
"""


def test_campaign_audience_by_tag_and_erasure_drops_tags(engine, cli_env, tmp_path) -> None:
    st = settings_for(tmp_path, CAMPAIGN)
    vip, _untagged = make_contacts(engine, 2)
    qf(cli_env, "contacts", "tag", str(vip), "--tags", "VIP")
    report = plan_campaign(
        engine, "vip-hello", now=datetime(2026, 3, 2, 3, 0, tzinfo=UTC), settings=st
    )
    assert report.audience == 1 and report.planned == 1
    assert erase_contact(engine, vip, actor="dpo")["tags"] == 1
    assert qf(cli_env, "contacts", "tags")["tags"] == []


def test_a_merge_moves_tags_to_the_survivor(engine) -> None:
    older, newer = make_contacts(engine, 2)
    tag_contacts(engine, [older], ["宝妈", "VIP"], actor="ops")
    tag_contacts(engine, [newer], ["VIP", "高意向"], actor="ops")
    with transaction(engine) as s:
        merge_contacts(s, [(newer, older)], now=datetime.now(UTC), actor="test")
    with transaction(engine) as s:
        assert contact_detail(s, older)["tags"] == ["VIP", "宝妈", "高意向"]
        assert contact_detail(s, newer)["tags"] == ["VIP", "宝妈", "高意向"]  # follows the merge
        assert s.scalar(select(func.count()).select_from(ContactTag)) == 3  # none left behind
