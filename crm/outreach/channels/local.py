"""Local channels: console and JSONL file (dry runs, provider-side record) and null (benchmarks)."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import TextIO

from crm.outreach.channels.base import OutgoingMessage, SendResult


class FileChannel:
    """Appends each message as one JSON line; lookup scans the file for the idempotency key."""

    can_lookup = True

    def __init__(self, path: Path | None, *, name: str = "file", stream: TextIO | None = None):
        self.name = name
        self.path = path
        self._stream = stream
        self._lock = threading.Lock()

    def _line(self, message: OutgoingMessage) -> str:
        doc = {
            "idempotency_key": message.idempotency_key,
            "outbox_id": message.outbox_id,
            "contact_id": message.contact_id,
            "address": message.address,  # whom an operator sends it to by hand (send list)
            "group": message.meta.get("group"),
            "channel": message.channel,
            "account": message.account,
            "action": message.action,
            "subject": message.subject,
            "text": message.text,
        }
        return json.dumps(doc, ensure_ascii=False) + "\n"

    def send(self, message: OutgoingMessage) -> SendResult:
        """Write the message; flushed (and fsynced for files) before returning."""
        line = self._line(message)
        with self._lock:
            if self.path is None:
                stream = self._stream or sys.stderr
                stream.write(line)
                stream.flush()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line)
                    fh.flush()
                    os.fsync(fh.fileno())
        return SendResult(provider_id=f"{self.name}:{message.idempotency_key}")

    def lookup(self, message: OutgoingMessage) -> SendResult | None:
        """Whether a line with this key is already in the file."""
        if self.path is None or not self.path.exists():
            return None
        needle = f'"idempotency_key": "{message.idempotency_key}"'
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                if needle in line:
                    return SendResult(provider_id=f"{self.name}:{message.idempotency_key}")
        return None

    def close(self) -> None:
        """Nothing to release."""


class NullChannel:
    """Accepts everything instantly: measures dispatch overhead without a provider."""

    name = "null"
    can_lookup = True

    def send(self, message: OutgoingMessage) -> SendResult:
        """Pretend to deliver."""
        return SendResult(provider_id=f"null:{message.idempotency_key}")

    def lookup(self, message: OutgoingMessage) -> SendResult | None:
        """The null provider keeps nothing, so nothing was accepted."""
        return None

    def close(self) -> None:
        """Nothing to release."""
