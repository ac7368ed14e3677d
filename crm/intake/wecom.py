"""WeCom (企业微信) customer groups as a source: the API client and the group-member adapter.

Errors::

    QunflowError
    └── WeComApiError              errcode != 0 (errcode, errmsg kept)
        └── WeComTransientError    busy / rate limited / network: retried with backoff

Access tokens come from ``gettoken`` (corp id + secret), are cached until ``expires_in`` and
refreshed once when an API call answers with an expired or invalid token.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import Engine, update

from crm.core.db import transaction
from crm.core.errors import ConfigError, QunflowError
from crm.core.settings import Settings
from crm.core.vocabulary import SourceKind
from crm.intake.pipeline import ingest_items
from crm.intake.reasons import Reason, why
from crm.intake.records import IngestReport, RawItem, RejectedRow, SourceSpec
from crm.intake.sources import ensure_source
from crm.models import SourceInstance

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential / token, token expired
TRANSIENT_ERRCODES = frozenset({-1, 45009, 45033})  # system busy, API rate, too many concurrent
EXTERNAL_MEMBER = 2  # member_list[].type: 1 staff (企业成员), 2 external contact (外部联系人)


class WeComApiError(QunflowError):
    """WeCom answered with a non-zero errcode (its errmsg is kept as ``detail``, as it came), or
    gave an answer that cannot be used (errcode -1)."""

    def __init__(self, key: str, /, *, api: str, errcode: int = -1, **params: object) -> None:
        super().__init__(key, api=api, errcode=errcode, **params)

    # read from the parameters, so they survive pickling like the key does
    @property
    def api(self) -> str:
        return str(self.params["api"])

    @property
    def errcode(self) -> int:
        return int(str(self.params["errcode"]))

    @property
    def errmsg(self) -> str:
        return str(self.params.get("detail", ""))


class WeComTransientError(WeComApiError):
    """WeCom is busy, rate limiting or unreachable: the same call may succeed later."""


class _RedactSecrets(logging.Filter):
    """httpx logs request URLs at INFO; WeCom puts the secret and token in the query string."""

    _pattern = re.compile(r"(corpsecret|access_token)=[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                self._pattern.sub(r"\1=***", str(a)) if "=" in str(a) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        return True


_redactor = _RedactSecrets()


@dataclass
class _Token:
    value: str
    expires_at: float  # monotonic clock


class WeComClient:
    """A small WeCom API client over an injected ``httpx.Client``."""

    def __init__(
        self,
        corp_id: str,
        secret: SecretStr,
        base_url: str,
        http: httpx.Client,
        *,
        backoff: Sequence[float] = (0.5, 2.0, 5.0),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.corp_id = corp_id
        self._secret = secret
        self._base = base_url.rstrip("/")
        self._http = http
        self._backoff = tuple(backoff)
        self._sleep = sleep
        self._clock = clock
        self._token: _Token | None = None
        self.token_fetches = 0
        logging.getLogger("httpx").addFilter(_redactor)

    def __repr__(self) -> str:
        return f"WeComClient(corp_id={self.corp_id!r}, base_url={self._base!r})"

    # --- tokens ---------------------------------------------------------------
    def access_token(self) -> str:
        """A valid access token, fetched on first use and after it expires."""
        if self._token is None or self._clock() >= self._token.expires_at:
            self._token = self._fetch_token()
        return self._token.value

    def invalidate_token(self) -> None:
        """Forget the cached token (WeCom said it is expired or invalid)."""
        self._token = None

    def _fetch_token(self) -> _Token:
        params = {"corpid": self.corp_id, "corpsecret": self._secret.get_secret_value()}
        body = self._with_retries("gettoken", lambda: self._send("GET", "gettoken", params, None))
        self.token_fetches += 1
        expires_in = int(body.get("expires_in", 7200))
        # Renew a little early so a token never expires between our check and WeCom's.
        margin = min(300.0, expires_in / 10)
        return _Token(str(body["access_token"]), self._clock() + expires_in - margin)

    # --- calls ----------------------------------------------------------------
    def post(self, api: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to ``api`` with the access token; retried and refreshed as needed."""
        refreshed = False
        while True:
            token = self.access_token()
            try:
                call = partial(self._send, "POST", api, {"access_token": token}, payload)
                return self._with_retries(api, call)
            except WeComApiError as exc:
                if exc.errcode in TOKEN_ERRCODES and not refreshed:
                    refreshed = True
                    self.invalidate_token()
                    continue
                raise

    def get(self, api: str, params: dict[str, str]) -> dict[str, Any]:
        """GET ``api`` with ``params`` and the access token; retried and refreshed as needed."""
        refreshed = False
        while True:
            query = {**params, "access_token": self.access_token()}
            try:
                return self._with_retries(api, partial(self._send, "GET", api, query, None))
            except WeComApiError as exc:
                if exc.errcode in TOKEN_ERRCODES and not refreshed:
                    refreshed = True
                    self.invalidate_token()
                    continue
                raise

    def _with_retries(self, api: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                return call()
            except WeComTransientError:
                if attempt >= len(self._backoff):
                    raise
                self._sleep(self._backoff[attempt])
                attempt += 1

    def _send(
        self, method: str, api: str, params: dict[str, str], payload: dict[str, Any] | None
    ) -> dict[str, Any]:
        url = f"{self._base}/{api}"
        try:
            response = self._http.request(method, url, params=params, json=payload)
        except httpx.TransportError as exc:
            raise WeComTransientError(
                "error.intake.wecom_network", api=api, detail=type(exc).__name__
            ) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise WeComTransientError(
                "error.intake.wecom_http", api=api, status=response.status_code
            )
        if response.status_code != 200:
            raise WeComApiError("error.intake.wecom_http", api=api, status=response.status_code)
        try:
            body = response.json()
        except ValueError as exc:
            raise WeComTransientError("error.intake.wecom_not_json", api=api) from exc
        if not isinstance(body, dict):
            raise WeComApiError("error.intake.wecom_not_object", api=api)
        errcode = int(body.get("errcode", 0))
        if errcode != 0:
            errmsg = str(body.get("errmsg", ""))
            if errcode in TRANSIENT_ERRCODES:
                raise WeComTransientError(
                    "error.intake.wecom_refused", api=api, errcode=errcode, detail=errmsg
                )
            raise WeComApiError(
                "error.intake.wecom_refused", api=api, errcode=errcode, detail=errmsg
            )
        return body

    # --- customer groups (客户群) ----------------------------------------------
    def list_group_chats(
        self, *, cursor: str | None = None, limit: int = 100, status_filter: int = 0
    ) -> tuple[list[str], str | None]:
        """One page of group chat ids and the cursor of the next page (None at the end)."""
        payload: dict[str, Any] = {"status_filter": status_filter, "limit": limit}
        if cursor:
            payload["cursor"] = cursor
        body = self.post("externalcontact/groupchat/list", payload)
        ids = [str(g["chat_id"]) for g in body.get("group_chat_list", [])]
        return ids, (str(body.get("next_cursor") or "") or None)

    def get_group_chat(self, chat_id: str) -> dict[str, Any]:
        """A group chat's details, members with their names included."""
        body = self.post("externalcontact/groupchat/get", {"chat_id": chat_id, "need_name": 1})
        chat = body.get("group_chat")
        if not isinstance(chat, dict):
            raise WeComApiError(
                "error.intake.wecom_no_group_chat", api="externalcontact/groupchat/get"
            )
        return chat


def group_spec(chat: dict[str, Any]) -> SourceSpec:
    """The source instance of one of our WeCom customer groups."""
    chat_id = str(chat["chat_id"])
    name = str(chat.get("name") or chat_id)
    return SourceSpec(
        kind=SourceKind.API,
        key=f"wecom-group:{chat_id}",
        name=f"企业微信群 {name}",
        group_name=name,
        platform="wecom",
        extra={"chat_id": chat_id, "owner": chat.get("owner")},
    )


def member_items(chat: dict[str, Any]) -> Iterator[RawItem | RejectedRow]:
    """External members of one group chat as raw items (staff members are ours, not leads)."""
    spec = group_spec(chat)
    chat_id = spec.extra["chat_id"]
    for n, member in enumerate(chat.get("member_list") or [], start=1):
        if not isinstance(member, dict) or not member.get("userid"):
            reason = why(Reason.NO_USERID)
            yield RejectedRow(row_number=n, raw_content=repr(member)[:2000], reason=reason)
            continue
        if member.get("type") != EXTERNAL_MEMBER:
            continue
        join_time = int(member.get("join_time") or 0)
        payload: dict[str, Any] = {
            "wecom_external_userid": str(member["userid"]),
            "name": member.get("name") or member.get("group_nickname"),
            "nickname": member.get("group_nickname"),
            "occurred_at": datetime.fromtimestamp(join_time, UTC).isoformat(),
            "join_scene": member.get("join_scene"),
            "community": spec.group_name,
        }
        if member.get("unionid"):
            payload["unionid"] = member["unionid"]
        invitor = member.get("invitor")
        if isinstance(invitor, dict) and invitor.get("userid"):
            payload["invitor"] = invitor["userid"]
        yield RawItem(
            record_key=f"{chat_id}:{member['userid']}:{join_time}",
            payload={k: v for k, v in payload.items() if v is not None},
            row_number=n,
            source=spec,
        )


@dataclass
class GroupPage:
    """One page of the group listing: its items and where the next page starts."""

    chat_ids: list[str]
    next_cursor: str | None
    items: list[RawItem | RejectedRow] = field(default_factory=list)


class WeComGroupsAdapter:
    """Members of every customer group, page by page, resuming from a stored cursor."""

    def __init__(self, client: WeComClient, *, cursor: str | None = None, limit: int = 100):
        self.client = client
        self.cursor = cursor
        self.limit = limit

    def source(self) -> SourceSpec:
        """The feed itself: one source instance per corp, holding the listing cursor."""
        return feed_spec(self.client.corp_id)

    def pages(self) -> Iterator[GroupPage]:
        """Pages of the listing from the stored cursor to the end."""
        cursor = self.cursor
        while True:
            ids, next_cursor = self.client.list_group_chats(cursor=cursor, limit=self.limit)
            page = GroupPage(ids, next_cursor)
            for chat_id in ids:
                page.items.extend(member_items(self.client.get_group_chat(chat_id)))
            yield page
            if not next_cursor or next_cursor == cursor:
                return
            cursor = next_cursor

    def items(self) -> Iterator[RawItem | RejectedRow]:
        """Every member item of every page."""
        for page in self.pages():
            yield from page.items


def feed_spec(corp_id: str) -> SourceSpec:
    """The source instance of a corp's customer-group feed (the cursor lives on it)."""
    return SourceSpec(
        kind=SourceKind.API,
        key=f"wecom:{corp_id}:groupchats",
        name="企业微信客户群",
        platform="wecom",
    )


def client_from_settings(settings: Settings, http: httpx.Client, **kwargs: Any) -> WeComClient:
    """A client built from QUNFLOW_WECOM_* settings; ConfigError if they are missing."""
    if not settings.wecom_corp_id or settings.wecom_secret is None:
        raise ConfigError("error.intake.wecom_unset")
    return WeComClient(
        settings.wecom_corp_id, settings.wecom_secret, settings.wecom_base_url, http, **kwargs
    )


def pull_wecom_groups(
    engine: Engine, client: WeComClient, *, now: datetime | None = None, page_size: int = 100
) -> IngestReport:
    """Pull the members of every customer group into the raw log and resolve them."""
    spec = feed_spec(client.corp_id)
    with transaction(engine) as session:
        feed_id = ensure_source(session, spec)
        cursor = session.get(SourceInstance, feed_id).cursor  # type: ignore[union-attr]
    report = IngestReport()
    adapter = WeComGroupsAdapter(client, cursor=cursor, limit=page_size)
    for page in adapter.pages():
        if page.items:
            report.add(
                ingest_items(
                    engine, spec, page.items, origin="wecom:externalcontact/groupchat", now=now
                )
            )
        # The page is committed: a crash after this point resumes at the next page.
        with transaction(engine) as session:
            session.execute(
                update(SourceInstance)
                .where(SourceInstance.id == feed_id)
                .values(cursor=page.next_cursor)
            )
    return report
