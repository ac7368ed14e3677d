"""HMAC signatures of pushed request bodies (``X-Qunflow-Signature: sha256=<hex>``)."""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

SIGNATURE_HEADER = "X-Qunflow-Signature"
_PREFIX = "sha256="


def _key(secret: SecretStr | str) -> bytes:
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return raw.encode("utf-8")


def sign(body: bytes, secret: SecretStr | str) -> str:
    """The header value a sender puts on ``body``: ``sha256=`` + hex HMAC-SHA256."""
    return _PREFIX + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secret: SecretStr | str) -> bool:
    """True only if ``header`` is the signature of the exact raw ``body`` (constant-time)."""
    if not header:
        return False
    header = header.strip()
    if not header.lower().startswith(_PREFIX):
        return False
    expected = sign(body, secret)
    # compare_digest on ASCII bytes: no early exit that would leak how much matched.
    given = _PREFIX + header[len(_PREFIX) :].lower()
    try:
        return hmac.compare_digest(given.encode("ascii"), expected.encode("ascii"))
    except UnicodeEncodeError:
        return False
