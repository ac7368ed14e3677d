"""The WeCom-groups and QR sign-up flows run end to end under a Prefect test server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from crm.core.db import transaction
from crm.intake.inbox import accept_signup
from crm.intake.qr import QrClaims
from crm.models import Contact, utcnow
from tests.fakes.wecom_server import FakeWeCom, serve


@pytest.mark.slow
def test_flows_pull_groups_and_resolve_signups(prefect_harness, db_url, engine, monkeypatch):
    from flows.ingest_remote import qr_signups_flow, wecom_groups_flow

    fake = FakeWeCom()
    fake.add_group(
        "wrA", "考研群", [{"userid": "wmX", "type": 2, "join_time": 1_700_000_000, "name": "小明"}]
    )
    claims = QrClaims("c1", "小王", "书店", "spring", utcnow() + timedelta(days=1))
    accept_signup(
        engine,
        claims.source_spec(),
        "n1",
        {"name": "李雷", "phone": "+8613900139000", "consent": True},
    )
    with serve(fake) as (srv, base):
        monkeypatch.setenv("QUNFLOW_WECOM_CORP_ID", srv.corp_id)
        monkeypatch.setenv("QUNFLOW_WECOM_SECRET", srv.secret)
        monkeypatch.setenv("QUNFLOW_WECOM_BASE_URL", base)
        groups = wecom_groups_flow(database_url=db_url)
    signups = qr_signups_flow(database_url=db_url)
    assert (groups["read"], groups["new_contacts"]) == (1, 1)
    assert (signups["read"], signups["new_contacts"]) == (1, 1)
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 2
