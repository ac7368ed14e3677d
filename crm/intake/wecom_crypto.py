"""WeCom's callback encryption (加解密方案说明): the message signature and the AES envelope.

``msg_signature`` is the SHA1 hex digest of the token, timestamp, nonce and ciphertext sorted
and joined. The AES key is Base64-decode(EncodingAESKey + "="), 32 bytes; AES-256-CBC with
the key's first 16 bytes as IV and PKCS#7 padding to 32-byte blocks. The plaintext is 16
random bytes, the message length as 4 bytes in network order, the message, and the receive
id (the corp id), which must be ours.

Errors::

    QunflowError
    └── CallbackRefused          http_status 400: not a WeCom envelope we can open
        └── BadSignature         http_status 401: signed with another token, or not at all
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from crm.core.errors import BadValue, QunflowError

BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16
KEY_CHARS = 43
MAX_CIPHERTEXT = 700_000  # characters of Base64; well under the web guard's body limit


class CallbackRefused(QunflowError):
    """A callback we cannot open: malformed, undecryptable, or for another corp."""

    http_status = 400


class BadSignature(CallbackRefused):
    """``msg_signature`` does not sign this timestamp, nonce and ciphertext with our token."""

    http_status = 401


def signature(token: str, timestamp: str, nonce: str, ciphertext: str) -> str:
    """WeCom's msg_signature of one request."""
    joined = "".join(sorted([token, timestamp, nonce, ciphertext]))
    # SHA1 is what WeCom signs with; the protocol, not a choice.
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()  # noqa: S324


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey; ValueError if it is not one."""
    if len(encoding_aes_key) != KEY_CHARS or not encoding_aes_key.isalnum():
        raise BadValue("error.intake.aes_key_shape", length=KEY_CHARS)
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise BadValue("error.intake.aes_key_base64") from exc
    if len(key) != 32:
        raise BadValue("error.intake.aes_key_size")
    return key


@dataclass(frozen=True)
class WeComCrypto:
    """Sign, encrypt and decrypt callbacks for one token, key and receive id."""

    token: str
    key: bytes
    receive_id: str

    @classmethod
    def from_settings(cls, token: str, encoding_aes_key: str, receive_id: str) -> WeComCrypto:
        """Built from the values the admin console shows (ValueError on a malformed key)."""
        return cls(token, aes_key(encoding_aes_key), receive_id)

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: bytes, *, random16: bytes | None = None) -> str:
        """The Base64 ciphertext WeCom would send for ``message``."""
        body = (
            (random16 or os.urandom(16))
            + struct.pack(">I", len(message))
            + message
            + self.receive_id.encode("utf-8")
        )
        pad = BLOCK - len(body) % BLOCK
        encryptor = self._cipher().encryptor()
        data = encryptor.update(body + bytes([pad]) * pad) + encryptor.finalize()
        return base64.b64encode(data).decode("ascii")

    def decrypt(self, ciphertext: str) -> bytes:
        """The message inside ``ciphertext``; CallbackRefused if it is not ours or not whole."""
        if len(ciphertext) > MAX_CIPHERTEXT:
            raise CallbackRefused("error.intake.cipher_too_long", limit=MAX_CIPHERTEXT)
        try:
            data = base64.b64decode(ciphertext, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CallbackRefused("error.intake.cipher_base64") from exc
        if not data or len(data) % 16:
            raise CallbackRefused("error.intake.cipher_blocks")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CallbackRefused("error.intake.cipher_padding")
        content = plain[16:-pad]
        if len(content) < 4:
            raise CallbackRefused("error.intake.cipher_short")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise CallbackRefused("error.intake.cipher_length")
        message, receive_id = content[4 : 4 + length], content[4 + length :]
        if not hmac.compare_digest(receive_id, self.receive_id.encode("utf-8")):
            raise CallbackRefused("error.intake.cipher_receiver")
        return message

    def check(self, msg_signature: str | None, timestamp: str, nonce: str, ciphertext: str) -> None:
        """BadSignature unless ``msg_signature`` signs this request with our token."""
        expected = signature(self.token, timestamp, nonce, ciphertext)
        given = (msg_signature or "").strip().lower()
        if not given.isascii() or not hmac.compare_digest(given.encode(), expected.encode()):
            raise BadSignature("error.intake.bad_signature")

    def open(self, msg_signature: str | None, timestamp: str, nonce: str, ciphertext: str) -> bytes:
        """Check the signature, then decrypt: the message of a genuine callback."""
        self.check(msg_signature, timestamp, nonce, ciphertext)
        return self.decrypt(ciphertext)

    def seal(self, message: bytes, timestamp: str, nonce: str) -> tuple[str, str]:
        """(ciphertext, msg_signature) for ``message``: what WeCom sends, or a passive reply."""
        ciphertext = self.encrypt(message)
        return ciphertext, signature(self.token, timestamp, nonce, ciphertext)
