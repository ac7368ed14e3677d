"""A local WeCom API server for tests: gettoken and the customer-group (客户群) endpoints.

Answers follow Tencent's documented shapes: JSON bodies with ``errcode``/``errmsg``, the
access token in the ``access_token`` query parameter. Tests can expire tokens, inject
errcodes for the next calls of an endpoint and read what was called. Other fakes extend it
by subclassing and adding entries to ``routes``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/cgi-bin"
Handler = Callable[[dict[str, str], dict[str, Any]], dict[str, Any]]


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeWeCom:
    """State of the fake: credentials, tokens, groups, injected failures and a call log."""

    corp_id: str = "ww-test-corp"
    secret: str = "s3cret-value"
    expires_in: int = 7200
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)
    failures: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.routes.update(
            {
                ("GET", "/gettoken"): self._gettoken,
                ("POST", "/externalcontact/groupchat/list"): self._groupchat_list,
                ("POST", "/externalcontact/groupchat/get"): self._groupchat_get,
            }
        )

    # --- test controls ------------------------------------------------------------
    def expire_tokens(self) -> None:
        """Every token issued so far now answers 42001 (access_token expired)."""
        with self.lock:
            for token in self.tokens:
                self.tokens[token] = 0.0

    def fail(self, path: str, errcode: int, errmsg: str = "injected", times: int = 1) -> None:
        """The next ``times`` calls of ``path`` (e.g. "/gettoken") answer ``errcode``."""
        with self.lock:
            self.failures.setdefault(path, []).extend([(errcode, errmsg)] * times)

    def add_group(
        self, chat_id: str, name: str, members: list[dict[str, Any]], owner: str = "staff1"
    ) -> None:
        """A customer group with ``member_list`` entries shaped as Tencent documents."""
        self.groups[chat_id] = {
            "chat_id": chat_id,
            "name": name,
            "owner": owner,
            "create_time": 1_700_000_000,
            "notice": "",
            "member_list": members,
            "admin_list": [{"userid": owner}],
            "member_version": secrets.token_hex(8),
        }

    def count(self, path: str) -> int:
        """How many times ``path`` was called."""
        return sum(1 for c in self.calls if c.path == path)

    # --- helpers for endpoint handlers ----------------------------------------------
    def check_token(self, query: dict[str, str]) -> dict[str, Any] | None:
        """An errcode answer if the access token is missing, unknown or expired."""
        token = query.get("access_token")
        if not token:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        with self.lock:
            expires = self.tokens.get(token)
        if expires is None:
            return {"errcode": 40014, "errmsg": "invalid access_token"}
        if time.monotonic() >= expires:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        return None

    def take_failure(self, path: str) -> dict[str, Any] | None:
        with self.lock:
            queue = self.failures.get(path)
            if queue:
                errcode, errmsg = queue.pop(0)
                return {"errcode": errcode, "errmsg": errmsg}
        return None

    # --- endpoints ------------------------------------------------------------------
    def _gettoken(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        if query.get("corpid") != self.corp_id:
            return {"errcode": 40013, "errmsg": "invalid corpid"}
        if query.get("corpsecret") != self.secret:
            return {"errcode": 40001, "errmsg": "invalid credential"}
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.expires_in
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in}

    def _groupchat_list(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        limit = body.get("limit")
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            return {"errcode": 40058, "errmsg": "invalid limit"}
        ids = sorted(self.groups)
        # The cursor is opaque to clients; here it is the index of the next group.
        cursor = body.get("cursor") or ""
        start = int(cursor[1:]) if cursor.startswith("c") else 0
        page = ids[start : start + limit]
        nxt = f"c{start + limit}" if start + limit < len(ids) else ""
        return {
            "errcode": 0,
            "errmsg": "ok",
            "group_chat_list": [{"chat_id": c, "status": 0} for c in page],
            "next_cursor": nxt,
        }

    def _groupchat_get(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        chat = self.groups.get(str(body.get("chat_id")))
        if chat is None:
            return {"errcode": 49008, "errmsg": "chat not exist"}
        chat = json.loads(json.dumps(chat))
        if body.get("need_name") != 1:
            for m in chat["member_list"]:
                m.pop("name", None)
        return {"errcode": 0, "errmsg": "ok", "group_chat": chat}

    # --- dispatch -------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, raw_body: bytes) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(raw_path)
        if not parts.path.startswith(PREFIX):
            return 404, {"errcode": 404, "errmsg": "not found"}
        path = parts.path[len(PREFIX) :]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            body = json.loads(raw_body) if raw_body else {}
        except json.JSONDecodeError:
            return 200, {"errcode": 47001, "errmsg": "data format error"}
        self.calls.append(Call(method, path, query, body))
        handler = self.routes.get((method, path))
        if handler is None:
            return 404, {"errcode": 404, "errmsg": "not found"}
        failure = self.take_failure(path)
        if failure is not None:
            return 200, failure
        if path != "/gettoken":
            denied = self.check_token(query)
            if denied is not None:
                return 200, denied
        return 200, handler(query, body)


def _handler_for(fake: FakeWeCom) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, answer = fake.handle(method, self.path, self.rfile.read(length))
            data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return _Handler


@contextmanager
def serve(fake: FakeWeCom | None = None) -> Iterator[tuple[FakeWeCom, str]]:
    """Run ``fake`` on 127.0.0.1 (a free port); yields it and its base URL (…/cgi-bin)."""
    fake = fake or FakeWeCom()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}{PREFIX}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
