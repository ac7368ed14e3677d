"""The WeCom customer-group adapter against a local server speaking Tencent's API."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from crm.intake.records import RawItem, RejectedRow
from crm.intake.wecom import (
    WeComApiError,
    WeComClient,
    WeComGroupsAdapter,
    WeComTransientError,
)
from tests.fakes.wecom_server import FakeWeCom, serve


def member(userid: str, *, kind: int = 2, join: int = 1_700_000_100, name: str = "王语嫣"):
    m = {
        "userid": userid,
        "type": kind,
        "join_time": join,
        "join_scene": 3,
        "invitor": {"userid": "staff1"},
        "group_nickname": f"昵称{userid[-2:]}",
        "name": name,
    }
    if kind == 2:
        m["unionid"] = f"union-{userid}"
    return m


@pytest.fixture
def wecom() -> Iterator[tuple[FakeWeCom, WeComClient]]:
    fake = FakeWeCom()
    for g in range(5):
        fake.add_group(
            f"wrChat{g:02d}",
            f"考研交流{g}群",
            [member("staff1", kind=1, name="客服")]
            + [member(f"wmExt{g}{i:02d}") for i in range(3)],
        )
    with serve(fake) as (srv, base), httpx.Client(timeout=5) as http:
        sleeps: list[float] = []
        client = WeComClient(
            srv.corp_id, SecretStr(srv.secret), base, http, backoff=(0.0, 0.0), sleep=sleeps.append
        )
        yield srv, client


def test_pages_through_every_group_and_yields_external_members_only(wecom):
    fake, client = wecom
    adapter = WeComGroupsAdapter(client, limit=2)
    pages = list(adapter.pages())
    assert [len(p.chat_ids) for p in pages] == [2, 2, 1]
    assert [p.next_cursor for p in pages] == ["c2", "c4", None]
    items = [i for p in pages for i in p.items]
    assert all(isinstance(i, RawItem) for i in items)
    assert len(items) == 15  # 3 external members × 5 groups; staff left out
    first = items[0]
    assert first.record_key == "wrChat00:wmExt000:1700000100"
    assert first.payload["wecom_external_userid"] == "wmExt000"
    assert first.payload["name"] == "王语嫣"
    assert first.payload["community"] == "考研交流0群"
    assert first.payload["occurred_at"].startswith("2023-11-14T")
    assert first.source is not None and first.source.key == "wecom-group:wrChat00"
    assert first.source.group_name == "考研交流0群"
    # Names were asked for, and one token served the whole pull.
    assert all(c.body.get("need_name") == 1 for c in fake.calls if c.path.endswith("/get"))
    assert fake.count("/gettoken") == 1


def test_resumes_from_a_stored_cursor(wecom):
    _fake, client = wecom
    pages = list(WeComGroupsAdapter(client, cursor="c4", limit=2).pages())
    assert [p.chat_ids for p in pages] == [["wrChat04"]]


def test_same_input_gives_same_record_keys(wecom):
    _fake, client = wecom
    once = [i.record_key for i in WeComGroupsAdapter(client).items()]
    again = [i.record_key for i in WeComGroupsAdapter(client).items()]
    assert once == again and len(set(once)) == len(once)


@pytest.mark.parametrize("errcode", [42001, 40014, 40001])
def test_token_expiry_or_invalid_token_is_refreshed_once_and_retried(wecom, errcode):
    fake, client = wecom
    client.list_group_chats()
    assert fake.count("/gettoken") == 1
    if errcode == 42001:
        fake.expire_tokens()  # the real thing: the server forgets the token's validity
    else:
        fake.fail("/externalcontact/groupchat/list", errcode, "invalid credential")
    ids, _ = client.list_group_chats()
    assert len(ids) == 5
    assert fake.count("/gettoken") == 2


def test_token_refreshed_only_once_then_the_error_surfaces(wecom):
    fake, client = wecom
    fake.fail("/externalcontact/groupchat/list", 42001, "access_token expired", times=2)
    with pytest.raises(WeComApiError) as info:
        client.list_group_chats()
    assert info.value.errcode == 42001
    assert fake.count("/gettoken") == 2


def test_transient_errors_are_retried_with_backoff(wecom):
    fake, client = wecom
    fake.fail("/externalcontact/groupchat/get", -1, "system busy")
    fake.fail("/externalcontact/groupchat/get", 45009, "api freq out of limit")
    chat = client.get_group_chat("wrChat01")
    assert chat["name"] == "考研交流1群"
    assert fake.count("/externalcontact/groupchat/get") == 3


def test_transient_errors_give_up_after_the_backoff_list(wecom):
    fake, client = wecom
    fake.fail("/externalcontact/groupchat/get", 45009, "api freq out of limit", times=5)
    with pytest.raises(WeComTransientError) as info:
        client.get_group_chat("wrChat01")
    assert (info.value.errcode, info.value.errmsg) == (45009, "api freq out of limit")
    assert fake.count("/externalcontact/groupchat/get") == 3  # first try + 2 backoffs


def test_permanent_errors_are_not_retried(wecom):
    fake, client = wecom
    with pytest.raises(WeComApiError) as info:
        client.get_group_chat("no-such-chat")
    assert info.value.errcode == 49008
    assert not isinstance(info.value, WeComTransientError)
    assert fake.count("/externalcontact/groupchat/get") == 1


def test_wrong_secret_fails_with_errcode_and_never_shows_the_secret(caplog):
    fake = FakeWeCom()
    with serve(fake) as (_srv, base), httpx.Client(timeout=5) as http:
        client = WeComClient(fake.corp_id, SecretStr("wrong-secret-xyz"), base, http)
        with caplog.at_level(logging.DEBUG), pytest.raises(WeComApiError) as info:
            client.list_group_chats()
    assert info.value.errcode == 40001
    assert "wrong-secret-xyz" not in str(info.value)
    assert "wrong-secret-xyz" not in repr(client)
    assert "wrong-secret-xyz" not in caplog.text


def test_members_without_userid_are_rejected_not_dropped():
    from crm.intake.wecom import member_items

    chat = {"chat_id": "c1", "name": "g", "member_list": [{"type": 2}, member("wmA")]}
    items = list(member_items(chat))
    assert isinstance(items[0], RejectedRow) and items[0].reason.key == "reason.no_userid"
    assert isinstance(items[1], RawItem)
