"""Reading a rules file: TOML → validated Rules, errors that name the line and the field."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from crm.core.errors import BadValue, InputError, Problem, os_problem
from crm.core.settings import Settings
from crm.routing.rules.model import Rules

DEFAULT_RULES = Path(__file__).resolve().parent / "rules.toml"

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-.\s])+?)\s*=""")


def load_rules(path: str | Path | None = None) -> Rules:
    """Load and validate a rules file; the bundled default when no path is given."""
    file = Path(path) if path is not None else DEFAULT_RULES
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            "error.routing.rules_unreadable", path=str(file), detail=os_problem(exc)
        ) from exc
    return parse_rules(text, name=str(file))


def configured_rules(settings: Settings, path: str | Path | None = None) -> Rules:
    """The rules in force: ``path`` if given, else ``settings.rules_path``, else the default."""
    return load_rules(path if path is not None else settings.rules_path)


def parse_rules(text: str, *, name: str = "rules.toml") -> Rules:
    """Validate rules given as TOML text; ``name`` is what error messages call the file."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError("error.routing.rules_not_toml", name=name, detail=str(exc)) from exc
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        raise InputError(
            "error.routing.rules_invalid", problems=_problems(exc, text, name)
        ) from exc


def _problems(exc: ValidationError, text: str, name: str) -> tuple[Problem, ...]:
    """Every invalid field with its line; our own checks by key, pydantic's in its words."""
    lines = key_lines(text)
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        cause = err.get("ctx", {}).get("error")
        detail: object = (
            cause.problem
            if isinstance(cause, BadValue)
            else str(err["msg"]).removeprefix("Value error, ")
        )
        at = dict(name=name, line=_line_for(lines, loc), detail=detail)
        if loc:
            field = ".".join(str(p) for p in loc)
            problems.append(Problem("error.routing.rules_field", **at, field=field))
        else:
            problems.append(Problem("error.routing.rules_top", **at))
    return tuple(problems)


def _split_key(raw: str) -> list[str]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s]+)', raw)
    return [a or b or c for a, b, c in parts]


def key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Where each key path is defined in a TOML text (tables, arrays of tables, keys)."""
    found: dict[tuple[str | int, ...], int] = {}
    array_counts: dict[tuple[str | int, ...], int] = {}
    table: tuple[str | int, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        header = _HEADER.match(line)
        if header and "=" not in stripped.split("]")[0]:
            path: tuple[str | int, ...] = tuple(_split_key(header.group(2)))
            if header.group(1) == "[[":
                index = array_counts.get(path, -1) + 1
                array_counts[path] = index
                found.setdefault(path, number)
                path = (*path, index)
            table = path
            found.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            found.setdefault((*table, *_split_key(key.group(1))), number)
    return found


def _line_for(lines: dict[tuple[str | int, ...], int], loc: tuple[Any, ...]) -> int:
    # A missing or nested field points at the closest enclosing key or table that exists.
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1
