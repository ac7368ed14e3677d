"""What the other side does in the walkthrough: a phone filling in the QR sign-up form, a
partner pushing signed leads and events, and finding a contact's id by phone or WeChat id.

    python examples/day/client.py sign-up SERVER CODE_URL --name N --phone P --answer goal=升学
    python examples/day/client.py push SERVER leads|events FILE.json
    qunflow contacts list --json --limit 10000 | python examples/day/client.py contact-id PHONE

A push is signed as every sender must sign it: ``X-Qunflow-Timestamp: <Unix seconds>`` and
``X-Qunflow-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`` with the webhook
secret (``QUNFLOW_WEBHOOK_SECRET``, else ``webhook_secret`` in ``DATA_DIR/secrets.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx


def webhook_secret() -> str:
    """The secret the server checks pushes with."""
    if os.environ.get("QUNFLOW_WEBHOOK_SECRET"):
        return os.environ["QUNFLOW_WEBHOOK_SECRET"]
    data_dir = os.environ.get("QUNFLOW_DATA_DIR") or "~/.local/share/qunflow"
    secrets = json.loads((Path(data_dir).expanduser() / "secrets.json").read_text("utf-8"))
    return str(secrets["webhook_secret"])


def signed(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The two headers of a push sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Qunflow-Timestamp": str(timestamp),
        "X-Qunflow-Signature": "sha256=" + mac.hexdigest(),
    }


def push(server: str, kind: str, path: Path) -> None:
    body = path.read_bytes()
    headers = signed(body, webhook_secret(), int(time.time()))
    answer = httpx.post(f"{server}/hooks/{kind}", content=body, headers=headers, timeout=30)
    print(json.dumps(answer.json(), ensure_ascii=False))
    answer.raise_for_status()


def sign_up(server: str, code_url: str, fields: dict[str, str]) -> None:
    """Open the code's page, fill in the form and send it, as a phone at the stand would."""
    path = urlsplit(code_url).path  # the page itself, served by SERVER
    with httpx.Client(base_url=server, timeout=30) as http:
        page = http.get(path)
        page.raise_for_status()
        nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
        if nonce is None:
            sys.exit("sign-up: the page has no form")
        sent = http.post(path, data={**fields, "nonce": nonce.group(1), "consent": "on"})
        print(f"sign-up: HTTP {sent.status_code}")
        sent.raise_for_status()


def contact_id(listing: dict[str, list[dict[str, object]]], who: str) -> int:
    """The id of the contact with this phone (digits, +86 optional) or WeChat id."""
    for item in listing["items"]:
        phone = str(item.get("phone") or "")
        if who in (item.get("wechat_id"), phone, phone.removeprefix("+86")):
            return int(str(item["id"]))
    sys.exit(f"contact-id: no contact with phone or WeChat id {who}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sign-up")
    s.add_argument("server")
    s.add_argument("code_url")
    s.add_argument("--name", required=True)
    s.add_argument("--phone", default="")
    s.add_argument("--wechat-id", default="")
    s.add_argument("--answer", action="append", default=[], help="question=answer")
    p = sub.add_parser("push")
    p.add_argument("server")
    p.add_argument("kind", choices=["leads", "events"])
    p.add_argument("file", type=Path)
    c = sub.add_parser("contact-id")
    c.add_argument("who")
    args = parser.parse_args()
    if args.command == "push":
        push(args.server, args.kind, args.file)
    elif args.command == "sign-up":
        answers = dict(a.split("=", 1) for a in args.answer)
        fields = {"name": args.name, "phone": args.phone, "wechat_id": args.wechat_id}
        sign_up(args.server, args.code_url, {**fields, **{f"q_{k}": v for k, v in answers.items()}})
    else:
        print(contact_id(json.load(sys.stdin), args.who))


if __name__ == "__main__":
    main()
