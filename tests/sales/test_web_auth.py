"""Pure parts of the workspace's security and language handling (no database)."""

from __future__ import annotations

from flows.web.auth import LoginThrottle, tokens_match
from flows.web.common import safe_next
from flows.web.i18n import MESSAGES, normalize_lang, translator


def test_throttle_per_user_and_per_address_slides():
    t = LoginThrottle(per_user=3, per_address=5, window_seconds=60)
    for i in range(3):
        t.failed("alice", "10.0.0.1", now=float(i))
    assert t.blocked("alice", "10.0.0.9", now=3.0)  # the name is locked, from anywhere
    assert t.blocked("ALICE", "10.0.0.9", now=3.0)
    assert not t.blocked("bob", "10.0.0.2", now=3.0)
    t.failed("bob", "10.0.0.1", now=4.0)
    t.failed("carol", "10.0.0.1", now=5.0)
    assert t.blocked("dave", "10.0.0.1", now=6.0)  # the address used its five failures
    assert not t.blocked("alice", "10.0.0.9", now=61.5)  # oldest failures slid out
    t.succeeded("bob")
    assert not t.blocked("bob", "10.0.0.7", now=6.0)


def test_throttle_forgets_names_whose_failures_slid_out():
    t = LoginThrottle(per_user=3, per_address=10**9, window_seconds=60)
    for i in range(20_000):  # a spray of made-up names from one address
        t.failed(f"user{i}", "10.0.0.1", now=float(i))
    assert len(t._failures) < 3 * 4096  # only the last minute's names (and the address)
    t.failed("alice", "10.0.0.2", now=20_000.0)
    t.failed("alice", "10.0.0.2", now=20_001.0)
    t.failed("alice", "10.0.0.2", now=20_002.0)
    assert t.blocked("alice", "10.0.0.3", now=20_003.0)  # recent failures still count


def test_csrf_tokens_compare_exactly():
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd")
    assert not tokens_match("", "")
    assert not tokens_match(None, "abc")


def test_redirect_targets_stay_local():
    assert safe_next("/prospects/3", "/queue") == "/prospects/3"
    for bad in ("https://evil.example/", "//evil.example", "/\\evil", "", None):
        assert safe_next(bad, "/queue") == "/queue"


def test_both_languages_have_every_word():
    assert set(MESSAGES["zh"]) == set(MESSAGES["en"])
    assert normalize_lang("en-US") == "en" and normalize_lang("zh-CN") == "zh"
    assert normalize_lang("fr") is None
    assert translator("en")("claim") == "Claim" and translator("zh")("claim") == "认领"
    assert translator("en")("no-such-key") == "no-such-key"
