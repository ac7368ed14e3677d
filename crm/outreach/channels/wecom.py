"""WeCom (企业微信) customer contact: mass/1:1 message tasks, their results, group join QR codes.

``externalcontact/add_msg_template`` does not deliver: it creates a task the sending staff member
confirms in the WeCom app. A send therefore ends in ``awaiting_confirmation`` with the task's
msgid, and :meth:`WecomChannel.confirmation` learns later (get_groupmsg_send_result) whether
the contact received it.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from crm.core.errors import PermanentChannelError, TransientChannelError
from crm.outreach.channels.base import AWAITING_CONFIRMATION, OutgoingMessage, SendResult

# errcodes worth retrying: system busy, API frequency limits, "please retry".
TRANSIENT = {-1, 45009, 45033, 45011}
TOKEN_EXPIRED = {40014, 42001}


class WecomChannel:
    """Talks to the WeCom API at ``base_url`` (tests point it at a local server)."""

    name = "wecom"
    can_lookup = True

    def __init__(
        self,
        base_url: str,
        corp_id: str,
        secret: SecretStr,
        *,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self._secret = secret
        self._client = client or httpx.Client(timeout=10.0)
        self._own_client = client is None
        self._token: str | None = None
        self._token_until = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WecomChannel({self.base_url}, corp_id={self.corp_id!r})"

    # --- plumbing -------------------------------------------------------------
    def _access_token(self, *, refresh: bool = False) -> str:
        with self._lock:
            if self._token and not refresh and time.monotonic() < self._token_until:
                return self._token
            data = self._get(
                "/gettoken",
                {"corpid": self.corp_id, "corpsecret": self._secret.get_secret_value()},
            )
            self._token = str(data["access_token"])
            self._token_until = time.monotonic() + int(data.get("expires_in", 7200)) - 300
            return self._token

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            resp = self._client.get(self.base_url + path, params=params)
        except httpx.HTTPError as exc:
            raise TransientChannelError(f"wecom {path}: {type(exc).__name__}") from exc
        return self._check(path, resp)

    def _check(self, path: str, resp: httpx.Response) -> dict[str, Any]:
        if resp.status_code >= 500:
            raise TransientChannelError(f"wecom {path}: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise PermanentChannelError(f"wecom {path}: HTTP {resp.status_code}")
        data: dict[str, Any] = resp.json()
        code = int(data.get("errcode", 0))
        if code == 0:
            return data
        detail = f"wecom {path}: errcode {code} {data.get('errmsg', '')}".strip()
        if code in TRANSIENT:
            raise TransientChannelError(detail)
        if code in TOKEN_EXPIRED:
            raise _TokenExpired(detail)
        raise PermanentChannelError(detail)

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON API call with the access token; refreshes an expired token once."""
        for attempt in (0, 1):
            token = self._access_token(refresh=attempt == 1)
            try:
                resp = self._client.post(
                    self.base_url + path, params={"access_token": token}, json=body
                )
            except httpx.HTTPError as exc:
                raise TransientChannelError(f"wecom {path}: {type(exc).__name__}") from exc
            try:
                return self._check(path, resp)
            except _TokenExpired as exc:
                if attempt == 1:
                    raise TransientChannelError(str(exc)) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # --- the channel ----------------------------------------------------------
    def send(self, message: OutgoingMessage) -> SendResult:
        """Create a message task (1:1 to an external contact, or to a customer group)."""
        chat_id = message.meta.get("chat_id")
        body: dict[str, Any] = {"text": {"content": message.text}}
        if chat_id:
            body.update(chat_type="group", chat_id_list=[chat_id])
        else:
            if not message.address:
                raise PermanentChannelError("contact has no WeCom external_userid")
            body.update(chat_type="single", external_userid=[message.address])
        if message.account:
            body["sender"] = message.account
        data = self.call("/externalcontact/add_msg_template", body)
        fails = data.get("fail_list") or []
        if message.address and message.address in fails:
            raise PermanentChannelError("wecom: external contact not reachable (fail_list)")
        return SendResult(provider_id=str(data["msgid"]), state=AWAITING_CONFIRMATION)

    def lookup(self, message: OutgoingMessage) -> SendResult | None:
        """Find a task we created for this text and sender around the attempt (msgid check)."""
        around = message.meta.get("sending_at")
        start = datetime.fromisoformat(around) if around else None
        end_ts = int(time.time()) + 60
        start_ts = int((start - timedelta(minutes=5)).timestamp()) if start else end_ts - 86400
        body: dict[str, Any] = {"chat_type": "single", "start_time": start_ts, "end_time": end_ts}
        if message.account:
            body["creator"] = message.account
        cursor = ""
        while True:
            data = self.call("/externalcontact/get_groupmsg_list_v2", {**body, "cursor": cursor})
            for task in data.get("group_msg_list", []):
                if (task.get("text") or {}).get("content") == message.text:
                    return SendResult(provider_id=str(task["msgid"]), state=AWAITING_CONFIRMATION)
            cursor = str(data.get("next_cursor") or "")
            if not cursor:
                return None

    def confirmation(
        self, msgid: str, recipient: str, userid: str | None, *, group: bool = False
    ) -> str | None:
        """The task's outcome for one contact (external_userid) or, for a group post, one group
        (chat_id): sent, not_friend, duplicate, or None while the staff member has not sent it."""
        body: dict[str, Any] = {"msgid": msgid}
        if userid:
            body["userid"] = userid
        data = self.call("/externalcontact/get_groupmsg_send_result", body)
        key = "chat_id" if group else "external_userid"
        for row in data.get("send_list", []):
            if row.get(key) == recipient:
                return {1: "sent", 2: "not_friend", 3: "duplicate"}.get(int(row.get("status", 0)))
        return None

    def join_qr(self, chat_ids: list[str], *, state: str) -> str:
        """A group join QR code (群活码) over up to 5 groups (opens a new one when full)."""
        created = self.call(
            "/externalcontact/groupchat/add_join_way",
            {
                "scene": 2,
                "chat_id_list": chat_ids[:5],
                "auto_create_room": 1,
                "room_base_id": 1,
                "state": state[:30],
            },
        )
        got = self.call(
            "/externalcontact/groupchat/get_join_way", {"config_id": created["config_id"]}
        )
        return str(got["join_way"]["qr_code"])

    def close(self) -> None:
        """Close the HTTP client if we made it."""
        if self._own_client:
            self._client.close()


class _TokenExpired(TransientChannelError):
    pass
