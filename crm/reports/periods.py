"""Named special periods (春节, 双十一, a campaign window) that reports can be asked for.

Periods are data: the bundled ``crm/reports/periods.toml`` or an operator's own file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from crm.core.errors import InputError

BUNDLED = Path(__file__).resolve().parent / "periods.toml"


@dataclass(frozen=True)
class Period:
    """A named range of local days: ``start`` included, ``end`` not."""

    name: str
    title: str
    start: date
    end: date
    aliases: tuple[str, ...] = field(default_factory=tuple)


def load_periods(path: Path | None = None) -> list[Period]:
    """Read the periods file (default: the bundled one); a bad entry raises InputError."""
    source = path or BUNDLED
    try:
        doc = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError("error.reports.periods_missing", path=str(source)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError("error.reports.periods_toml", path=str(source), detail=str(exc)) from exc
    periods: list[Period] = []
    for i, entry in enumerate(doc.get("period", []), start=1):
        name, start, end = entry.get("name"), entry.get("start"), entry.get("end")
        if not isinstance(name, str) or not name:
            raise InputError("error.reports.period_no_name", path=str(source), position=i)
        if not isinstance(start, date) or not isinstance(end, date):
            raise InputError("error.reports.period_no_dates", path=str(source), name=name)
        if end <= start:
            raise InputError("error.reports.period_backwards", path=str(source), name=name)
        aliases = tuple(str(a) for a in entry.get("aliases", []))
        periods.append(Period(name, str(entry.get("title", name)), start, end, aliases))
    return periods


def find_period(name: str, path: Path | None = None) -> Period:
    """The period called ``name`` (or one of its aliases); InputError lists the known ones."""
    periods = load_periods(path)
    for period in periods:
        if name == period.name or name in period.aliases:
            return period
    if not periods:
        raise InputError("error.reports.period_unknown_none", name=name)
    raise InputError(
        "error.reports.period_unknown", name=name, known=", ".join(p.name for p in periods)
    )
