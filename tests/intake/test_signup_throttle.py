"""The sign-up brake's sliding windows, per code and per client address."""

from __future__ import annotations

from crm.intake.signup_throttle import Admission, SignupThrottle


def test_the_window_slides_per_code_and_per_address():
    throttle = SignupThrottle(per_code=3, per_address=2, window_seconds=60)
    assert throttle.admit("c1", "a", now=0).ok
    assert throttle.admit("c1", "a", now=10).ok
    assert throttle.admit("c1", "a", now=20) == Admission(False, 40)  # a's first slides out at 60
    assert throttle.admit("c1", "b", now=20).ok  # the code's third
    assert throttle.admit("c1", "c", now=30) == Admission(False, 30)  # the code is full until 60
    assert throttle.admit("c2", "c", now=30).ok  # another code, another address
    assert throttle.admit("c1", "c", now=60.5).ok  # the code's first sign-up slid out
    assert throttle.admit("c1", "a", now=70.5).ok  # and a's two as well


def test_refused_attempts_are_not_counted():
    throttle = SignupThrottle(per_code=100, per_address=1, window_seconds=60)
    assert throttle.admit("c1", "a", now=0).ok
    for second in range(1, 59):
        assert not throttle.admit("c1", "a", now=second).ok
    assert throttle.admit("c1", "a", now=60).ok  # refusals did not extend the wait


def test_addresses_that_went_quiet_are_forgotten():
    throttle = SignupThrottle(per_code=10**9, per_address=1, window_seconds=60)
    for n in range(10_000):
        assert throttle.admit("c1", f"10.0.{n // 256}.{n % 256}", now=n / 1000).ok
    for n in range(10_000):
        assert throttle.admit("c1", f"10.1.{n // 256}.{n % 256}", now=100 + n / 1000).ok
    assert len(throttle._hits) < 12_000  # the first 10,000 addresses were swept out
