"""The outbound webhook is signed like the pushes Qunflow accepts: timestamp and HMAC."""

from __future__ import annotations

import time

from pydantic import SecretStr

from crm.intake.signatures import TIMESTAMP_HEADER, sign_untimed, verify
from crm.outreach.channels.base import OutgoingMessage
from crm.outreach.channels.webhook import WebhookChannel
from tests.fakes.webhook_receiver import webhook_receiver

SECRET = "outbound-secret-for-tests"


def test_a_sent_message_carries_a_timestamped_signature_of_its_body():
    message = OutgoingMessage(
        outbox_id=1, idempotency_key="k-1", contact_id=7, channel="webhook", text="你好"
    )
    with webhook_receiver() as (url, got):
        channel = WebhookChannel(url, SecretStr(SECRET))
        try:
            channel.send(message)
        finally:
            channel.close()
    body, headers = got.signed["k-1"]
    stamp, signature = headers[TIMESTAMP_HEADER], headers["X-Qunflow-Signature"]

    def check(secret: str, sent_body: bytes = body) -> bool:
        return verify(
            sent_body,
            signature=signature,
            timestamp=stamp,
            secret=secret,
            now=time.time(),
            tolerance=300,
        ).ok

    assert check(SECRET)
    assert not check("another-secret-for-tests")
    assert not check(SECRET, sent_body=body + b" ")
    assert signature != sign_untimed(body, SECRET)  # the body alone is not what was signed
    # Replayed an hour later, the same request is refused by a receiver checking the time.
    late = verify(
        body,
        signature=signature,
        timestamp=stamp,
        secret=SECRET,
        now=int(stamp) + 3600,
        tolerance=300,
    )
    assert not late.ok and "behind" in late.reason
