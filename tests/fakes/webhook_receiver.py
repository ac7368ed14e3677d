"""A local webhook receiver that dedupes on Idempotency-Key and answers lookups."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Received:
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: Counter[str] = field(default_factory=Counter)  # raw POSTs per key (incl. deduped)
    signed: dict[str, tuple[bytes, dict[str, str]]] = field(default_factory=dict)  # last POST
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, Received]]:
    got = Received()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, data: dict[str, Any]) -> None:
            body = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            key = parse_qs(urlparse(self.path).query).get("idempotency_key", [""])[0]
            with got.lock:
                hit = key in got.accepted
            self._send(200 if hit else 404, {"id": key} if hit else {})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            body = json.loads(raw)
            key = self.headers["Idempotency-Key"]
            with got.lock:
                got.posts[key] += 1
                got.signed[key] = (raw, dict(self.headers.items()))
                got.accepted.setdefault(key, body)
            self._send(200, {"id": key})

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    finally:
        server.shutdown()
        server.server_close()
