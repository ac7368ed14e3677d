"""Time arithmetic (pure): durations, local wall times, send windows and quiet hours.

Every function takes aware datetimes and a ZoneInfo, and returns aware UTC datetimes, so
"the evening before at 20:00" lands on the contact's wall clock across midnight and zones.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from crm.core.errors import InputError

_PART = re.compile(r"(\d+)([dhms])")
_UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(text: str) -> timedelta:
    """Parse "-1h", "10m", "1d12h" into a timedelta; ValueError when malformed."""
    raw = text.strip().lower()
    sign = -1 if raw.startswith("-") else 1
    body = raw.lstrip("+-")
    parts = _PART.findall(body)
    if not body or "".join(n + u for n, u in parts) != body:
        raise ValueError(f"not a duration: {text!r} (e.g. -1h, 10m, 1d12h)")
    return timedelta(seconds=sign * sum(int(n) * _UNIT[u] for n, u in parts))


def parse_expiry(text: str, *, longest: timedelta | None = None) -> timedelta:
    """A positive lifetime such as "7d", "12h", "30m" (QR codes, links); else InputError."""
    try:
        value = parse_duration(text or "")
    except ValueError as exc:
        raise InputError("error.core.duration_bad", text=text) from exc
    if value <= timedelta(0):
        raise InputError("error.core.duration_not_positive", text=text)
    if longest is not None and value > longest:
        raise InputError("error.core.duration_too_long", text=text, days=longest.days)
    return value


def in_span(t: time, start: time, end: time) -> bool:
    """Whether a wall-clock time lies in [start, end); spans may wrap past midnight."""
    if start <= end:
        return start <= t < end
    return t >= start or t < end


def next_wall_time(after: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first instant strictly after ``after`` whose local wall clock shows ``at``."""
    local = after.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=zone)
    return candidate.astimezone(UTC)


def fit_window(
    due: datetime,
    zone: ZoneInfo,
    *,
    window: tuple[time, time] | None = None,
    quiet: tuple[time, time] | None = None,
) -> datetime:
    """Move ``due`` forward to the first instant inside the send window and outside quiet hours."""
    current = due.astimezone(UTC)
    for _ in range(6):  # at most: out of quiet → into window → out of quiet again
        t = current.astimezone(zone).time()
        if quiet is not None and in_span(t, *quiet):
            current = next_wall_time(current, quiet[1], zone)
            continue
        if window is not None and not in_span(t, *window):
            current = next_wall_time(current, window[0], zone)
            continue
        return current
    return current


def at_local(anchor: datetime, day_offset: int, at: time, zone: ZoneInfo) -> datetime:
    """The instant ``day_offset`` local days from the anchor's local date, at wall time ``at``."""
    local_day: date = anchor.astimezone(zone).date() + timedelta(days=day_offset)
    return datetime.combine(local_day, at, tzinfo=zone).astimezone(UTC)


def weekly_occurrences(
    start: datetime, end: datetime, weekdays: list[str], at: time, zone: ZoneInfo
) -> list[datetime]:
    """Every local ``at`` on the given weekdays with start <= instant <= end (UTC)."""
    wanted = {WEEKDAYS.index(d) for d in weekdays}
    out = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        if day.weekday() in wanted:
            instant = datetime.combine(day, at, tzinfo=zone).astimezone(UTC)
            if start <= instant <= end:
                out.append(instant)
        day += timedelta(days=1)
    return out
