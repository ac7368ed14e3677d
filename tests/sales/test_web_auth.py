"""Pure parts of the workspace's security and language handling (no database)."""

from __future__ import annotations

import pytest

from crm.core.errors import ConfigError
from crm.core.settings import get_settings
from flows.i18n import normalize_lang, translator
from flows.web.auth import LoginThrottle, client_address, parse_networks, tokens_match
from flows.web.common import safe_next


def test_throttle_backs_off_per_name_and_address_without_locking_the_name():
    t = LoginThrottle(pair_free=3, address_free=5, base_delay=1.0, max_delay=8.0)
    for i in range(3):
        assert t.admit("alice", "10.0.0.1", now=float(i)) == 0  # three free tries
    assert t.admit("alice", "10.0.0.1", now=2.5) == 0.5  # then 1 s after the latest
    assert t.admit("ALICE", "10.0.0.1", now=2.5) == 0.5  # names are case-insensitive
    # The same name from another address is not slowed: no lockout of the real owner.
    assert t.admit("alice", "10.0.0.9", now=2.5) == 0
    t.succeeded("alice", "10.0.0.9")
    # Each further failure doubles the wait, up to the cap.
    waits, now = [], 3.0
    for _ in range(6):
        assert t.admit("alice", "10.0.0.1", now=now) == 0
        waits.append(t.admit("alice", "10.0.0.1", now=now))
        now += waits[-1]
    assert waits == [2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    # A correct password clears the pair.
    t.succeeded("alice", "10.0.0.1")
    assert t.admit("alice", "10.0.0.1", now=now) == 0


def test_throttle_slows_an_address_trying_many_names():
    t = LoginThrottle(pair_free=3, address_free=5, base_delay=1.0, max_delay=8.0)
    for i in range(5):
        assert t.admit(f"user{i}", "10.0.0.1", now=float(i)) == 0
    assert t.admit("dave", "10.0.0.1", now=4.0) == 1.0  # the address used its five
    assert t.admit("dave", "10.0.0.2", now=4.0) == 0  # another address is not slowed
    # Successful logins do not use up an office's allowance.
    for i in range(50):
        assert t.admit("erin", "10.0.0.3", now=float(i)) == 0
        t.succeeded("erin", "10.0.0.3")
    # Failures are forgotten after a quiet spell.
    assert t.admit("dave", "10.0.0.1", now=4.0 + t.forget) == 0


def test_concurrent_guesses_are_counted_before_the_password_is_checked():
    t = LoginThrottle(pair_free=1, address_free=100)
    assert t.admit("alice", "10.0.0.1", now=0.0) == 0  # in flight, not yet known to fail
    assert t.admit("alice", "10.0.0.1", now=0.0) > 0  # a parallel guess must wait


def test_throttle_forgets_names_whose_failures_are_old():
    t = LoginThrottle(pair_free=3, address_free=10**9, forget_seconds=60)
    for i in range(20_000):  # a spray of made-up names from one address
        t.admit(f"user{i}", "10.0.0.1", now=float(i))
    assert len(t._keys) < 3 * 4096  # only the last minute's names (and the address)
    for i in range(3):
        t.admit("alice", "10.0.0.2", now=20_000.0 + i)
    assert t.admit("alice", "10.0.0.2", now=20_002.5) == 0.5  # recent failures count


def test_csrf_tokens_compare_exactly():
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd")
    assert not tokens_match("", "")
    assert not tokens_match(None, "abc")


def test_redirect_targets_stay_local():
    assert safe_next("/prospects/3", "/queue") == "/prospects/3"
    for bad in ("https://evil.example/", "//evil.example", "/\\evil", "", None):
        assert safe_next(bad, "/queue") == "/queue"


def test_languages_and_words():
    assert normalize_lang("en-US") == "en" and normalize_lang("zh-CN") == "zh"
    assert normalize_lang("fr") is None
    assert translator("en")("claim") == "Claim" and translator("zh")("claim") == "认领"
    assert translator("en")("no-such-key") == "no-such-key"


def test_client_address_believes_only_trusted_proxies():
    proxies = parse_networks("10.0.0.0/8, 2001:db8::1")
    # No trusted proxy: the peer, whatever the header says.
    assert client_address("192.0.2.1", "203.0.113.9", ()) == "192.0.2.1"
    assert client_address("192.0.2.1", "203.0.113.9", proxies) == "192.0.2.1"
    # Behind trusted proxies: the nearest address that is not one of them.
    assert client_address("10.1.2.3", "203.0.113.9", proxies) == "203.0.113.9"
    assert client_address("10.1.2.3", "198.51.100.1, 203.0.113.9, 10.0.0.5", proxies) == (
        "203.0.113.9"
    )
    assert client_address("2001:db8::1", "203.0.113.9", proxies) == "203.0.113.9"
    assert client_address("10.1.2.3", None, proxies) == "10.1.2.3"
    assert client_address("10.1.2.3", "not-an-ip", proxies) == "10.1.2.3"
    assert client_address(None, None, proxies) == "unknown"
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_networks("10.0.0.1,10.0.0.300")


def test_a_bad_trusted_proxy_setting_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"QUNFLOW_TRUSTED_PROXIES: not an IP .*'proxy\.lan'"):
        get_settings(data_dir=tmp_path, trusted_proxies="10.0.0.1, proxy.lan")
    assert get_settings(data_dir=tmp_path, trusted_proxies=" 10.0.0.1 ,").trusted_proxies == (
        "10.0.0.1"
    )
