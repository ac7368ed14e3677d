"""WeCom mass-message limits as data: allowances and the next window, in local time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from crm.outreach.wecom_limits import MASS_LIMITS, Per, mass_limit, next_window

SH = ZoneInfo("Asia/Shanghai")


def test_every_limit_names_its_source_and_date() -> None:
    assert all(m.source and len(m.date) == 7 and m.documented for m in MASS_LIMITS)
    assert [m.per for m in MASS_LIMITS if m.in_force] == [Per.MONTH, Per.WEEK, Per.DAY]


def test_month_allowance_is_the_number_of_days_of_the_local_month() -> None:
    month = mass_limit("month")
    # 2026-02-28 17:00 UTC is already March 1st in Shanghai.
    assert month.allowance(datetime(2026, 2, 28, 15, 0, tzinfo=UTC), SH) == 28
    assert month.allowance(datetime(2026, 2, 28, 17, 0, tzinfo=UTC), SH) == 31
    assert mass_limit("week").allowance(datetime(2026, 2, 1, tzinfo=UTC), SH) == 7


def test_next_window_starts_at_local_midnight() -> None:
    now = datetime(2026, 12, 31, 15, 30, tzinfo=UTC)  # Thursday 23:30 in Shanghai
    new_year = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # 2027-01-01 00:00 in Shanghai
    assert next_window(now, SH, "day") == new_year
    assert next_window(now, SH, "month") == new_year
    assert next_window(now, SH, "week") == datetime(2027, 1, 3, 16, 0, tzinfo=UTC)  # Monday


def test_every_wecom_reason_key_is_in_the_catalog_in_both_languages() -> None:
    from crm.outreach.churn import CHURN_SKIP
    from crm.outreach.confirmations import MASS_LIMIT_REACHED
    from crm.outreach.wecom_welcome import WelcomeOutcome
    from flows.i18n import LANGS, translator

    keys = {o.value for o in WelcomeOutcome} - {"sent", "welcome_duplicate"}
    keys |= {CHURN_SKIP, MASS_LIMIT_REACHED, "unknown_code"}
    for lang in LANGS:
        t = translator(lang)
        missing = {key for key in keys if t(key) == key}
        assert not missing, missing
