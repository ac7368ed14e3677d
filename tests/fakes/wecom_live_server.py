"""WeCom live intake for tests: the customer-contact endpoints and callbacks pushed to us.

Extends :class:`FakeWeCom` with add/update/del_contact_way, externalcontact/get and
send_welcome_msg (a WelcomeCode works once, within 20 s of its event; 41051 after use), and
plays WeCom's callback sender: :meth:`FakeLiveWeCom.push` encrypts and signs an event as
WeCom does (with wechatpy, an independent implementation) and POSTs it to our endpoint.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from wechatpy.enterprise.crypto import WeChatCrypto

from tests.fakes.wecom_server import FakeWeCom

WELCOME_WINDOW = 20.0


def event_xml(corp_id: str, fields: dict[str, Any]) -> str:
    """A callback message as WeCom writes it: CDATA text, numbers bare, lists as <Item>."""
    parts = [f"<ToUserName><![CDATA[{corp_id}]]></ToUserName>"]
    parts.append("<FromUserName><![CDATA[sys]]></FromUserName>")
    parts.append("<MsgType><![CDATA[event]]></MsgType>")
    for name, value in fields.items():
        if isinstance(value, list):
            items = "".join(f"<Item><![CDATA[{v}]]></Item>" for v in value)
            parts.append(f"<{name}>{items}</{name}>")
        elif isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass
class FakeLiveWeCom(FakeWeCom):
    """The fake with customers, contact ways and welcome codes."""

    token: str = "callback-token"
    aes_key: str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    contact_ways: dict[str, dict[str, Any]] = field(default_factory=dict)
    welcome_codes: dict[str, float] = field(default_factory=dict)  # code -> issued (monotonic)
    welcomes: list[dict[str, Any]] = field(default_factory=list)
    used_codes: set[str] = field(default_factory=set)
    being_sent: int = 0  # answer 41096 this many times first
    join_ways: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.routes.update(
            {
                ("POST", "/externalcontact/add_contact_way"): self._add_contact_way,
                ("POST", "/externalcontact/update_contact_way"): self._update_contact_way,
                ("POST", "/externalcontact/del_contact_way"): self._del_contact_way,
                ("GET", "/externalcontact/get"): self._get_customer,
                ("POST", "/externalcontact/send_welcome_msg"): self._send_welcome,
                ("POST", "/externalcontact/groupchat/add_join_way"): self._add_join_way,
                ("POST", "/externalcontact/groupchat/get_join_way"): self._get_join_way,
            }
        )

    # --- endpoints ---------------------------------------------------------------
    def _add_contact_way(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if body.get("type") not in (1, 2) or body.get("scene") not in (1, 2):
            return {"errcode": 41037, "errmsg": "missing contact way type"}
        if len(str(body.get("state") or "")) > 30:
            return {"errcode": 40058, "errmsg": "state exceeds 30 characters"}
        users = body.get("user") or []
        if body["type"] == 1 and len(users) != 1:
            return {"errcode": 40058, "errmsg": "type 1 takes exactly one user"}
        config_id = secrets.token_hex(16)
        self.contact_ways[config_id] = dict(body)
        qr = f"https://wework.qpic.cn/wwpic/{config_id}/0" if body["scene"] == 2 else None
        return {"errcode": 0, "errmsg": "ok", "config_id": config_id, "qr_code": qr}

    def _update_contact_way(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        way = self.contact_ways.get(str(body.get("config_id")))
        if way is None:
            return {"errcode": 41044, "errmsg": "invalid config_id"}
        way.update({k: v for k, v in body.items() if k != "config_id"})
        return {"errcode": 0, "errmsg": "ok"}

    def _del_contact_way(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if self.contact_ways.pop(str(body.get("config_id")), None) is None:
            return {"errcode": 41044, "errmsg": "invalid config_id"}
        return {"errcode": 0, "errmsg": "ok"}

    def _get_customer(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        customer = self.customers.get(query.get("external_userid", ""))
        if customer is None:
            return {"errcode": 84061, "errmsg": "not external contact"}
        return {"errcode": 0, "errmsg": "ok", **customer, "next_cursor": ""}

    def _send_welcome(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        code = str(body.get("welcome_code") or "")
        with self.lock:
            issued = self.welcome_codes.get(code)
            if issued is None:
                return {"errcode": 41053, "errmsg": "invalid welcome code"}
            if self.being_sent:
                self.being_sent -= 1
                return {"errcode": 41096, "errmsg": "welcome msg is being distributed"}
            if code in self.used_codes:
                return {"errcode": 41051, "errmsg": "externaluser has started chatting"}
            if time.monotonic() - issued > WELCOME_WINDOW:
                return {"errcode": 41053, "errmsg": "welcome code expired"}
            self.used_codes.add(code)
            self.welcomes.append(body)
        return {"errcode": 0, "errmsg": "ok"}

    def _add_join_way(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        chats = body.get("chat_id_list") or []
        if not 1 <= len(chats) <= 5:
            return {"errcode": 40058, "errmsg": "chat_id_list takes 1 to 5 chats"}
        if body.get("auto_create_room", 1) == 1 and not body.get("room_base_name"):
            return {"errcode": 40058, "errmsg": "room_base_name required with auto_create_room"}
        if len(str(body.get("state") or "")) > 30:
            return {"errcode": 40058, "errmsg": "state exceeds 30 characters"}
        config_id = secrets.token_hex(16)
        self.join_ways[config_id] = dict(body)
        return {"errcode": 0, "errmsg": "ok", "config_id": config_id}

    def _get_join_way(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        way = self.join_ways.get(str(body.get("config_id")))
        if way is None:
            return {"errcode": 41044, "errmsg": "invalid config_id"}
        qr = f"https://wework.qpic.cn/join/{body['config_id']}"
        return {"errcode": 0, "errmsg": "ok", "join_way": {**way, "qr_code": qr}}

    # --- test controls -------------------------------------------------------------
    def add_customer(self, external_userid: str, name: str, staff: str, state: str) -> None:
        """A WeChat user who added ``staff`` by scanning a code with ``state``."""
        self.customers[external_userid] = {
            "external_contact": {
                "external_userid": external_userid,
                "name": name,
                "type": 1,
                "gender": 0,
                "unionid": f"ozynqs{external_userid[-8:]}",
            },
            "follow_user": [
                {
                    "userid": staff,
                    "remark": "",
                    "createtime": int(time.time()),
                    "tags": [{"group_name": "渠道", "tag_name": "地推", "type": 1}],
                    "state": state,
                }
            ],
        }

    def welcome_code(self) -> str:
        """A fresh WelcomeCode, issued now (its 20 s start)."""
        code = secrets.token_urlsafe(12)
        self.welcome_codes[code] = time.monotonic()
        return code

    def push(
        self, url: str, fields: dict[str, Any], *, signature: str | None = None
    ) -> httpx.Response:
        """Encrypt, sign and POST one event to our callback URL, as WeCom does."""
        crypto = WeChatCrypto(self.token, self.aes_key, self.corp_id)
        nonce, timestamp = secrets.token_hex(6), str(int(time.time()))
        envelope = crypto.encrypt_message(event_xml(self.corp_id, fields), nonce, timestamp)
        import xml.etree.ElementTree as ET

        root = ET.fromstring(envelope)
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<AgentID><![CDATA[1000002]]></AgentID>"
            f"<Encrypt><![CDATA[{root.findtext('Encrypt')}]]></Encrypt></xml>"
        )
        params = {
            "msg_signature": signature or root.findtext("MsgSignature") or "",
            "timestamp": timestamp,
            "nonce": nonce,
        }
        return httpx.post(url, params=params, content=body.encode(), timeout=10)
