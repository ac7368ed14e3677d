"""QR links: a group's link must be a real http(s) URL, and an invitation never carries a code
that expires before the contact could scan it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from crm.core.db import transaction
from crm.core.vocabulary import Tier
from crm.models import Identity, OutboxMessage
from crm.outreach.channels.local import FileChannel
from crm.outreach.dispatch import dispatch
from crm.routing.group_choice import qr_url_problem
from crm.routing.groups import rotate_qr
from crm.routing.placement import place_contacts
from crm.routing.rules import load_rules
from tests.entrypoints.test_cli_basics import run
from tests.helpers.followups import settings_for
from tests.helpers.route_fixtures import NOW, add_contact, add_group

PLACEHOLDER, NOT_HTTP = "error.routing.qr_url_placeholder", "error.routing.qr_url_not_http"


@pytest.mark.parametrize(
    ("url", "key", "params"),
    [
        ("https://weixin.qq.com/g/…", PLACEHOLDER, {"mark": "…"}),
        ("https://weixin.qq.com/g/...", PLACEHOLDER, {"mark": "..."}),
        ("https://weixin.qq.com/g/<code>", PLACEHOLDER, {"mark": "<"}),
        ("weixin.qq.com/g/abc", NOT_HTTP, {}),
        ("ftp://weixin.qq.com/g/abc", NOT_HTTP, {}),
        ("https://weixin.qq.com/g/a b", NOT_HTTP, {}),
        ("", NOT_HTTP, {}),
    ],
)
def test_qr_url_problems(url: str, key: str, params: dict[str, str]) -> None:
    problem = qr_url_problem(url)
    assert problem is not None and (problem.key, dict(problem.params)) == (key, params)


def test_a_real_link_passes() -> None:
    assert qr_url_problem("https://weixin.qq.com/g/AbC123_x-9") is None
    assert qr_url_problem("http://example.com/qr.png?g=1") is None


def test_groups_add_and_rotate_refuse_the_readme_placeholder(cli_env) -> None:
    run(["db", "upgrade"], cli_env)
    bad = run(
        ["groups", "add", "粉丝1群", "--tier", "open", "--qr-url", "https://weixin.qq.com/g/…"],
        cli_env,
        check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        "qunflow: --qr-url 'https://weixin.qq.com/g/…': still holds the placeholder '…':"
        " paste the group's real link"
    ]
    assert "粉丝1群" not in run(["groups", "list"], cli_env).stdout  # nothing was stored
    run(
        ["groups", "add", "粉丝1群", "--tier", "open", "--qr-url", "https://w.qq.com/g/a1"], cli_env
    )
    rot = run(["groups", "rotate-qr", "粉丝1群", "--url", "<paste here>"], cli_env, check=False)
    assert rot.returncode == 2 and len(rot.stderr.strip().splitlines()) == 1
    assert "--url '<paste here>'" in rot.stderr


def test_an_invitation_waits_for_a_fresh_code(engine: Engine, tmp_path) -> None:
    # Placed while the code had a week left; sent six days later it would expire in hours.
    add_group(engine, "open-1", "open")
    cid = add_contact(engine, "c0", wechat=False)
    with transaction(engine) as s:
        s.add(Identity(contact_id=cid, kind="wechat_id", value="wx_c0"))
    with transaction(engine) as s:
        place_contacts(s, {Tier.OPEN: [cid]}, load_rules(), now=NOW)
    later = NOW + timedelta(days=6, hours=12)
    out = tmp_path / "wechat.jsonl"
    st = settings_for(tmp_path)
    first = dispatch(engine, now=later, channels={"wechat": FileChannel(out)}, settings=st)
    assert first.sent == 0 and first.deferred == 1
    with transaction(engine) as s:
        row = s.scalars(select(OutboxMessage)).one()
        assert (row.state, row.reason) == ("deferred", "qr code expiring")
    rotate_qr(engine, "open-1", url="https://weixin.qq.com/g/fresh", now=later)
    again = dispatch(engine, now=later + timedelta(hours=1), channels={"wechat": FileChannel(out)},
                     settings=st)  # fmt: skip
    assert again.sent == 1
    assert "https://weixin.qq.com/g/fresh" in out.read_text()
