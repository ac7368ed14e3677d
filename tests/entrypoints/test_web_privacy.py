"""Personal data on a need-to-know basis: who sees a prospect's phone and WeChat id in full."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.core.db import transaction
from crm.core.settings import get_settings
from crm.models import AuditEntry, Contact, Identity
from crm.models import utcnow as now_utc
from flows.web.app import create_app
from tests.entrypoints.test_web import login
from tests.helpers import queue_seed as seed


@pytest.fixture
def app(engine):
    return create_app(get_settings(secret_key="test-secret-key-0123456789"), engine)


@pytest.fixture
def world(engine):
    staff = seed.users(engine)
    items = seed.prospects(engine, 3, now=now_utc())
    with transaction(engine) as s:
        s.add(Identity(contact_id=items[0]["contact_id"], kind="wechat_id", value="wx_zhang88"))
        loner = Contact(display_name="不在队列", tier="active")  # in no queue at all
        s.add(loner)
        s.flush()
        s.add(Identity(contact_id=loner.id, kind="phone", value="+8613912345678"))
        loner_id = loner.id
    phones = {}
    with transaction(engine) as s:
        for cid, value in s.execute(select(Identity.contact_id, Identity.value)):
            if value.startswith("+86"):
                phones[cid] = value
    return {"staff": staff, "items": items, "loner": loner_id, "phones": phones}


def _reveals(engine, actor: str) -> list[str]:
    with transaction(engine) as s:
        return list(
            s.scalars(
                select(AuditEntry.object_id)
                .where(AuditEntry.actor == actor, AuditEntry.action == "contact.reveal")
                .order_by(AuditEntry.id)
            )
        )


def test_sales_see_full_details_only_for_prospects_they_hold_or_may_claim(app, engine, world):
    alice, a_token = login(app, "alice")
    bob, b_token = login(app, "bob")
    held, pool, closing = world["items"]
    phone = world["phones"]
    bob.post(f"/queue/items/{held['item_id']}/claim", data={"csrf_token": b_token})

    # Bob's prospect: Alice gets masked values and a note saying why.
    page = alice.get(f"/prospects/{held['contact_id']}").text
    full = phone[held["contact_id"]]
    assert full not in page and "wx_zhang88" not in page
    assert f"{full[:6]}****{full[-4:]}" in page and "wx_***" in page
    assert 'id="details-masked"' in page
    # A contact in no queue: masked too.
    loner = alice.get(f"/prospects/{world['loner']}").text
    assert "+8613912345678" not in loner and "+86139****5678" in loner
    assert _reveals(engine, "alice") == []
    # In the pool she may claim from: in full, and the reveal is audited.
    page = alice.get(f"/prospects/{pool['contact_id']}").text
    assert phone[pool["contact_id"]] in page and 'id="details-masked"' not in page
    assert _reveals(engine, "alice") == [str(pool["contact_id"])]
    # The holder sees his in full.
    page = bob.get(f"/prospects/{held['contact_id']}").text
    assert full in page and "wx_zhang88" in page
    assert _reveals(engine, "bob") == [str(held["contact_id"])]
    # Once she closes one, she no longer needs its number.
    url = f"/queue/items/{closing['item_id']}"
    alice.post(f"{url}/claim", data={"csrf_token": a_token})
    assert phone[closing["contact_id"]] in alice.get(f"/prospects/{closing['contact_id']}").text
    alice.post(f"{url}/outcome", data={"csrf_token": a_token, "status": "lost", "reason": "x"})
    assert phone[closing["contact_id"]] not in alice.get(f"/prospects/{closing['contact_id']}").text


def test_managers_see_every_contact_and_every_view_and_export_is_audited(app, engine, world):
    mia, _ = login(app, "mia")
    page = mia.get(f"/prospects/{world['loner']}").text
    assert "+8613912345678" in page and 'id="details-masked"' not in page
    assert _reveals(engine, "mia") == [str(world["loner"])]
    root, _ = login(app, "root")
    assert root.get(f"/admin/contacts/{world['loner']}/export").status_code == 200
    with transaction(engine) as s:
        exports = s.execute(
            select(AuditEntry.actor, AuditEntry.object_id).where(
                AuditEntry.action == "contact.export"
            )
        ).all()
    assert [tuple(e) for e in exports] == [("root", str(world["loner"]))]
