"""What every CLI command shares: settings, the engine, JSON or table output, errors."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from enum import Enum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.cells import cell_len
from sqlalchemy import Engine

import flows.i18n  # noqa: F401  (attaches the catalog's English to str(error))
from crm.core.database_url import database_url_from_environment
from crm.core.db import check_connection, make_engine
from crm.core.errors import QunflowError
from crm.core.migrate import require_current
from flows.cli.lang import chosen_lang

if TYPE_CHECKING:
    from crm.core.settings import Settings


@cache
def settings() -> Settings:
    """The settings for this process (read once, on first use)."""
    # pydantic loads only for a command that reads more than the database it talks to.
    from crm.core.settings import get_settings

    return get_settings()


def database_url() -> str:
    """The database to use: from a plain environment at once, else from all the settings."""
    quick = database_url_from_environment(os.environ, Path(".env"))
    return quick if quick is not None else settings().sqlalchemy_url


# Times print in the team's zone (QUNFLOW_TIMEZONE), as the web shows them; the root --utc
# switch prints UTC instead, for scripts.
_UTC_OUTPUT = {"on": False}


def print_utc(on: bool) -> None:
    """Print times in UTC instead of the team's zone (the root ``--utc`` switch)."""
    _UTC_OUTPUT["on"] = on


def output_zone() -> tzinfo:
    """The zone times are printed in."""
    return UTC if _UTC_OUTPUT["on"] else settings().zone


def when(value: datetime | None) -> str:
    """A stored moment as a reader wants it: local time with its offset, or UTC."""
    if value is None:
        return ""
    if value.tzinfo is None:  # stored moments are UTC
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(output_zone())
    if _UTC_OUTPUT["on"]:
        return f"{local:%Y-%m-%d %H:%M} UTC"
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def lang() -> str:
    """The language tables and lines are printed in: zh-CN or en."""
    return chosen_lang() or settings().lang


@cache
def _catalog(language: str) -> Callable[[str], str | None]:
    # The one message catalog (gettext); imported only when a command prints words.
    from flows.i18n import translator

    words = translator("en" if language == "en" else "zh")
    return lambda key: found if (found := words(key)) != key else None


def t(key: str, **params: Any) -> str:
    """The catalog's words for ``key`` in the reader's language; a missing key shows itself."""
    text = _catalog(lang())(key)
    if text is None:
        return key
    return text.format(**params) if params else text


def error_line(error: QunflowError) -> str:
    """A Qunflow error in the reader's language (English when the settings themselves are bad)."""
    from flows.i18n import error_text

    try:
        language = lang()
    except QunflowError:  # the error may be that very setting
        language = "en"
    return error_text(error, "en" if language == "en" else "zh")


def has_word(key: str) -> bool:
    """Whether the catalog has words for ``key``."""
    return _catalog(lang())(key) is not None


def word(prefix: str, code: Any) -> str:
    """A stored code in words (``tier``, ``prospect`` → 意向); an unknown code as it is."""
    if code is None or code == "":
        return ""
    value = code.value if isinstance(code, Enum) else str(code)
    key = f"{prefix}.{value}"
    return t(key) if has_word(key) else value


def coded(rows: Iterable[dict[str, Any]], **prefixes: str) -> list[dict[str, Any]]:
    """Rows with the codes of these columns in words (``coded(rows, tier="tier")``)."""
    return [
        {k: word(prefixes[k], v) if k in prefixes else v for k, v in row.items()} for row in rows
    ]


def headings(*columns: str) -> dict[str, str]:
    """Column keys with their headings: ``cli.col.KEY``, else the report's ``col.KEY``."""
    out = {}
    for column in columns:
        own = f"cli.col.{column}"
        out[column] = t(own) if has_word(own) else t(f"col.{column}")
    return out


def warn_if_loopback(cfg: Settings) -> None:
    """Say so when QR codes and message links would point at this machine only."""
    note = cfg.loopback_note()
    if note:
        typer.echo(note, err=True)


@cache
def database() -> Engine:
    """The configured database, whatever its schema; fails with one line if unreachable."""
    eng = make_engine(database_url())
    check_connection(eng)
    return eng


@cache
def engine() -> Engine:
    """The CRM database engine; fails with one line if unreachable or its schema is not current."""
    eng = database()
    require_current(eng)
    return eng


def _default(value: Any) -> Any:
    # Services return typed results (dataclasses, enums); they become JSON only here.
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def json_text(data: Any) -> str:
    """One JSON document as text (Chinese kept readable, dates in ISO form)."""
    return json.dumps(data, ensure_ascii=False, default=_default, indent=2) + "\n"


def print_json(data: Any) -> None:
    """One JSON document on stdout (UTF-8)."""
    sys.stdout.write(json_text(data))


def print_table(
    rows: Sequence[dict[str, Any]], columns: Iterable[str] | Mapping[str, str] | None = None
) -> None:
    """A plain aligned table; columns line up whatever the script (CJK counts double).

    ``columns`` maps each key to its heading (see :func:`headings`); plain keys are headed
    by their catalog words.
    """
    rows = list(rows)
    keys = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    titles = columns if isinstance(columns, Mapping) else headings(*keys)
    if not rows:
        typer.echo(t("none"))
        return
    cells = [[_cell(r.get(c)) for c in keys] for r in rows]
    heads = [titles[c] for c in keys]
    widths = [max(_width(c), *(_width(row[i]) for row in cells)) for i, c in enumerate(heads)]
    typer.echo("  ".join(_pad(c, w) for c, w in zip(heads, widths, strict=True)).rstrip())
    typer.echo("  ".join("-" * w for w in widths))
    for row in cells:
        typer.echo("  ".join(_pad(v, w) for v, w in zip(row, widths, strict=True)).rstrip())


# Tabs, line breaks and any other control character in a stored value (a nickname may keep
# its tab or newline) would break the table or move the terminal's cursor: shown as a space.
_CONTROLS = dict.fromkeys([*range(0x00, 0x20), *range(0x7F, 0xA0)], " ")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, bool):
        return t("cli.yes") if value else t("cli.no")
    return str(value).translate(_CONTROLS)


def _width(text: str) -> int:
    # Rich's cell widths: CJK and emoji take two cells, combining marks none.
    return cell_len(text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
