"""Several workers on the WeCom inbox at once: each callback is processed once, each
WelcomeCode used once."""

from __future__ import annotations

import threading
import time

import httpx
from sqlalchemy import func, select

from crm.core.db import transaction
from crm.core.settings import get_settings
from crm.intake.wecom import client_from_settings
from crm.intake.wecom_inbox import parse_xml, store_callback
from crm.intake.wecom_live import create_contact_way
from crm.models import Contact, OutboxMessage, WecomCallback
from crm.outreach.wecom_callbacks import LiveConfig, process_inbox
from tests.fakes.wecom_live_server import FakeLiveWeCom, event_xml
from tests.fakes.wecom_server import serve

N, WORKERS = 24, 4


def test_four_workers_process_each_callback_once(engine):
    fake = FakeLiveWeCom()
    with serve(fake) as (_, base):
        settings = get_settings(
            wecom_corp_id=fake.corp_id, wecom_secret=fake.secret, wecom_base_url=base
        )
        with httpx.Client() as http:
            way = create_contact_way(
                engine, client_from_settings(settings, http), staff=["zhangsan"], campaign="c"
            )
        for n in range(N):
            external = f"wmConc{n:012d}"
            fake.add_customer(external, f"客户{n}", "zhangsan", way.state)
            fields = {
                "CreateTime": int(time.time()) + n,
                "Event": "change_external_contact",
                "ChangeType": "add_external_contact",
                "UserID": "zhangsan",
                "ExternalUserID": external,
                "State": way.state,
                "WelcomeCode": fake.welcome_code(),
            }
            store_callback(engine, parse_xml(event_xml(fake.corp_id, fields).encode()), "")
        errors: list[BaseException] = []
        start = threading.Barrier(WORKERS)

        def work(i: int) -> None:
            try:
                with httpx.Client() as http:
                    client = client_from_settings(settings, http)
                    start.wait()
                    process_inbox(engine, client, LiveConfig(18.0), worker=f"w{i}")
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert len(fake.welcomes) == N
    assert fake.count("/externalcontact/send_welcome_msg") == N  # no code tried twice
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == N
        assert set(s.scalars(select(WecomCallback.status))) == {"processed"}
        assert s.scalar(select(func.count()).where(OutboxMessage.state == "sent")) == N
