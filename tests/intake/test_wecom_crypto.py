"""WeCom callback crypto agrees with wechatpy's independent implementation, both ways."""

from __future__ import annotations

import base64
import os
import random
import string

import pytest
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.utils import to_text

from crm.intake.wecom_crypto import (
    BadSignature,
    CallbackRefused,
    WeComCrypto,
    aes_key,
    signature,
)

TOKEN = "QDG6eK"
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP = "wx5823bf96d3bd56c7"


def _ours() -> WeComCrypto:
    return WeComCrypto.from_settings(TOKEN, KEY, CORP)


def test_documented_example_url_verification() -> None:
    """The example in WeCom's documentation: this signed echostr holds "1616140317555161061"."""
    echostr = (
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    )
    sig = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    assert _ours().open(sig, "1409659589", "263014780", echostr) == b"1616140317555161061"


@pytest.mark.parametrize("seed", range(6))
def test_random_messages_of_many_lengths_agree_with_wechatpy(seed: int) -> None:
    rng = random.Random(seed)
    # As the admin console makes them: 43 characters of a-z, A-Z, 0-9.
    key = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(43))
    ours = WeComCrypto.from_settings(TOKEN, key, CORP)
    theirs = PrpCrypto(base64.b64decode(key + "="))
    for length in [0, 1, 15, 16, 31, 32, 33, 63, 64, 100, 255, 1000, 4095, rng.randint(1, 9000)]:
        text = "".join(rng.choice("abc<>&中文\U0001f600 ") for _ in range(length))
        data = text.encode("utf-8")
        # ours -> wechatpy
        assert to_text(theirs.decrypt(ours.encrypt(data), CORP)) == text
        # wechatpy -> ours
        assert ours.decrypt(to_text(theirs.encrypt(text, CORP))) == data
        ts, nonce = str(rng.randint(10**9, 2 * 10**9)), str(rng.randint(1, 10**9))
        cipher, sig = ours.seal(data, ts, nonce)
        assert WeChatCrypto(TOKEN, key, CORP).check_signature(sig, ts, nonce, cipher) == text


def test_signature_matches_wechatpy_envelope() -> None:
    """A whole encrypted XML reply made by wechatpy opens with our signature check."""
    theirs = WeChatCrypto(TOKEN, KEY, CORP)
    envelope = theirs.encrypt_message("<xml><Event>x</Event></xml>", "nonce1", "1700000000")
    import xml.etree.ElementTree as ET

    root = ET.fromstring(envelope)
    cipher = root.findtext("Encrypt") or ""
    sig = root.findtext("MsgSignature") or ""
    assert signature(TOKEN, "1700000000", "nonce1", cipher) == sig
    assert _ours().open(sig, "1700000000", "nonce1", cipher) == b"<xml><Event>x</Event></xml>"


def test_refusals_name_what_is_wrong() -> None:
    ours = _ours()
    cipher, sig = ours.seal(b"hello", "1", "2")
    with pytest.raises(BadSignature):
        ours.open(sig[:-1] + ("0" if sig[-1] != "0" else "1"), "1", "2", cipher)
    with pytest.raises(BadSignature):
        ours.open(None, "1", "2", cipher)
    other_corp = WeComCrypto.from_settings(TOKEN, KEY, "ww-other")
    with pytest.raises(CallbackRefused, match="receive id"):
        other_corp.decrypt(cipher)
    other_key = WeComCrypto(TOKEN, os.urandom(32), CORP)
    with pytest.raises(CallbackRefused):
        other_key.decrypt(cipher)
    with pytest.raises(CallbackRefused, match="Base64"):
        ours.decrypt("not base64 !!")
    with pytest.raises(CallbackRefused, match="blocks"):
        ours.decrypt(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="43"):
        aes_key("tooshort")
