"""A local WeCom customer-contact message API: the documented endpoints, errcodes and tasks.

Implements gettoken, externalcontact/add_msg_template, get_groupmsg_list_v2,
get_groupmsg_send_result, groupchat/add_join_way and get_join_way. ``confirm(msgid)`` plays
the staff member who confirms a task in the WeCom app.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class WecomState:
    corp_id: str = "corp1"
    secret: str = "s3cret"
    token: str = "tok-1"
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    join_ways: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_next: list[int] = field(default_factory=list)  # errcodes to answer next sends with
    # Customers whose mass-message allowance is spent: a confirmed task reports status 3.
    limit_reached: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def confirm(self, msgid: str) -> None:
        with self.lock:
            task = self.tasks[msgid]
            task["confirmed"] = True


def _handler(state: WecomState) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, data: dict[str, Any]) -> None:
            body = json.dumps(data, ensure_ascii=False).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            q = parse_qs(url.query)
            if url.path.endswith("/gettoken"):
                if q.get("corpid") == [state.corp_id] and q.get("corpsecret") == [state.secret]:
                    self._reply({"errcode": 0, "access_token": state.token, "expires_in": 7200})
                else:
                    self._reply({"errcode": 40001, "errmsg": "invalid credential"})
                return
            self._reply({"errcode": 404, "errmsg": "unknown"})

        def do_POST(self) -> None:
            url = urlparse(self.path)
            q = parse_qs(url.query)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            if q.get("access_token") != [state.token]:
                self._reply({"errcode": 42001, "errmsg": "access_token expired"})
                return
            path = url.path.split("/cgi-bin", 1)[-1]
            with state.lock:
                self._reply(self._route(path, body))

        def _route(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
            if path == "/externalcontact/add_msg_template":
                if state.fail_next:
                    code = state.fail_next.pop(0)
                    return {"errcode": code, "errmsg": "simulated"}
                if "text" not in body or not body["text"].get("content"):
                    return {"errcode": 41048, "errmsg": "missing content"}
                msgid = f"msg{len(state.tasks) + 1}"
                state.tasks[msgid] = {**body, "msgid": msgid, "create_time": int(time.time())}
                return {"errcode": 0, "errmsg": "ok", "fail_list": [], "msgid": msgid}
            if path == "/externalcontact/get_groupmsg_list_v2":
                found = [
                    {"msgid": t["msgid"], "creator": t.get("sender"), "text": t["text"]}
                    for t in state.tasks.values()
                    if body.get("creator") in (None, t.get("sender"))
                    and body["start_time"] <= t["create_time"] <= body["end_time"]
                ]
                return {"errcode": 0, "group_msg_list": found, "next_cursor": ""}
            if path == "/externalcontact/get_groupmsg_send_result":
                task = state.tasks.get(body.get("msgid", ""))
                if task is None:
                    return {"errcode": 41063, "errmsg": "msgid not found"}
                status = 1 if task.get("confirmed") else 0
                # One row per recipient: external_userid for 1:1 tasks, chat_id for groups.
                rows = [
                    {
                        "external_userid": u,
                        "userid": task.get("sender"),
                        "status": 3 if status and u in state.limit_reached else status,
                    }
                    for u in task.get("external_userid", [])
                ] + [
                    {"chat_id": c, "userid": task.get("sender"), "status": status}
                    for c in task.get("chat_id_list", [])
                ]
                return {"errcode": 0, "send_list": rows, "next_cursor": ""}
            if path == "/externalcontact/groupchat/add_join_way":
                cid = f"cfg{len(state.join_ways) + 1}"
                state.join_ways[cid] = body
                return {"errcode": 0, "config_id": cid}
            if path == "/externalcontact/groupchat/get_join_way":
                cfg = state.join_ways.get(body.get("config_id", ""))
                if cfg is None:
                    return {"errcode": 40001, "errmsg": "bad config_id"}
                qr = f"https://wework.qpic.cn/join/{body['config_id']}"
                return {"errcode": 0, "join_way": {**cfg, "qr_code": qr}}
            return {"errcode": 404, "errmsg": f"unknown path {path}"}

    return H


@contextmanager
def wecom_msg_server() -> Iterator[tuple[str, WecomState]]:
    """Serve on 127.0.0.1 on a free port; yields (base URL ending in /cgi-bin, state)."""
    state = WecomState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cgi-bin", state
    finally:
        server.shutdown()
        server.server_close()
