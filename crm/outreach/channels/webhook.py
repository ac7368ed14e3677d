"""A signed generic webhook: POST JSON with an HMAC-SHA256 signature and an Idempotency-Key.

Signed the way Qunflow's own webhooks check pushes (:mod:`crm.intake.signatures`):
``X-Qunflow-Timestamp`` and ``X-Qunflow-Signature: sha256=HMAC(secret, "<timestamp>.<body>")``,
so a receiver can refuse a captured request replayed later.
"""

from __future__ import annotations

import json
import time

import httpx
from pydantic import SecretStr

from crm.core.errors import PermanentChannelError, TransientChannelError
from crm.intake.signatures import signed_headers
from crm.outreach.channels.base import OutgoingMessage, SendResult

KEY_HEADER = "Idempotency-Key"


class WebhookChannel:
    """The receiver must dedupe on Idempotency-Key and answer GET ?idempotency_key=K (200/404)."""

    name = "webhook"
    can_lookup = True

    def __init__(self, url: str, secret: SecretStr, *, client: httpx.Client | None = None):
        self.url = url
        self._secret = secret
        self._client = client or httpx.Client(timeout=10.0)
        self._own_client = client is None

    def __repr__(self) -> str:
        return f"WebhookChannel({self.url})"

    def send(self, message: OutgoingMessage) -> SendResult:
        """POST the message; 5xx, 429 and network errors are transient, other 4xx permanent."""
        body = json.dumps(
            {
                "idempotency_key": message.idempotency_key,
                "contact_id": message.contact_id,
                "address": message.address,
                "account": message.account,
                "action": message.action,
                "subject": message.subject,
                "text": message.text,
                "meta": message.meta,
            },
            ensure_ascii=False,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            **signed_headers(body, self._secret, int(time.time())),  # signed as it is sent
            KEY_HEADER: message.idempotency_key,
        }
        try:
            resp = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransientChannelError(f"webhook {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TransientChannelError(f"webhook HTTP {resp.status_code}: {resp.text[:200]}")
        if resp.status_code >= 400:
            raise PermanentChannelError(f"webhook HTTP {resp.status_code}: {resp.text[:200]}")
        return SendResult(provider_id=_provider_id(resp, message))

    def lookup(self, message: OutgoingMessage) -> SendResult | None:
        """Ask the receiver whether it already accepted this idempotency key."""
        try:
            resp = self._client.get(self.url, params={"idempotency_key": message.idempotency_key})
        except httpx.HTTPError as exc:
            raise TransientChannelError(f"webhook lookup {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise TransientChannelError(f"webhook lookup HTTP {resp.status_code}")
        return SendResult(provider_id=_provider_id(resp, message))

    def close(self) -> None:
        """Close the HTTP client if we made it."""
        if self._own_client:
            self._client.close()


def _provider_id(resp: httpx.Response, message: OutgoingMessage) -> str:
    try:
        data = resp.json()
    except ValueError:
        data = {}
    value = data.get("id") if isinstance(data, dict) else None
    return str(value) if value is not None else f"webhook:{message.idempotency_key}"
