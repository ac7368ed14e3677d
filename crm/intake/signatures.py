"""HMAC signatures of pushed request bodies, bound to the time they were sent.

A sender puts ``X-Qunflow-Timestamp: <Unix seconds>`` and ``X-Qunflow-Signature: sha256=<hex
HMAC-SHA256 of "<timestamp>.<raw body>">`` on each request. A request is accepted while its
timestamp is within the tolerance of our clock (either direction), so a captured request
stops working minutes later. The old format, an HMAC of the body alone with no timestamp,
is accepted only when the receiver allows it explicitly (``accept_untimed``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

from pydantic import SecretStr

SIGNATURE_HEADER = "X-Qunflow-Signature"
TIMESTAMP_HEADER = "X-Qunflow-Timestamp"
_PREFIX = "sha256="
_MAX_TIMESTAMP_DIGITS = 12  # Unix seconds have 10 digits until the year 2286


class Check(StrEnum):
    """The outcome of checking a pushed request's signature."""

    OK = "ok"
    BAD_SIGNATURE = "bad_signature"
    BAD_TIMESTAMP = "bad_timestamp"
    NO_TIMESTAMP = "no_timestamp"
    OUTSIDE_TOLERANCE = "outside_tolerance"


@dataclass(frozen=True)
class Verdict:
    """Whether a request is genuine and current; ``reason`` is for the sender when it is not."""

    check: Check
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.check is Check.OK


def _key(secret: SecretStr | str) -> bytes:
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return raw.encode("utf-8")


def _mac(message: bytes, secret: SecretStr | str) -> str:
    return _PREFIX + hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: SecretStr | str, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    return _mac(f"{timestamp}.".encode("ascii") + body, secret)


def sign_untimed(body: bytes, secret: SecretStr | str) -> str:
    """The old signature of the body alone (accepted only where untimed pushes are allowed)."""
    return _mac(body, secret)


def signed_headers(body: bytes, secret: SecretStr | str, timestamp: int) -> dict[str, str]:
    """The two headers a sender puts on ``body`` sent at ``timestamp``."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(body, secret, timestamp)}


def _matches(header: str | None, expected: str) -> bool:
    """Constant-time comparison of a ``sha256=<hex>`` header with the expected value."""
    if not header:
        return False
    header = header.strip()
    if not header.lower().startswith(_PREFIX):
        return False
    given = _PREFIX + header[len(_PREFIX) :].lower()
    try:  # compare_digest on ASCII bytes: no early exit that would leak how much matched
        return hmac.compare_digest(given.encode("ascii"), expected.encode("ascii"))
    except UnicodeEncodeError:
        return False


def verify(
    body: bytes,
    *,
    signature: str | None,
    timestamp: str | None,
    secret: SecretStr | str,
    now: float,
    tolerance: float,
    accept_untimed: bool = False,
) -> Verdict:
    """Whether ``signature`` signs exactly ``body`` at ``timestamp``, within ``tolerance`` of
    ``now`` (Unix seconds); without a timestamp, only if ``accept_untimed`` and it signs the
    body alone."""
    if timestamp is None or not timestamp.strip():
        if not accept_untimed:
            return Verdict(
                Check.NO_TIMESTAMP,
                f"missing {TIMESTAMP_HEADER}: sign '<timestamp>.<body>' and send the timestamp",
            )
        if _matches(signature, sign_untimed(body, secret)):
            return Verdict(Check.OK)
        return Verdict(Check.BAD_SIGNATURE, "bad or missing signature")
    text = timestamp.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_TIMESTAMP_DIGITS):
        return Verdict(Check.BAD_TIMESTAMP, f"{TIMESTAMP_HEADER} must be Unix seconds (digits)")
    sent = int(text)
    if not _matches(signature, sign(body, secret, sent)):
        return Verdict(Check.BAD_SIGNATURE, "bad or missing signature")
    skew = now - sent
    if abs(skew) > tolerance:
        side = "behind" if skew > 0 else "ahead of"
        return Verdict(
            Check.OUTSIDE_TOLERANCE,
            f"{TIMESTAMP_HEADER} is {abs(skew):.0f} s {side} the receiver's clock "
            f"(allowed: {tolerance:.0f} s): sign each request when it is sent",
        )
    return Verdict(Check.OK)
